"""CORS on the Ollama listener: loopback origins only, strictly parsed."""

from __future__ import annotations

import pytest

from codex_trio.protocols.cors import decide, is_loopback_origin

LOOPBACK = [
    "http://localhost", "http://localhost:3000", "https://localhost:8443", "HTTP://LOCALHOST:5173",
    "http://127.0.0.1", "http://127.0.0.1:11434", "http://127.1.2.3:80", "http://127.255.255.255",
    "http://[::1]", "http://[::1]:8080", "https://[0:0:0:0:0:0:0:1]:443",
]
NOT_LOOPBACK = [
    "null", "", "localhost", "http://localhost.evil.com", "http://127.0.0.1.evil.com", "http://evil.com",
    "http://localhost:3000/", "http://localhost/path", "http://user@localhost", "http://localhost:3000@evil.com",
    "http://localhost.", "http://localhost:0", "http://localhost:65536", "http://localhost:99999",
    "http://128.0.0.1", "http://127.0.0.256", "http://127.0.0", "http://127.000.000.001", "http://0x7f.0.0.1",
    "http://[::2]", "http://[::ffff:127.0.0.1]", "http://[::1", "ftp://localhost", "ws://localhost",
    "http://localhost\n", "http://192.168.1.10", "http://0.0.0.0", "file://", "http://local host",
]


@pytest.mark.parametrize("origin", LOOPBACK)
def test_loopback_origins(origin):
    assert is_loopback_origin(origin)


@pytest.mark.parametrize("origin", NOT_LOOPBACK)
def test_other_origins(origin):
    assert not is_loopback_origin(origin)


def test_simple_request_from_loopback_gets_echoed_origin():
    decision = decide("POST", "http://localhost:3000")
    assert not decision.preflight
    assert decision.headers == [("Access-Control-Allow-Origin", "http://localhost:3000"), ("Vary", "Origin")]


def test_simple_request_from_elsewhere_gets_no_cors_headers():
    decision = decide("GET", "http://localhost.evil.com")
    assert not decision.preflight
    assert not any(name.lower().startswith("access-control-") for name, _ in decision.headers)


def test_no_origin_no_headers():
    assert decide("GET", None) == decide("OPTIONS", None, "POST")
    assert decide("GET", None).headers == [] and not decide("GET", None).preflight


def test_loopback_preflight_is_204_with_methods_and_headers():
    decision = decide("OPTIONS", "http://127.0.0.1:8080", "POST", "content-type, x-stainless-os")
    assert (decision.preflight, decision.status) == (True, 204)
    headers = dict(decision.headers)
    assert headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8080"
    assert headers["Access-Control-Allow-Methods"] == "GET, POST, HEAD, OPTIONS"
    assert headers["Access-Control-Allow-Headers"] == "content-type, x-stainless-os"
    assert headers["Vary"] == "Origin"


def test_preflight_with_malformed_request_headers_gets_the_default_list():
    decision = decide("OPTIONS", "http://[::1]:3000", "POST", "content-type\r\nSet-Cookie: x=1")
    assert dict(decision.headers)["Access-Control-Allow-Headers"] == "Authorization, Content-Type"


@pytest.mark.parametrize("origin", ["null", "http://127.0.0.1.evil.com", "https://example.com"])
def test_preflight_from_elsewhere_is_refused_without_cors_headers(origin):
    decision = decide("OPTIONS", origin, "POST", "content-type")
    assert (decision.preflight, decision.status) == (True, 403)
    assert not any(name.lower().startswith("access-control-") for name, _ in decision.headers)


def test_options_without_request_method_is_not_a_preflight():
    decision = decide("OPTIONS", "http://localhost")
    assert not decision.preflight
    assert ("Access-Control-Allow-Origin", "http://localhost") in decision.headers
