"""A streamed body's later chunks take the connection's short path (`http_server.later_chunk_writer`): framed as
h11 frames them and written without an ASGI message through every wrapper, hypercorn's stream and h11; and while
the body waits with nothing queued, the turn's pump writes them itself (`streaming.Bypass`), without waking the
body. What the client receives must be exactly what h11 would have written, and the connection must stay usable
afterwards."""

from __future__ import annotations

import sys

import h11
import orjson
import trio

from codex_trio.server import streaming
from codex_trio.sim import running_sim
from tests.conftest import api_key, gateway_on_sim

TEXT = "one two three four five six seven eight nine ten eleven twelve"
PACED_REPLY = {"match": {"user_text": "paced"}, "reply": {"text": TEXT, "chunk_size": 4, "pacing_ms": 15}}


def request_bytes(host: str, key: str, body: dict) -> bytes:
    payload = orjson.dumps(body)
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: " + host.encode() + b"\r\nAuthorization: Bearer "
            + key.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(payload)).encode() + b"\r\n\r\n" + payload)


async def read_response(stream: trio.SocketStream) -> tuple[h11.Response, bytes, list[bytes]]:
    """One whole response off a keep-alive connection: its head, the raw bytes after the head, and the body's
    chunks as a strict HTTP/1.1 parser (h11's client side) sees them."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="POST", target="/", headers=[("host", "x"), ("content-length", "0")]))
    client.send(h11.EndOfMessage())
    raw = b""
    while not raw.endswith(b"\r\n0\r\n\r\n"):
        data = await stream.receive_some(65536)
        assert data, "the connection closed before the body's end"
        raw += data
    client.receive_data(raw)
    head, chunks = None, []
    while True:
        event = client.next_event()
        if isinstance(event, h11.Response):
            head = event
        elif isinstance(event, h11.Data):
            assert event.chunk_start and event.chunk_end  # all bytes were there: one event per chunk
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            break
        else:
            raise AssertionError(f"unexpected {event!r}")
    assert head is not None
    return head, raw[raw.index(b"\r\n\r\n") + 4:], chunks


async def test_later_chunks_are_written_as_h11_frames_them_and_the_connection_is_kept(data_dir, monkeypatch):
    framed_by_h11 = 0
    h11_send = h11.Connection.send

    def counting_send(self, event):  # the real h11, counting the body chunks hypercorn (not the simulator) sends
        nonlocal framed_by_h11
        if isinstance(event, h11.Data) and sys._getframe(1).f_globals["__name__"].startswith("hypercorn."):
            framed_by_h11 += 1
        return h11_send(self, event)

    monkeypatch.setattr(h11.Connection, "send", counting_send)
    body_wakeups_with_frames = 0
    next_frames = streaming._next_frames

    async def counting_next_frames(receive, bypass):  # the real relay, counting the frames the body task wrote
        nonlocal body_wakeups_with_frames
        frames = await next_frames(receive, bypass)
        body_wakeups_with_frames += bool(frames)
        return frames

    monkeypatch.setattr(streaming, "_next_frames", counting_next_frames)
    async with running_sim(accounts=1) as sim:
        sim.script(PACED_REPLY)
        async with gateway_on_sim(data_dir, sim) as (gateway, url):
            host, port = url.split("://")[1].rstrip("/").rsplit(":", 1)
            stream = await trio.open_tcp_stream(host, int(port))
            async with stream:
                body = {"model": "gpt-5.5", "stream": True, "messages": [{"role": "user", "content": "paced"}]}
                await stream.send_all(request_bytes(host, api_key(gateway), body))
                head, raw_body, chunks = await read_response(stream)
                assert head.status_code == 200
                assert (b"transfer-encoding", b"chunked") in head.headers

                # Byte for byte what h11's chunked writer makes of these chunks, then its last chunk.
                assert raw_body == b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
                text = b"".join(chunks)
                deltas = [orjson.loads(line[6:])["choices"][0]["delta"].get("content", "")
                          for line in text.split(b"\n\n") if line.startswith(b"data: {")]
                assert "".join(deltas) == TEXT
                assert text.endswith(b"data: [DONE]\n\n")
                # Paced 15 ms apart, the deltas left in several chunks; only the first passed through h11.
                assert len(chunks) >= 4, chunks
                assert framed_by_h11 == 1, framed_by_h11
                # The body task wrote the first chunk (with the head); the pump wrote the rest while it waited.
                assert body_wakeups_with_frames <= 2, (body_wakeups_with_frames, len(chunks))

                # The same connection serves the next request: the response ended as hypercorn ends it.
                await stream.send_all(request_bytes(host, api_key(gateway), body))
                head, _, chunks = await read_response(stream)
                assert head.status_code == 200 and b"".join(chunks).endswith(b"data: [DONE]\n\n")
