"""TLS ClientHello parsing and fingerprints (JA4, JA4_r, JA4_o, JA3, JA3N).

`codex-trio identity check` and the transport tests compare the hello our native module sends with the real
Codex CLI's (live, or the captures in `tests/fixtures/**/*.hex`). This module turns either into the numbers the
captures were labelled with:

- JA4 (FoxIO's JA4+ specification, "JA4: TLS Client Fingerprinting"): `a_b_c` where
  a = protocol (t), TLS version, d/i (SNI present or not), cipher count, extension count, ALPN first+last char;
  b = sha256[:12] of the sorted cipher list; c = sha256[:12] of the sorted extension list (SNI and ALPN left
  out) joined by `_` to the signature algorithms in wire order. GREASE values never count.
  JA4_r is the same with the raw lists instead of the hashes; JA4_o / JA4_ro keep the wire order.
- JA3 (Salesforce): `version,ciphers,extensions,groups,point_formats` in decimal, GREASE removed, and its MD5.
  JA3N sorts the extensions, which makes it stable across rustls' per-connection extension shuffle.

Sans-IO: bytes in, values out. `python -m codex_trio.identity_check.tls_fingerprint FILE.hex...` prints the fingerprints.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HANDSHAKE_RECORD = 0x16
CLIENT_HELLO = 0x01

EXT_SERVER_NAME = 0
EXT_SUPPORTED_GROUPS = 10
EXT_EC_POINT_FORMATS = 11
EXT_SIGNATURE_ALGORITHMS = 13
EXT_ALPN = 16
EXT_SUPPORTED_VERSIONS = 43
EXT_KEY_SHARE = 51

# IANA "TLS ExtensionType Values", the ones real clients send; the captures' labels use these names.
EXTENSION_NAMES = {
    0: "server_name", 1: "max_fragment_length", 5: "status_request", 10: "supported_groups",
    11: "ec_point_formats", 13: "signature_algorithms", 16: "alpn", 18: "signed_certificate_timestamp",
    21: "padding", 22: "encrypt_then_mac", 23: "extended_master_secret", 27: "compress_certificate",
    28: "record_size_limit", 34: "delegated_credentials", 35: "session_ticket", 41: "pre_shared_key",
    42: "early_data", 43: "supported_versions", 45: "psk_key_exchange_modes", 49: "post_handshake_auth",
    50: "signature_algorithms_cert", 51: "key_share", 17513: "application_settings_old",
    17613: "application_settings", 65037: "encrypted_client_hello", 65281: "renegotiation_info",
}

# JA4's two-character version field.
JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3", 0x0002: "s2",
                0xFEFF: "d1", 0xFEFD: "d2", 0xFEFC: "d3"}
EMPTY_HASH = "000000000000"


def is_grease(value: int) -> bool:
    """RFC 8701 reserves 0x0A0A, 0x1A1A, ... 0xFAFA: both bytes equal, low nibble 0xA."""
    return value >> 8 == value & 0xFF and value & 0x0F == 0x0A


class _Reader:
    """Bounds-checked big-endian reads over one buffer; a short buffer is a ValueError, never a silent cut."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._offset = 0
        self._what = what

    def take(self, count: int) -> bytes:
        end = self._offset + count
        if end > len(self._data):
            raise ValueError(f"{self._what} is truncated: wanted {count} bytes at offset {self._offset}, "
                             f"{len(self._data) - self._offset} left")
        chunk = self._data[self._offset:end]
        self._offset = end
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> bytes:
        return self.take(self.uint(length_size))

    def uint16s(self, length_size: int) -> tuple[int, ...]:
        body = self.vector(length_size)
        if len(body) % 2:
            raise ValueError(f"{self._what}: a list of 16-bit values has odd length {len(body)}")
        return tuple(int.from_bytes(body[i:i + 2], "big") for i in range(0, len(body), 2))

    @property
    def at_end(self) -> bool:
        return self._offset == len(self._data)


def handshake_message(data: bytes) -> bytes:
    """The ClientHello handshake message, from bare handshake bytes (the `.hex` captures) or from TLS
    records as read off a socket (one hello may span several handshake records)."""
    if data[:1] != bytes([HANDSHAKE_RECORD]):
        return bytes(data)
    records = _Reader(bytes(data), "TLS record stream")
    message = b""
    while not records.at_end:
        content_type = records.uint(1)
        records.uint(2)  # record version: 0x0301 for compatibility, says nothing about the hello
        fragment = records.vector(2)
        if content_type != HANDSHAKE_RECORD:
            break
        message += fragment
        if len(message) >= 4 and len(message) >= 4 + int.from_bytes(message[1:4], "big"):
            break
    return message


