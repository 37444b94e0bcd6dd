"""Requests and streams over the real-client profiles against local servers."""

from __future__ import annotations

import os

import orjson
import pytest
import trio
import zstandard

from codex_trio import native
from codex_trio.native import Client

from .conftest import wait_idle
from .servers import Recorded, header_lines, listen, read_request

CODEX_HEADERS = [
    ("version", "0.169.0"),
    ("x-codex-beta-features", "remote_compaction_v2"),
    ("x-codex-window-id", "01a20151-b6f3-7af1-bf90-a4f40199647d:0"),
    ("x-client-request-id", "01a20151-b6f3-7af1-bf90-a4f40199647d"),
    ("session-id", "01a20151-b6f3-7af1-bf90-a4f40199647d"),
    ("accept", "text/event-stream"),
    ("content-encoding", "zstd"),
    ("content-type", "application/json"),
    ("authorization", "Bearer token"),
    ("chatgpt-account-id", "acc"),
    ("originator", "codex_exec"),
    ("user-agent", "codex_exec/0.169.0 (Debian 12.0.0; x86_64) xterm (codex_exec; 0.169.0)"),
]


def json_response(recorded: Recorded, payload: dict, extra: bytes = b""):
    body = orjson.dumps(payload)

    async def handler(stream):
        recorded.connections += 1
        buffer = bytearray()
        while (raw := await read_request(stream, buffer)) is not None:
            recorded.requests.append(raw)
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nX-Trace: a\r\nx-trace: b\r\n"
                + extra
                + b"content-length: %d\r\n\r\n" % len(body)
                + body
            )

    return handler


async def test_request_headers_go_out_in_the_given_order(nursery, server_ssl, ca_file):
    recorded = Recorded()
    port = await listen(nursery, json_response(recorded, {"ok": True}), server_ssl)
    client = Client("openssl", ca_file=ca_file)
    body = orjson.dumps({"model": "gpt-5.5", "stream": True, "input": []})
    response = await client.request(
        "POST", f"https://localhost:{port}/backend-api/codex/responses", CODEX_HEADERS, body, zstd=True
    )
    assert response.status == 200
    assert response.json() == {"ok": True}
    assert response.header("X-TRACE") == "a"
    assert response.header("missing") is None

    raw = recorded.requests[0]
    assert raw.startswith(b"POST /backend-api/codex/responses HTTP/1.1\r\n")
    compressed = raw.split(b"\r\n\r\n", 1)[1]
    # What the real client's stack appends: host, then content-length (spec/chatgpt-mode.md §3).
    assert header_lines(raw) == CODEX_HEADERS + [("host", f"localhost:{port}"), ("content-length", str(len(compressed)))]
    assert zstandard.ZstdDecompressor().decompressobj().decompress(compressed) == body
    frame = zstandard.get_frame_parameters(compressed)
    assert frame.content_size == zstandard.CONTENTSIZE_UNKNOWN and not frame.has_checksum
    assert frame.window_size == 2 << 20


async def test_zstd_adds_content_encoding_when_absent_and_host_keeps_its_place(nursery, server_ssl, ca_file):
    recorded = Recorded()
    port = await listen(nursery, json_response(recorded, {}), server_ssl)
    client = Client("openssl", ca_file=ca_file)
    headers = [("user-agent", "ua"), ("host", f"localhost:{port}"), ("accept", "*/*")]
    await client.request("POST", f"https://localhost:{port}/x", headers, b"{}", zstd=True)
    names = [name for name, _ in header_lines(recorded.requests[0])]
    assert names == ["user-agent", "host", "accept", "content-encoding", "content-length"]


async def test_requests_reuse_one_pooled_connection(nursery, server_ssl, ca_file):
    recorded = Recorded()
    port = await listen(nursery, json_response(recorded, {}), server_ssl)
    for _ in range(3):
        response = await Client("openssl", ca_file=ca_file).request("GET", f"https://localhost:{port}/", [])
        assert response.status == 200
    assert recorded.connections == 1
    # Without an accept header the stack adds the same `accept: */*` as the real client's.
    assert header_lines(recorded.requests[0]) == [("accept", "*/*"), ("host", f"localhost:{port}")]


