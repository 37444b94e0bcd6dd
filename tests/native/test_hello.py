"""The ClientHello of each profile equals the real Codex CLI 0.169.0 capture (JA4 and the sorted raw lists)."""

from __future__ import annotations

import pytest

from codex_trio.native import Client

from tests.conftest import FIXTURES
from codex_trio.identity_check.tls_fingerprint import fingerprint, load_hex

from .conftest import capture_hello

FIXTURE = {
    "openssl": "codex-0.169.0-https-default-openssl.sni-chatgpt.com.clienthello.hex",
    "rustls": "codex-0.169.0-https-customca-rustls-h2.sni-chatgpt.com.clienthello.hex",
    "websocket": "codex-0.169.0-wss-default-rustls.sni-chatgpt.com.clienthello.hex",
}


def assert_same_hello(hello: bytes, expected: dict) -> dict:
    got = fingerprint(hello)
    assert got["ja4"] == expected["ja4"]
    # JA4_r: sorted ciphers, sorted extensions, signature algorithms in wire order.
    assert got["ja4_r"] == expected["ja4_r"]
    assert sorted(got["ciphers"]) == sorted(expected["ciphers"])
    assert sorted(got["extensions"]) == sorted(expected["extensions"])
    assert got["groups"] == expected["groups"]
    assert got["sigalgs"] == expected["sigalgs"]
    assert got["supported_versions"] == expected["supported_versions"]
    assert got["alpn"] == expected["alpn"]
    return got


async def test_openssl_profile_hello(fingerprints, ca_file):
    expected = fingerprints[FIXTURE["openssl"]]
    client = Client("openssl", ca_file=ca_file, connect_timeout=5)

    async def start(port):
        await client.request("GET", f"https://localhost:{port}/", [("accept", "*/*")], timeout=5)

    got = assert_same_hello(await capture_hello(start), expected)
    # OpenSSL's order is fixed, so the JA3 and the cipher/extension wire order match too.
    assert got["ja3_md5"] == expected["ja3_md5"]
    assert got["ciphers"] == expected["ciphers"]
    assert got["key_share"] == expected["key_share"]


async def test_rustls_profile_hello(fingerprints, ca_file):
    expected = fingerprints[FIXTURE["rustls"]]
    client = Client("rustls", ca_file=ca_file, connect_timeout=5)

    async def start(port):
        await client.request("GET", f"https://localhost:{port}/", [("accept", "*/*")], timeout=5)

    got = assert_same_hello(await capture_hello(start), expected)
    assert got["ja3n_md5"] == expected["ja3n_md5"]
    assert got["ciphers"] == expected["ciphers"]
    assert got["key_share"] == expected["key_share"]


@pytest.mark.parametrize("profile", ["openssl", "rustls"])
async def test_websocket_hello(fingerprints, ca_file, profile):
    expected = fingerprints[FIXTURE["websocket"]]
    client = Client(profile, ca_file=ca_file, connect_timeout=5)

    async def start(port):
        await client.websocket(f"wss://localhost:{port}/backend-api/codex/responses", [])

    got = assert_same_hello(await capture_hello(start), expected)
    assert got["ja3n_md5"] == expected["ja3n_md5"]
    assert got["ciphers"] == expected["ciphers"]
    assert got["key_share"] == expected["key_share"]


async def test_ca_file_does_not_change_the_hello(ca_file):
    async def hello_of(client):
        async def start(port):
            await client.request("GET", f"https://localhost:{port}/", [], timeout=5)

        return fingerprint(await capture_hello(start))

    with_ca = await hello_of(Client("openssl", ca_file=ca_file, connect_timeout=4))
    without = await hello_of(Client("openssl", connect_timeout=4.5))
    assert with_ca["ja3_md5"] == without["ja3_md5"]
    assert with_ca["ja4_r"] == without["ja4_r"]


async def test_rustls_hello_to_an_ip_literal_has_no_sni(ca_file):
    expected = fingerprint(load_hex(FIXTURES / "tls/codex-0.169.0-clienthello-ip.hex"))
    client = Client("rustls", ca_file=ca_file, connect_timeout=5.5)

    async def start(port):
        await client.request("GET", f"https://127.0.0.1:{port}/", [], timeout=5)

    got = fingerprint(await capture_hello(start))
    assert got["ja4"] == expected["ja4"] == "t13i1010h2_61a7ad8aa9b6_0d308c48d2a3"
    assert got["ja4_r"] == expected["ja4_r"]
