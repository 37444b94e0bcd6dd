"""JA4 of a TLS ClientHello (FoxIO's published definition), sans-IO: handshake message bytes in, string out.

`t<version><d|i><cipher count><extension count><alpn>_<ciphers hash>_<extensions hash>`: GREASE values are left
out everywhere; the cipher hash is over the sorted cipher list, the extension hash over the sorted extensions
without SNI and ALPN, followed by the signature algorithms in their order; each hash is the first 12 hex digits
of a SHA-256.
"""

from __future__ import annotations

import hashlib

_TLS_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3"}
SNI, ALPN, SUPPORTED_VERSIONS, SIGNATURE_ALGORITHMS = 0x0000, 0x0010, 0x002B, 0x000D


def _grease(value: int) -> bool:
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12] if text else "000000000000"


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise ValueError("truncated ClientHello")
        chunk = self.data[self.at:self.at + n]
        self.at += n
        return chunk

    def int(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")


def ja4(hello: bytes) -> str:
    """`hello`: the handshake message (type 1), without the TLS record header."""
    r = _Reader(hello)
    if r.int(1) != 1:
        raise ValueError("not a ClientHello")
    r.int(3)
    legacy_version = r.int(2)
    r.take(32)
    r.take(r.int(1))  # session id
    raw_ciphers = r.take(r.int(2))
    ciphers = [c for c in (int.from_bytes(raw_ciphers[i:i + 2], "big") for i in range(0, len(raw_ciphers), 2))
               if not _grease(c)]
    r.take(r.int(1))  # compression methods
    extensions: list[int] = []
    versions: list[int] = []
    alpn = ""
    sigalgs: list[int] = []
    if r.at < len(hello):
        ext = _Reader(r.take(r.int(2)))
        while ext.at < len(ext.data):
            kind, body = ext.int(2), None
            body = ext.take(ext.int(2))
            if _grease(kind):
                continue
            extensions.append(kind)
            if kind == SUPPORTED_VERSIONS:
                versions = [v for v in (int.from_bytes(body[i:i + 2], "big") for i in range(1, 1 + body[0], 2))
                            if not _grease(v)]
            elif kind == ALPN and len(body) > 3:
                alpn = body[3:3 + body[2]].decode("latin-1")
            elif kind == SIGNATURE_ALGORITHMS:
                sigalgs = [int.from_bytes(body[i:i + 2], "big") for i in range(2, 2 + int.from_bytes(body[:2], "big"), 2)]
    version = _TLS_VERSIONS.get(max(versions) if versions else legacy_version, "00")
    sni = "d" if SNI in extensions else "i"
    alpn_code = (alpn[0] + alpn[-1]) if alpn else "00"
    head = f"t{version}{sni}{min(len(ciphers), 99):02d}{min(len(extensions), 99):02d}{alpn_code}"
    cipher_text = ",".join(f"{c:04x}" for c in sorted(ciphers))
    ext_text = ",".join(f"{e:04x}" for e in sorted(e for e in extensions if e not in (SNI, ALPN)))
    if sigalgs:
        ext_text += "_" + ",".join(f"{s:04x}" for s in sigalgs)
    return f"{head}_{_hash(cipher_text)}_{_hash(ext_text)}"