def sse_server(recorded: Recorded, chunks: list[bytes], delay: float = 0.0, forever: bool = False):
    async def handler(stream):
        recorded.connections += 1
        buffer = bytearray()
        raw = await read_request(stream, buffer)
        recorded.requests.append(raw)
        try:
            await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            index = 0
            while forever or index < len(chunks):
                chunk = chunks[index % len(chunks)]
                await stream.send_all(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                index += 1
                if delay:
                    await trio.sleep(delay)
            await stream.send_all(b"0\r\n\r\n")
            await stream.receive_some(1)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            recorded.disconnected.set()

    return handler


@pytest.mark.parametrize("profile", ["openssl", "rustls"])
async def test_stream_delivers_every_chunk(nursery, server_ssl, ca_file, profile):
    chunks = [b'data: {"n":%d}\n\n' % i for i in range(200)]
    recorded = Recorded()
    port = await listen(nursery, sse_server(recorded, chunks), server_ssl)
    client = Client(profile, ca_file=ca_file)
    received = []
    async with client.stream("POST", f"https://localhost:{port}/sse", [("accept", "text/event-stream")], b"{}") as response:
        assert response.status == 200
        assert response.header("content-type") == "text/event-stream"
        async for chunk in response:
            received.append(chunk)
    assert b"".join(received) == b"".join(chunks)
    await wait_idle()


async def test_next_batch_returns_everything_queued(nursery, server_ssl, ca_file):
    chunks = [b"x" * 100] * 20
    recorded = Recorded()
    port = await listen(nursery, sse_server(recorded, chunks, delay=0.005), server_ssl)
    async with Client("openssl", ca_file=ca_file).stream("GET", f"https://localhost:{port}/", []) as response:
        await trio.sleep(0.5)
        batch = await response.next_batch()
        assert len(batch) > 1
        rest = []
        while more := await response.next_batch():
            rest.extend(more)
        assert len(b"".join(batch + rest)) == 2000
        assert await response.next_batch() == []


async def test_cancelling_a_stream_closes_the_connection(nursery, server_ssl, ca_file):
    recorded = Recorded()
    port = await listen(nursery, sse_server(recorded, [b"data: tick\n\n"], delay=0.01, forever=True), server_ssl)
    client = Client("openssl", ca_file=ca_file)
    with trio.move_on_after(0.3):
        async with client.stream("GET", f"https://localhost:{port}/", []) as response:
            async for _ in response:
                pass
    with trio.fail_after(3):
        await recorded.disconnected.wait()
    await wait_idle()


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


async def test_thousand_cancelled_streams_leak_nothing(nursery):
    recorded = Recorded()
    port = await listen(nursery, sse_server(recorded, [b"data: tick\n\n"], delay=0.002, forever=True))
    client = Client("openssl")
    url = f"http://127.0.0.1:{port}/"

    async def one(i: int) -> None:
        with trio.CancelScope() as scope:
            if i % 2:
                scope.cancel()  # cancelled before the head
            async with client.stream("GET", url, []) as response:
                await response.next_batch()
                scope.cancel()  # cancelled mid-body
                await response.next_batch()

    for i in range(10):
        await one(i)
    await trio.sleep(0.3)
    fds, threads = _fds(), _threads()
    for i in range(1000):
        await one(i)
    with trio.fail_after(5):
        while native.in_flight() or _fds() > fds:
            await trio.sleep(0.05)
    assert _fds() <= fds
    assert _threads() <= threads


async def test_slow_consumer_stops_the_producer(nursery, server_ssl, ca_file):
    sent = [0]

    async def firehose(stream):
        buffer = bytearray()
        await read_request(stream, buffer)
        chunk = b"d" * 65536
        try:
            await stream.send_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            while True:
                await stream.send_all(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent[0] += len(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    port = await listen(nursery, firehose, server_ssl)
    async with Client("openssl", ca_file=ca_file).stream("GET", f"https://localhost:{port}/", []) as response:
        await response.next_batch()
        await trio.sleep(0.5)
        stalled_at = sent[0]
        await trio.sleep(0.5)
        assert sent[0] == stalled_at, "the producer kept reading while the consumer stalled"
        # Bounded: the bridge (32 chunks) plus socket buffers, far below what a free-running server sends.
        assert stalled_at < 32 << 20
        got = sum(len(c) for c in await response.next_batch())
        assert got > 0
        await trio.sleep(0.3)
        assert sent[0] > stalled_at, "draining lets the producer continue"


async def test_errors_are_typed(nursery, server_ssl):
    refused = trio.socket.socket()
    await refused.bind(("127.0.0.1", 0))
    port = refused.getsockname()[1]
    refused.close()
    with pytest.raises(native.ConnectError) as info:
        await Client("openssl").request("GET", f"https://127.0.0.1:{port}/", [])
    assert info.value.kind == "connect" and "refused" in str(info.value).lower()

    recorded = Recorded()
    tls_port = await listen(nursery, json_response(recorded, {}), server_ssl)
    for profile in ("openssl", "rustls"):
        with pytest.raises(native.TlsError) as info:
            await Client(profile).request("GET", f"https://localhost:{tls_port}/", [])
        assert "certificate" in str(info.value).lower(), str(info.value)

    with pytest.raises(native.ProtocolError):
        await Client("openssl").request("GET", "https://localhost/", [("bad header", "x")])
    with pytest.raises(native.ProtocolError):
        Client("quic")


async def test_timeouts(nursery, server_ssl, ca_file):
    async def silent(stream):
        await read_request(stream, bytearray())
        await trio.sleep_forever()

    port = await listen(nursery, silent, server_ssl)
    with trio.fail_after(5):
        with pytest.raises(native.UpstreamTimeout):
            await Client("openssl", ca_file=ca_file).request("GET", f"https://localhost:{port}/", [], timeout=0.3)
        with pytest.raises(native.UpstreamTimeout):
            async with Client("rustls", ca_file=ca_file, read_timeout=0.3).stream(
                "GET", f"https://localhost:{port}/", []
            ):
                pass
    await wait_idle()


async def test_panic_in_the_transport_becomes_an_exception():
    from codex_trio import _native

    call = _native._panic_in_task()
    items, _ = await native._next_items(call)
    with pytest.raises(native.UpstreamError) as info:
        native._raise_if_error(items[0])
    assert info.value.kind == "internal" and "deliberate panic" in str(info.value)


async def test_connect_timeout():
    # A listener whose accept queue is full drops further SYNs, so connecting hangs.
    import socket

    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        await trio.sleep(0.1)
        with trio.fail_after(5):
            with pytest.raises(native.UpstreamTimeout):
                await Client("openssl", connect_timeout=0.3).request("GET", f"http://127.0.0.1:{port}/", [])
            with pytest.raises(native.UpstreamTimeout):
                await Client("openssl", connect_timeout=0.3).websocket(f"ws://127.0.0.1:{port}/", [])
    finally:
        for sock in fillers + [full]:
            sock.close()
