"""Our ClientHello parser and JA4/JA3 code give exactly the labels the captures were recorded with:
every field of each `fingerprints.json`, and the JA4 table of `tests/fixtures/tls/README.md`."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import FIXTURES
from codex_trio.identity_check.tls_fingerprint import fingerprint, is_grease, load_hex, parse_client_hello

LABELLED_FOLDERS = ("chatgpt-mode/tls", "chatgpt-mode-0.171.0/tls")
LABELLED = [(folder, name, expected) for folder in LABELLED_FOLDERS
            for name, expected in json.loads((FIXTURES / folder / "fingerprints.json").read_text()).items()]
NOT_FINGERPRINTS = ("what", "capture_run")  # prose about the capture, not derived from the bytes


@pytest.mark.parametrize(("folder", "name", "expected"), LABELLED, ids=[name for _, name, _ in LABELLED])
def test_every_labelled_capture(folder: str, name: str, expected: dict) -> None:
    got = fingerprint(load_hex(FIXTURES / folder / name))
    for key, value in expected.items():
        if key not in NOT_FINGERPRINTS:
            assert got[key] == value, key


def readme_ja4_table() -> dict[str, str]:
    """`file.hex` → JA4 from the README's table rows and its "Other clients" sentence."""
    text = (FIXTURES / "tls/README.md").read_text()
    table = dict(re.findall(r"^\| `([\w.-]+\.hex)` \|.*\| `(t\w+)` \|$", text, re.MULTILINE))
    others = {"claude-code-2.1.197-clienthello-sni.hex": r"Claude Code 2\.1\.197 `(t\w+)`",
              "gemini-cli-0.61.0-clienthello-sni.hex": r"Gemini CLI 0\.61\.0 on\s+Node 20 `(t\w+)`",
              "openai-python-3.54.0-clienthello-sni.hex": r"openai-python 3\.54\.0 on CPython 3\.11 `(t\w+)`"}
    for name, pattern in others.items():
        match = re.search(pattern, text)
        assert match, f"the README no longer names the JA4 of {name}"
        table[name] = match.group(1)
    return table


def test_readme_ja4_of_every_tls_capture() -> None:
    table = readme_ja4_table()
    captures = sorted(path.name for path in (FIXTURES / "tls").glob("*.hex"))
    assert sorted(table) == captures
    for name, ja4 in table.items():
        assert fingerprint(load_hex(FIXTURES / "tls" / name))["ja4"] == ja4, name


def test_openssl_order_is_fixed_so_its_ja3_is_too() -> None:
    """The README's one stable JA3: OpenSSL does not shuffle extensions."""
    got = fingerprint(load_hex(FIXTURES / "tls/codex-0.169.0-clienthello-default-https-openssl.hex"))
    assert got["ja3_md5"] == "0b85eb0d4981e69064e40753e4f0ac5f"


def test_record_framed_hello_equals_the_bare_message() -> None:
    """Hellos read off a socket carry the record header, and may be split over several records."""
    message = load_hex(FIXTURES / "tls/codex-0.169.0-clienthello-sni.hex")
    one_record = b"\x16\x03\x01" + len(message).to_bytes(2, "big") + message
    split = b"".join(b"\x16\x03\x01" + len(part).to_bytes(2, "big") + part
                     for part in (message[:100], message[100:700], message[700:]))
    assert fingerprint(one_record) == fingerprint(split) == fingerprint(message)
    assert parse_client_hello(split).sni == "localhost"


def test_grease_values_are_left_out() -> None:
    assert [value for value in range(0x10000) if is_grease(value)] == [0x0A0A + 0x1010 * i for i in range(16)]
    message = bytearray(load_hex(FIXTURES / "tls/codex-0.169.0-clienthello-sni.hex"))
    hello = parse_client_hello(bytes(message))
    # Swap the first cipher for a GREASE value: JA4's count drops by one, the sorted list keeps the others.
    offset = 4 + 2 + 32 + 1 + len(hello.session_id) + 2
    message[offset:offset + 2] = b"\x3a\x3a"
    greased = fingerprint(bytes(message))
    assert greased["ja4"].startswith("t13d0911h2_")
    assert greased["ciphers"][0] == "0x3a3a"
    assert f"{hello.ciphers[0]:04x}" not in greased["ja4_r"].split("_")[1].split(",")


def test_truncated_hello_is_an_error_not_a_shorter_hello() -> None:
    message = load_hex(FIXTURES / "tls/codex-0.169.0-clienthello-sni.hex")
    with pytest.raises(ValueError, match="truncated"):
        parse_client_hello(message[:-10])
    with pytest.raises(ValueError, match="not a ClientHello"):
        parse_client_hello(b"\x02" + message[1:])


def test_alpn_that_is_not_alphanumeric_is_shown_by_its_hex_ends() -> None:
    """JA4: a first ALPN value starting or ending outside [0-9A-Za-z] contributes its hex form's first and last
    character (0xab 0xcd -> "ad"); an empty ALPN extension counts as none ("00")."""
    message = load_hex(FIXTURES / "tls/codex-0.169.0-clienthello-sni.hex")
    assert fingerprint(message)["ja4"][8:10] == "h2"
    swapped = message.replace(b"\x02h2\x08http/1.1", b"\x02\xab\xcd\x08http/1.1")
    assert swapped != message
    assert fingerprint(swapped)["ja4"][8:10] == "ad"
