"""The rustls profile's HTTP/2 connection start equals the real client's (spec/chatgpt-mode.md §9)."""

from __future__ import annotations

import ssl
import struct

import h2.config
import h2.connection
import h2.events
import hpack

from codex_trio.native import Client

from .servers import listen

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS, WINDOW_UPDATE, HEADERS, PRIORITY = 0x4, 0x8, 0x1, 0x2


def frames(data: bytes):
    at = len(PREFACE)
    while at + 9 <= len(data):
        length = int.from_bytes(data[at : at + 3], "big")
        kind, flags = data[at + 3], data[at + 4]
        stream_id = int.from_bytes(data[at + 5 : at + 9], "big") & 0x7FFFFFFF
        if at + 9 + length > len(data):
            return
        yield kind, flags, stream_id, data[at + 9 : at + 9 + length]
        at += 9 + length


async def test_http2_connection_start_matches_the_capture(nursery, server_cert, ca_file):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    context.set_alpn_protocols(["h2"])
    seen = bytearray()

    async def handler(stream):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        await stream.send_all(conn.data_to_send())
        while data := await stream.receive_some(65536):
            seen.extend(data)
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    conn.send_headers(event.stream_id, [(":status", "200"), ("content-type", "text/plain")])
                    conn.send_data(event.stream_id, b"h2 ok", end_stream=True)
            await stream.send_all(conn.data_to_send())

    port = await listen(nursery, handler, context)
    headers = [("version", "0.169.0"), ("authorization", "Bearer t"), ("accept", "*/*")]
    response = await Client("rustls", ca_file=ca_file).request("GET", f"https://localhost:{port}/models", headers)
    assert response.status == 200 and response.body == b"h2 ok"

    assert seen.startswith(PREFACE)
    # The client's own frames: a SETTINGS ACK answers the server and may land anywhere.
    start = [f for f in frames(bytes(seen)) if not (f[0] == SETTINGS and f[1] & 1)]
    assert start[0][0] == SETTINGS
    client_settings = start[0][3]
    pairs = [struct.unpack(">HI", client_settings[i : i + 6]) for i in range(0, len(client_settings), 6)]
    assert pairs == [(2, 0), (4, 2097152), (5, 16384), (6, 16384)]
    # The connection-level WINDOW_UPDATE comes right after the SETTINGS frame.
    assert start[1][0] == WINDOW_UPDATE and start[1][2] == 0
    assert int.from_bytes(start[1][3], "big") == 5177345
    assert not any(kind == PRIORITY for kind, *_ in start)
    block = next(payload for kind, _, _, payload in start if kind == HEADERS)
    decoded = hpack.Decoder().decode(block)
    assert [name for name, _ in decoded[:4]] == [":method", ":scheme", ":authority", ":path"]
    assert decoded[4:] == headers