@dataclass(frozen=True)
class ClientHello:
    legacy_version: int
    session_id: bytes
    ciphers: tuple[int, ...]
    compression_methods: bytes
    extensions: tuple[tuple[int, bytes], ...]  # (type, body) in wire order
    sni: str | None
    alpn: tuple[bytes, ...]  # protocol names as sent
    groups: tuple[int, ...]
    point_formats: tuple[int, ...]
    sigalgs: tuple[int, ...]
    supported_versions: tuple[int, ...]
    key_shares: tuple[tuple[int, int], ...]  # (group, key length in bytes)

    @property
    def extension_types(self) -> tuple[int, ...]:
        return tuple(kind for kind, _ in self.extensions)


def parse_client_hello(data: bytes) -> ClientHello:
    message = _Reader(handshake_message(data), "ClientHello")
    kind = message.uint(1)
    if kind != CLIENT_HELLO:
        raise ValueError(f"not a ClientHello: handshake type {kind}")
    body = _Reader(message.vector(3), "ClientHello body")
    legacy_version = body.uint(2)
    body.take(32)  # random
    session_id = body.vector(1)
    ciphers = body.uint16s(2)
    compression_methods = body.vector(1)
    extensions: list[tuple[int, bytes]] = []
    if not body.at_end:  # extensions are optional before TLS 1.3
        block = _Reader(body.vector(2), "extensions block")
        while not block.at_end:
            extensions.append((block.uint(2), block.vector(2)))
    bodies = dict(extensions)
    return ClientHello(
        legacy_version=legacy_version, session_id=session_id, ciphers=ciphers,
        compression_methods=compression_methods, extensions=tuple(extensions),
        sni=_server_name(bodies.get(EXT_SERVER_NAME)),
        alpn=_protocol_names(bodies.get(EXT_ALPN)),
        groups=_uint16_list(bodies.get(EXT_SUPPORTED_GROUPS), 2, "supported_groups"),
        point_formats=tuple(_Reader(bodies[EXT_EC_POINT_FORMATS], "ec_point_formats").vector(1))
        if EXT_EC_POINT_FORMATS in bodies else (),
        sigalgs=_uint16_list(bodies.get(EXT_SIGNATURE_ALGORITHMS), 2, "signature_algorithms"),
        supported_versions=_uint16_list(bodies.get(EXT_SUPPORTED_VERSIONS), 1, "supported_versions"),
        key_shares=_key_shares(bodies.get(EXT_KEY_SHARE)),
    )


def _uint16_list(body: bytes | None, length_size: int, what: str) -> tuple[int, ...]:
    return () if body is None else _Reader(body, what).uint16s(length_size)


def _server_name(body: bytes | None) -> str | None:
    if body is None:
        return None
    names = _Reader(_Reader(body, "server_name").vector(2), "server_name list")
    while not names.at_end:
        name_type, name = names.uint(1), names.vector(2)
        if name_type == 0:  # host_name, the only type defined
            return name.decode("ascii")
    return None


def _protocol_names(body: bytes | None) -> tuple[bytes, ...]:
    if body is None:
        return ()
    names = _Reader(_Reader(body, "alpn").vector(2), "alpn list")
    protocols = []
    while not names.at_end:
        protocols.append(names.vector(1))
    return tuple(protocols)


def _key_shares(body: bytes | None) -> tuple[tuple[int, int], ...]:
    if body is None:
        return ()
    entries = _Reader(_Reader(body, "key_share").vector(2), "key_share list")
    shares = []
    while not entries.at_end:
        group = entries.uint(2)
        shares.append((group, len(entries.vector(2))))
    return tuple(shares)


def _sha12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _hex_list(values) -> str:
    return ",".join(f"{value:04x}" for value in values)


def _is_ascii_alnum(byte: int) -> bool:
    return chr(byte).isascii() and chr(byte).isalnum()


