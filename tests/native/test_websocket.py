"""WebSocket: handshake layout on the wire, echo with and without permessage-deflate, refusal, close."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
import trio

from codex_trio import native
from codex_trio.native import Client

from tests.conftest import FIXTURES

from .conftest import wait_idle
from .servers import header_lines, listen, read_head, ws_echo

CAPTURE = json.loads((FIXTURES / "chatgpt-mode/exec-ws/01-ws-upgrade.json").read_text())


@pytest.mark.parametrize("deflate", [False, True])
async def test_echo(nursery, server_ssl, ca_file, deflate):
    requests = []
    port = await listen(nursery, lambda stream: ws_echo(stream, deflate, requests), server_ssl)
    ws = await Client("openssl", ca_file=ca_file).websocket(
        f"wss://localhost:{port}/backend-api/codex/responses?x=1", [("openai-beta", "responses_websockets=2026-02-06")]
    )
    negotiated = dict((k.lower(), v) for k, v in ws.response_headers).get("sec-websocket-extensions")
    assert (negotiated is not None) == deflate
    handshake = ws.response_headers
    assert ws.take_response_headers() is handshake and ws.response_headers == [], "handed over once, then not held"
    # The real client always offers deflate; the server decides.
    assert requests[0].extensions == ["permessage-deflate; client_max_window_bits"]
    texts = ["hello", "é" * 10, json.dumps({"type": "response.create", "input": ["x" * 1000] * 50})]
    for text in texts:
        await ws.send_text(text)
    for text in texts:
        message = await ws.receive()
        assert (message.kind, message.data) == ("text", text)
    await ws.ping()
    await ws.send_text("after ping")
    assert (await ws.receive()).data == "after ping"
    await ws.close()
    await wait_idle()


async def test_a_socket_that_went_quiet_still_speaks_deflate_with_context_takeover(nursery, server_ssl, ca_file):
    """After 2 s without traffic the socket parks its inflater and its compressor (kept past 64 KiB sent); the
    next messages, which both sides compress against everything before them, still arrive and echo intact."""
    port = await listen(nursery, lambda stream: ws_echo(stream, True), server_ssl)
    ws = await Client("openssl", ca_file=ca_file).websocket(f"wss://localhost:{port}/backend-api/codex/responses", [])
    turn = json.dumps({"type": "response.create", "input": [f"line {n} of a real-sized turn" for n in range(3000)]})
    assert len(turn) > 64 << 10
    texts = [turn, turn[1000:9000] + " the second turn", "a third, short one " + turn[-5000:]]
    for text in texts:
        await ws.send_text(text)
        assert (await ws.receive()).data == text
        await trio.sleep(2.6)
    await ws.close()
    await wait_idle()


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


async def test_quiet_sockets_give_their_compression_memory_back(nursery, server_ssl, ca_file):
    """Sockets that sent a real-sized turn (past the replay limit, so each held a ~256 KiB compressor) and then went
    quiet give that memory back to the system, not only to the allocator, while they stay open and usable."""
    port = await listen(nursery, lambda stream: ws_echo(stream, True), server_ssl)
    client = Client("openssl", ca_file=ca_file)
    turn = json.dumps({"type": "response.create", "input": [f"line {n} of a real-sized turn" for n in range(3000)]})
    sockets = [await client.websocket(f"wss://localhost:{port}/backend-api/codex/responses", []) for _ in range(40)]
    for ws in sockets:
        await ws.send_text(turn)
    for ws in sockets:
        assert (await ws.receive()).data == turn
    busy = _rss_kib()
    await trio.sleep(4)  # parked after 2 s, trimmed a second later
    assert busy - _rss_kib() > 5 * 1024, f"RSS {busy} KiB with the compressors, {_rss_kib()} KiB once quiet"
    for ws in sockets:
        await ws.send_text("still here")
        assert (await ws.receive()).data == "still here"
        await ws.close()
    await wait_idle()


async def test_deflate_compresses_on_the_wire(nursery, server_ssl, ca_file):
    """With the extension accepted, frames go out with RSV1 and are much smaller than the text."""
    wire = bytearray()

    async def tap(stream):
        class Tapped:
            async def receive_some(self, n):
                data = await stream.receive_some(n)
                wire.extend(data)
                return data

            async def send_all(self, data):
                await stream.send_all(data)

        await ws_echo(Tapped(), True)

    port = await listen(nursery, tap, server_ssl)
    ws = await Client("openssl", ca_file=ca_file).websocket(f"wss://localhost:{port}/", [])
    text = json.dumps({"input": [{"type": "message", "content": "the same words again"}] * 200})
    await ws.send_text(text)
    assert (await ws.receive()).data == text
    await ws.close()
    frame = bytes(wire[wire.index(b"\r\n\r\n") + 4 :])
    assert frame[0] == 0xC1, "FIN + RSV1 + text"
    assert len(frame) < len(text) // 5


def raw_upgrade_server(answer: bytes, heads: list):
    async def handler(stream):
        head = await read_head(stream, bytearray())
        heads.append(head)
        key = dict(header_lines(head))["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1(key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        await stream.send_all(answer.replace(b"{accept}", accept))
        await stream.receive_some(65536)

    return handler


async def test_handshake_layout_matches_the_capture(nursery, server_ssl, ca_file):
    heads = []
    answer = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: {accept}\r\n\r\n"
    port = await listen(nursery, raw_upgrade_server(answer, heads), server_ssl)
    # The caller passes the captured headers after the five handshake ones and without the extension offer.
    given = [(k, v) for k, v in CAPTURE["headers"][5:-1]]
    ws = await Client("rustls", ca_file=ca_file).websocket(f"wss://localhost:{port}{CAPTURE['path']}", given)
    lines = header_lines(heads[0])
    assert heads[0].startswith(b"GET /backend-api/codex/responses HTTP/1.1\r\n")
    names = [name for name, _ in lines]
    assert names == [name for name, _ in CAPTURE["headers"]]  # order and case, exactly
    assert lines[0] == ("Host", f"localhost:{port}")
    assert lines[1:4] == [tuple(h) for h in CAPTURE["headers"][1:4]]
    assert lines[5:] == [tuple(h) for h in CAPTURE["headers"][5:]]
    assert len(base64.b64decode(lines[4][1])) == 16
    await ws.close(timeout=0.2)


async def test_refused_upgrade_carries_the_status(nursery, server_ssl, ca_file):
    async def refuse(stream):
        await read_head(stream, bytearray())
        body = b'{"error":{"message":"use SSE"}}'
        await stream.send_all(b"HTTP/1.1 426 Upgrade Required\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))

    port = await listen(nursery, refuse, server_ssl)
    with pytest.raises(native.ProtocolError) as info:
        await Client("openssl", ca_file=ca_file).websocket(f"wss://localhost:{port}/", [])
    assert info.value.status == 426
    assert str(info.value) == 'protocol: WebSocket upgrade refused with HTTP 426: {"error":{"message":"use SSE"}}'
    await wait_idle()


async def test_server_close_is_reported(nursery, server_ssl, ca_file):
    async def close_at_once(stream):
        head = await read_head(stream, bytearray())
        key = dict(header_lines(head))["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1(key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        await stream.send_all(
            b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % accept
            + b"\x81\x02hi\x88\x06\x03\xe9done"
        )
        await stream.receive_some(65536)

    port = await listen(nursery, close_at_once, server_ssl)
    ws = await Client("openssl", ca_file=ca_file).websocket(f"wss://localhost:{port}/", [], deflate=False)
    assert (await ws.receive()).data == "hi"
    message = await ws.receive()
    assert (message.kind, message.close_code, message.data) == ("close", 1001, "done")
    assert (await ws.receive()).kind == "close"
    with pytest.raises(native.ProtocolError):
        await ws.send_text("too late")
    await wait_idle()


async def test_cancelling_a_receive_closes_the_socket(nursery, server_ssl, ca_file):
    gone = trio.Event()

    async def quiet(stream):
        try:
            await ws_echo(stream, False)
        finally:
            gone.set()

    port = await listen(nursery, quiet, server_ssl)
    ws = await Client("openssl", ca_file=ca_file).websocket(f"wss://localhost:{port}/", [])
    with trio.move_on_after(0.2):
        await ws.receive()
    with trio.fail_after(3):
        await gone.wait()
    await wait_idle()


async def test_close_while_another_task_receives(nursery, server_ssl, ca_file):
    port = await listen(nursery, lambda stream: ws_echo(stream, True), server_ssl)
    ws = await Client("openssl", ca_file=ca_file).websocket(f"wss://localhost:{port}/", [])
    received = []

    async def reader():
        while (message := await ws.receive()).kind != "close":
            received.append(message.data)
        received.append(message.close_code)

    async with trio.open_nursery() as inner:
        inner.start_soon(reader)
        await ws.send_text("one")
        await trio.sleep(0.1)
        with trio.fail_after(3):
            await ws.close()
    assert received == ["one", 1000]
    await wait_idle()


async def test_messages_queued_before_a_broken_connection_come_out_before_the_error():
    """A reader batching with receive_nowait() gets every message that arrived before the connection broke;
    the error comes from the next receive(), never from receive_nowait() (which would lose the batch). The
    queue is what the native call hands over when frames and the breakage arrive in one drain."""
    from collections import deque

    class EndedCall:
        def drain(self):
            return [], True

        def cancel(self):
            pass

    queued = deque([("text", "a"), ("text", "b"), ("error", "protocol", "connection reset", None)])
    ws = native.WebSocket(EndedCall(), [], queued)
    batch = [(await ws.receive()).data]
    while (message := ws.receive_nowait()) is not None:
        batch.append(message.data)
    assert batch == ["a", "b"]
    with pytest.raises(native.ProtocolError, match="connection reset"):
        await ws.receive()
    assert (await ws.receive()).kind == "close"  # and it stays closed


async def test_a_burst_that_arrived_while_the_reader_was_busy_comes_out_as_one_batch(nursery, server_ssl, ca_file):
    """Messages that arrived while Python was busy elsewhere are one batch for the reader (`receive()` and then
    `receive_nowait()` until None), not slices of a small native queue: every time a full queue is drained, the
    native reader task has to be woken from the Python thread, which cost a quarter of that thread's time in a
    long streamed reply with a 64-message queue."""
    port = await listen(nursery, lambda stream: ws_echo(stream, False, []), server_ssl)
    ws = await Client("openssl", ca_file=ca_file).websocket(f"wss://localhost:{port}/", [])
    sent = [f"delta {i}" for i in range(300)]
    for text in sent:
        await ws.send_text(text)
    received: list[str] = []
    largest = 0
    with trio.fail_after(30):
        while len(received) < len(sent):
            await trio.sleep(1)  # busy elsewhere: the echoes pile up in the native queue meanwhile
            batch = [(await ws.receive()).data]
            while (message := ws.receive_nowait()) is not None:
                batch.append(message.data)
            received += batch
            largest = max(largest, len(batch))
    assert received == sent
    assert largest > 64, f"the largest batch had {largest} messages"
    await ws.close()
    await wait_idle()
