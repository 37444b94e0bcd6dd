"""Real egress proxies for the tests, on 127.0.0.1: an HTTP CONNECT proxy and a SOCKS5 proxy (RFC 1928, user/
password auth RFC 1929), both small trio servers.

Each one opens its outbound connections from its own loopback address (`exit_ip`, e.g. 127.0.0.2), so the
simulator sees that address as the caller (`ConnectionInfo.peer`, `/cdn-cgi/trace`): which of a request's
proxies carried it is read at the far end, like an exit IP. A proxy also records every tunnel it opened (user,
target) and can be stopped (`down = True`: new connections are refused at once) to play a dead proxy.
`resolve` maps host names to the simulator, as `tls.resolve` does for direct connections.
"""

from __future__ import annotations

import base64
import socket
import struct
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import AsyncIterator

import trio


@dataclass
class Tunnel:
    user: str | None
    target: str  # host:port as the client asked for it


@dataclass
class LocalProxy:
    kind: str  # "http" | "socks5"
    exit_ip: str
    user: str
    password: str
    resolve: dict[str, str]
    port: int = 0
    tunnels: list[Tunnel] = field(default_factory=list)
    refused: int = 0  # connections with wrong or missing credentials
    down: bool = False

    @property
    def url(self) -> str:
        scheme = "socks5h" if self.kind == "socks5" else "http"
        return f"{scheme}://{self.user}:{self.password}@127.0.0.1:{self.port}"

    async def _connect_out(self, host: str, port: int) -> trio.SocketStream:
        pinned = self.resolve.get(host)
        if pinned:
            host, _, pinned_port = pinned.rpartition(":")
            port = int(pinned_port)
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        await sock.bind((self.exit_ip, 0))  # the exit IP the far end sees
        await sock.connect((host, port))
        return trio.SocketStream(sock)

    async def handle(self, client: trio.SocketStream) -> None:
        async with client:
            if self.down:
                return
            try:
                if self.kind == "http":
                    upstream = await self._http_connect(client)
                else:
                    upstream = await self._socks5(client)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ValueError, struct.error):
                return
            if upstream is None:
                return
            async with upstream:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_pipe, client, upstream, nursery.cancel_scope)
                    nursery.start_soon(_pipe, upstream, client, nursery.cancel_scope)

    async def _http_connect(self, client: trio.SocketStream) -> trio.SocketStream | None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await client.receive_some(4096)
            if not chunk:
                return None
            head += chunk
        request_line, *header_lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines if ":" in line)}
        user = password = None
        credentials = headers.get("proxy-authorization", "")
        if credentials.lower().startswith("basic "):
            user, _, password = base64.b64decode(credentials[6:]).decode().partition(":")
        if method != "CONNECT" or (user, password) != (self.user, self.password):
            self.refused += 1
            await client.send_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                                  b"Proxy-Authenticate: Basic realm=\"test\"\r\ncontent-length: 0\r\n\r\n")
            return None
        host, _, port = target.rpartition(":")
        upstream = await self._connect_out(host.strip("[]"), int(port))
        self.tunnels.append(Tunnel(user, target))
        await client.send_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        return upstream

    async def _socks5(self, client: trio.SocketStream) -> trio.SocketStream | None:
        reader = _Reader(client)
        version, count = await reader.exactly(2)
        methods = await reader.exactly(count)
        if version != 5 or 2 not in methods:
            self.refused += 1
            await client.send_all(b"\x05\xff")
            return None
        await client.send_all(b"\x05\x02")
        _, user_length = await reader.exactly(2)
        user = (await reader.exactly(user_length)).decode()
        (password_length,) = await reader.exactly(1)
        password = (await reader.exactly(password_length)).decode()
        if (user, password) != (self.user, self.password):
            self.refused += 1
            await client.send_all(b"\x01\x01")
            return None
        await client.send_all(b"\x01\x00")
        version, command, _, address_type = await reader.exactly(4)
        if address_type == 1:
            host = socket.inet_ntoa(await reader.exactly(4))
        elif address_type == 3:
            (length,) = await reader.exactly(1)
            host = (await reader.exactly(length)).decode()
        else:
            host = socket.inet_ntop(socket.AF_INET6, await reader.exactly(16))
        (port,) = struct.unpack("!H", await reader.exactly(2))
        if command != 1:
            await client.send_all(b"\x05\x07\x00\x01" + bytes(6))
            return None
        upstream = await self._connect_out(host, port)
        self.tunnels.append(Tunnel(user, f"{host}:{port}"))
        await client.send_all(b"\x05\x00\x00\x01" + socket.inet_aton(self.exit_ip) + struct.pack("!H", 0))
        return upstream


class _Reader:
    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buffer = b""

    async def exactly(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = await self._stream.receive_some(4096)
            if not chunk:
                raise ValueError("the client went away mid-handshake")
            self._buffer += chunk
        taken, self._buffer = self._buffer[:count], self._buffer[count:]
        return taken


async def _pipe(source: trio.SocketStream, sink: trio.SocketStream, scope: trio.CancelScope) -> None:
    try:
        while chunk := await source.receive_some(65536):
            await sink.send_all(chunk)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    scope.cancel()


@asynccontextmanager
async def local_proxy(kind: str, exit_ip: str, *, resolve: dict[str, str] | None = None, user: str = "tester",
                      password: str = "pw-123") -> AsyncIterator[LocalProxy]:
    proxy = LocalProxy(kind, exit_ip, user, password, dict(resolve or {}))
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, proxy.handle, 0, host="127.0.0.1"))
        proxy.port = listeners[0].socket.getsockname()[1]
        yield proxy
        nursery.cancel_scope.cancel()
