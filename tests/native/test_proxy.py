"""Egress proxies: http:// and https:// (CONNECT) and socks5:// with credentials, for HTTP and WebSocket."""

from __future__ import annotations

import pytest
import trio

from codex_trio import native
from codex_trio.native import Client

from .servers import ProxyLog, Recorded, http_connect_proxy, listen, socks5_proxy, ws_echo
from .test_http import json_response

USER, PASSWORD = "user", "p@ss word"
QUOTED = "user:p%40ss%20word"


async def start_proxy(nursery, kind: str, server_ssl) -> tuple[str, ProxyLog]:
    log = ProxyLog()
    if kind == "socks5":
        port = await listen(nursery, socks5_proxy(log, USER, PASSWORD))
        return f"socks5://{QUOTED}@127.0.0.1:{port}", log
    tls = server_ssl if kind == "https" else None
    port = await listen(nursery, http_connect_proxy(log, USER, PASSWORD), tls)
    return f"{kind}://{QUOTED}@localhost:{port}", log


@pytest.mark.parametrize("kind", ["http", "https", "socks5"])
async def test_request_and_websocket_through_proxy(nursery, server_ssl, ca_file, kind):
    proxy, log = await start_proxy(nursery, kind, server_ssl)
    recorded = Recorded()
    http_port = await listen(nursery, json_response(recorded, {"via": kind}), server_ssl)
    ws_port = await listen(nursery, lambda stream: ws_echo(stream, True), server_ssl)

    client = Client("openssl", proxy=proxy, ca_file=ca_file)
    response = await client.request("GET", f"https://localhost:{http_port}/", [])
    assert response.json() == {"via": kind}
    ws = await client.websocket(f"wss://localhost:{ws_port}/", [])
    await ws.send_text("through the proxy")
    assert (await ws.receive()).data == "through the proxy"
    await ws.close()
    # socks5:// resolves the name locally (socks5h:// would not), as reqwest does.
    host = "127.0.0.1" if kind == "socks5" else "localhost"
    assert log.targets == [f"{host}:{http_port}", f"{host}:{ws_port}"]


@pytest.mark.parametrize("kind", ["http", "socks5"])
async def test_bad_proxy_credentials_and_dead_proxy(nursery, server_ssl, ca_file, kind):
    proxy, _ = await start_proxy(nursery, kind, server_ssl)
    wrong = proxy.replace(QUOTED, "user:wrong")
    client = Client("openssl", proxy=wrong, ca_file=ca_file)
    with pytest.raises(native.ProxyError):
        await client.request("GET", "https://localhost:9/", [])
    with pytest.raises(native.ProxyError):
        await client.websocket("wss://localhost:9/", [])

    dead = trio.socket.socket()
    await dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    client = Client("openssl", proxy=f"{kind}://127.0.0.1:{port}", ca_file=ca_file)
    with pytest.raises(native.ProxyError):
        await client.request("GET", "https://localhost:9/", [])
    with pytest.raises(native.ProxyError):
        await client.websocket("wss://localhost:9/", [])