def _ja4_alpn(alpn: tuple[bytes, ...]) -> str:
    """First and last character of the first ALPN value; of its hex form when either is not alphanumeric."""
    if not alpn or not alpn[0]:
        return "00"
    first = alpn[0]
    if _is_ascii_alnum(first[0]) and _is_ascii_alnum(first[-1]):
        return chr(first[0]) + chr(first[-1])
    hexed = first.hex()
    return hexed[0] + hexed[-1]


def fingerprint(data: bytes | ClientHello, transport: str = "t") -> dict[str, Any]:
    """Every fingerprint and raw list of one hello, in the shape of `fixtures/chatgpt-mode/tls/fingerprints.json`
    (numbers as `0x%04x` strings, extensions as `type(name)`, wire order unless the name says sorted)."""
    hello = data if isinstance(data, ClientHello) else parse_client_hello(data)
    ciphers = [value for value in hello.ciphers if not is_grease(value)]
    extensions = [value for value in hello.extension_types if not is_grease(value)]
    groups = [value for value in hello.groups if not is_grease(value)]
    sigalgs = [value for value in hello.sigalgs if not is_grease(value)]
    versions = [value for value in hello.supported_versions if not is_grease(value)]

    version = JA4_VERSIONS.get(max(versions) if versions else hello.legacy_version, "00")
    sni_flag = "d" if EXT_SERVER_NAME in extensions else "i"
    head = (f"{transport}{version}{sni_flag}{min(len(ciphers), 99):02d}{min(len(extensions), 99):02d}"
            f"{_ja4_alpn(hello.alpn)}")
    sorted_ciphers = _hex_list(sorted(ciphers))
    hashed_extensions = [value for value in extensions if value not in (EXT_SERVER_NAME, EXT_ALPN)]
    signature_part = f"_{_hex_list(sigalgs)}" if sigalgs else ""
    sorted_extensions = _hex_list(sorted(hashed_extensions)) + signature_part
    wire_extensions = _hex_list(extensions) + signature_part

    ja3_fields = [str(hello.legacy_version), "-".join(map(str, ciphers)), "-".join(map(str, extensions)),
                  "-".join(map(str, groups)), "-".join(map(str, hello.point_formats))]
    ja3 = ",".join(ja3_fields)
    ja3n = ",".join([*ja3_fields[:2], "-".join(map(str, sorted(extensions))), *ja3_fields[3:]])
    return {
        "ja4": f"{head}_{_sha12(sorted_ciphers) if ciphers else EMPTY_HASH}_"
               f"{_sha12(sorted_extensions) if hashed_extensions else EMPTY_HASH}",
        "ja4_r": f"{head}_{sorted_ciphers}_{sorted_extensions}",
        "ja4_o": f"{head}_{_sha12(_hex_list(ciphers)) if ciphers else EMPTY_HASH}_"
                 f"{_sha12(wire_extensions) if extensions else EMPTY_HASH}",
        "ja4_ro": f"{head}_{_hex_list(ciphers)}_{wire_extensions}",
        "ja3": ja3, "ja3_md5": hashlib.md5(ja3.encode()).hexdigest(),
        "ja3n": ja3n, "ja3n_md5": hashlib.md5(ja3n.encode()).hexdigest(),
        "sni": hello.sni,
        "alpn": [name.decode("ascii", "backslashreplace") for name in hello.alpn],
        "ciphers": [f"0x{value:04x}" for value in hello.ciphers],
        "extensions": [f"{kind}({EXTENSION_NAMES.get(kind, 'grease' if is_grease(kind) else '?')})"
                       for kind in hello.extension_types],
        "groups": [f"0x{value:04x}" for value in hello.groups],
        "key_share": [f"0x{group:04x}/{length}B" for group, length in hello.key_shares],
        "sigalgs": [f"0x{value:04x}" for value in hello.sigalgs],
        "supported_versions": [f"0x{value:04x}" for value in hello.supported_versions],
        "bytes": len(handshake_message(data)) if isinstance(data, (bytes, bytearray)) else None,
    }


def load_hex(path: str | Path) -> bytes:
    """A `.hex` capture: one ClientHello handshake message as hex digits (whitespace ignored)."""
    return bytes.fromhex("".join(Path(path).read_text().split()))


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m codex_trio.identity_check.tls_fingerprint FILE.hex...", file=sys.stderr)
        return 2
    for path in argv:
        print(json.dumps({"file": path, **fingerprint(load_hex(path))}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
