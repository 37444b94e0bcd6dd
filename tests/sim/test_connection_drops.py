"""The simulator survives clients that drop their connections abruptly (a Go client closing surplus HTTP/2
connections after many streams killed it: an error inside the HTTP/2 read loop's nursery)."""

from __future__ import annotations

import socket
import struct

import h2.config
import h2.connection
import httpx
import trio

from codex_trio.sim import Simulator
from tests.sim.helpers import auth_headers


async def _h2_connection(sim: Simulator) -> tuple[trio.SSLStream, h2.connection.H2Connection]:
    assert sim.urls is not None
    tcp = await trio.open_tcp_stream(sim.urls.host, sim.urls.port)
    context = sim.ssl_context()
    context.set_alpn_protocols(["h2"])
    tls = trio.SSLStream(tcp, context, server_hostname=sim.urls.host)
    await tls.do_handshake()
    assert tls.selected_alpn_protocol() == "h2"
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    return tls, conn


def _reset(tls: trio.SSLStream) -> None:
    """Close the TCP connection with an RST, the way a process that dies or drops a pool does."""
    raw = tls.transport_stream.socket
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()


async def test_abruptly_dropped_http2_connections_do_not_stop_the_simulator(sim: Simulator) -> None:
    assert sim.urls is not None
    account = sim.accounts[0]
    headers = [(":method", "GET"), (":scheme", "https"), (":authority", f"{sim.urls.host}:{sim.urls.port}"),
               (":path", "/backend-api/wham/usage"), *auth_headers(account).items()]
    for round_ in range(20):
        tls, conn = await _h2_connection(sim)
        for stream_id in range(1, 2 * (round_ % 4) + 2, 2):  # 1 to 4 requests in flight
            conn.send_headers(stream_id, headers, end_stream=True)
        await tls.send_all(conn.data_to_send())
        if round_ % 2:
            await tls.receive_some()  # some answers have started
        _reset(tls)
        await trio.sleep(0.01)
    async with httpx.AsyncClient(verify=sim.ssl_context(), http2=True, timeout=10) as client:
        reply = await client.get(sim.urls.backend_base + "/wham/usage", headers=auth_headers(account))
    assert reply.status_code == 200 and reply.http_version == "HTTP/2"
