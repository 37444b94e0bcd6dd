"""Shared helpers for the native transport tests: the real-client fixtures, a raw ClientHello
listener, and small local servers. Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import json
import ssl

import pytest
import trio
import trustme

from tests.conftest import FIXTURES

FINGERPRINTS = FIXTURES / "chatgpt-mode/tls/fingerprints.json"


@pytest.fixture(scope="session")
def fingerprints() -> dict:
    return json.loads(FINGERPRINTS.read_text())


async def read_client_hello(stream: trio.abc.Stream) -> bytes:
    """One TLS handshake record (header included), reassembled from however many segments."""
    data = b""
    while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        data += chunk
    assert data[:1] == b"\x16", f"not a TLS handshake record: {data[:16]!r}"
    return data[: 5 + int.from_bytes(data[3:5], "big")]


async def capture_hello(start_client) -> bytes:
    """Run `start_client(port)` against a listener that records the ClientHello and hangs up."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_expect_failure, start_client, port)
        stream = await listeners[0].accept()
        hello = await read_client_hello(stream)
        await stream.aclose()
    await listeners[0].aclose()
    return hello


async def _expect_failure(start_client, port: int) -> None:
    from codex_trio.native import UpstreamError

    with trio.fail_after(10):
        with pytest.raises(UpstreamError):
            await start_client(port)


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_cert(ca: trustme.CA):
    return ca.issue_cert("localhost", "127.0.0.1")


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def server_ssl(server_cert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    return context


async def wait_idle(limit: float = 3.0) -> None:
    """The tokio task drops its in-flight guard just after delivering its last item; wait for that."""
    from codex_trio import native

    with trio.fail_after(limit):
        while native.in_flight():
            await trio.sleep(0.01)
