"""Client connections on the real listeners: closed when they should be, usable after every error answer.

Raw sockets on 127.0.0.1 with short configured timeouts, so each rule is seen from the wire."""

from __future__ import annotations

import time
from pathlib import Path

import trio

from tests.conftest import api_key, running_gateway

FAST = {"server": {"keep_alive_timeout_seconds": 1.0, "header_timeout_seconds": 1.0}}


async def _connect(url: str) -> trio.SocketStream:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return await trio.open_tcp_stream(host.strip("[]"), int(port))


class ClosedByServer(Exception):
    pass


async def _read_response(stream: trio.SocketStream) -> bytes:
    """The head of one response with a content-length body (the body is read and dropped)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some()
        if not chunk:
            raise ClosedByServer(data)
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += await stream.receive_some()
    return head


async def _seconds_until_closed(stream: trio.SocketStream, limit: float) -> float:
    """How long until the server closes the connection (fails after `limit` seconds)."""
    started = time.monotonic()
    with trio.fail_after(limit):
        while await stream.receive_some():
            pass
    return time.monotonic() - started


async def test_connection_close_closes_the_socket_after_the_response(data_dir: Path):
    async with running_gateway(data_dir) as (_, url):
        stream = await _connect(url)
        await stream.send_all(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        assert (await _read_response(stream)).startswith(b"HTTP/1.1 200")
        assert await _seconds_until_closed(stream, 3) < 3


async def test_idle_keep_alive_connections_are_closed_after_the_keep_alive_timeout(data_dir: Path):
    async with running_gateway(data_dir, local=FAST) as (_, url):
        streams = [await _connect(url) for _ in range(20)]
        for stream in streams:
            await stream.send_all(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            assert (await _read_response(stream)).startswith(b"HTTP/1.1 200")
        for stream in streams:  # idle since their answer: all gone within the timeout (+ slack for load)
            await _seconds_until_closed(stream, 4)
        # a connection that never sent a byte is idle too
        silent = await _connect(url)
        await _seconds_until_closed(silent, 4)


async def test_a_slow_request_head_is_cut_after_the_header_timeout(data_dir: Path):
    # keep-alive far longer than the test: only the header timeout can end these connections
    local = {"server": {"keep_alive_timeout_seconds": 60.0, "header_timeout_seconds": 1.0}}
    async with running_gateway(data_dir, local=local) as (_, url):
        fresh, reused = await _connect(url), await _connect(url)
        await reused.send_all(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        await _read_response(reused)

        async def trickle(stream: trio.SocketStream) -> None:
            try:
                for byte in b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: " + b"a" * 100:
                    await stream.send_all(bytes([byte]))
                    await trio.sleep(0.2)
            except trio.BrokenResourceError:
                pass

        for stream in (fresh, reused):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trickle, stream)
                assert await _seconds_until_closed(stream, 5) < 5
                nursery.cancel_scope.cancel()


async def test_a_connection_stays_usable_after_404s_for_unknown_paths(data_dir: Path):
    """POST to an unknown path, then a GET, 20 times on one keep-alive connection, on both listeners. The 404 is
    ready before the POST's body has arrived (the body follows a moment later, as from a client that writes head
    and body separately): the server reads the small body and keeps the connection usable (it used to leave it
    hanging: the GET never got an answer)."""
    local = {"ollama": {"enabled": True, "port": 0}}
    body = b'{"model": "gpt-5.5", "input": "hello"}'
    async with running_gateway(data_dir, local=local, install=True) as (gateway, url):
        auth = f"authorization: Bearer {api_key(gateway)}\r\n".encode()
        ollama_url = gateway.ollama.listener.status.url
        for base, unknown, known in ((url, b"/v1/fine_tuning/jobs", b"/v1/models"),
                                     (ollama_url, b"/api/embed", b"/api/ps")):
            stream = await _connect(base)
            for _ in range(20):
                with trio.fail_after(5):
                    await stream.send_all(b"POST %s HTTP/1.1\r\nhost: localhost\r\n%scontent-type: application/json\r\n"
                                          b"content-length: %d\r\n\r\n" % (unknown, auth, len(body)))
                    await trio.sleep(0.05)
                    await stream.send_all(body)
                    assert (await _read_response(stream)).startswith(b"HTTP/1.1 404")
                    await stream.send_all(b"GET %s HTTP/1.1\r\nhost: localhost\r\n%s\r\n" % (known, auth))
                    head = await _read_response(stream)
                    assert head.startswith(b"HTTP/1.1 200"), head
            await stream.aclose()


async def test_stopping_a_listener_closes_its_idle_keep_alive_connections_at_once(data_dir: Path):
    """Idle connections (one after its answer, one that never sent a byte, one half-way through a head) end when
    the listener stops, not at their keep-alive timeout nor the grace period's end."""
    local = {"server": {"keep_alive_timeout_seconds": 60.0, "header_timeout_seconds": 60.0,
                        "graceful_shutdown_seconds": 20.0}}
    async with running_gateway(data_dir, local=local) as (gateway, url):
        answered, silent, partial = await _connect(url), await _connect(url), await _connect(url)
        await answered.send_all(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        assert (await _read_response(answered)).startswith(b"HTTP/1.1 200")
        await partial.send_all(b"GET /health HTTP/1.1\r\nhost: 127.")
        await trio.sleep(0.2)  # the server has read the partial head
        started = time.monotonic()
        with trio.fail_after(10):
            await gateway.main_listener.stop(graceful=True)
        assert time.monotonic() - started < 5
        for stream in (answered, silent, partial):
            assert await _seconds_until_closed(stream, 3) < 3
