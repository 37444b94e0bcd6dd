"""Small local servers for the transport tests (127.0.0.1 only): a raw HTTP/1.1 server that records the
exact request bytes, a wsproto echo server, and HTTP-CONNECT / SOCKS5 proxies with credentials."""

from __future__ import annotations

import base64
import ssl
import struct
from dataclasses import dataclass, field

import trio
import wsproto
import wsproto.events as wse
from wsproto.extensions import PerMessageDeflate


@dataclass
class Recorded:
    requests: list[bytes] = field(default_factory=list)
    disconnected: trio.Event = field(default_factory=trio.Event)
    connections: int = 0


async def listen(nursery: trio.Nursery, handler, ssl_context: ssl.SSLContext | None = None) -> int:
    """Serve `handler(stream)` on an ephemeral port; returns the port. A client hanging up (or failing
    the TLS handshake, as the error tests do on purpose) ends only that connection."""

    async def guarded(stream) -> None:
        try:
            await handler(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    if ssl_context is not None:
        listeners = [trio.SSLListener(l, ssl_context, https_compatible=True) for l in listeners]
    await nursery.start(trio.serve_listeners, guarded, listeners)
    return listeners[0].transport_listener.socket.getsockname()[1] if ssl_context else listeners[0].socket.getsockname()[1]


async def read_head(stream, buffer: bytearray) -> bytes | None:
    while b"\r\n\r\n" not in buffer:
        data = await stream.receive_some(65536)
        if not data:
            return None
        buffer += data
    end = buffer.index(b"\r\n\r\n") + 4
    head = bytes(buffer[:end])
    del buffer[:end]
    return head


async def read_request(stream, buffer: bytearray) -> bytes | None:
    """Raw request head + body (content-length bodies only)."""
    head = await read_head(stream, buffer)
    if head is None:
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(buffer) < length:
        data = await stream.receive_some(65536)
        if not data:
            break
        buffer += data
    body = bytes(buffer[:length])
    del buffer[:length]
    return head + body


def header_lines(raw: bytes) -> list[tuple[str, str]]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    return [tuple(part.strip() for part in line.split(":", 1)) for line in head.split("\r\n")[1:]]


# ----------------------------------------------------------------------------------------- WebSocket
async def ws_echo(stream, deflate: bool, seen_requests: list | None = None) -> None:
    """Echo every message back; answer the client's close."""
    ws = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
    parts: list[str] = []
    try:
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, wse.Request):
                    if seen_requests is not None:
                        seen_requests.append(event)
                    extensions = [PerMessageDeflate()] if deflate else []
                    await stream.send_all(ws.send(wse.AcceptConnection(extensions=extensions)))
                elif isinstance(event, wse.TextMessage):
                    parts.append(event.data)
                    if event.message_finished:
                        await stream.send_all(ws.send(wse.TextMessage(data="".join(parts))))
                        parts.clear()
                elif isinstance(event, wse.CloseConnection):
                    await stream.send_all(ws.send(event.response()))
                    return
                elif isinstance(event, wse.Ping):
                    await stream.send_all(ws.send(event.response()))
    except trio.BrokenResourceError:
        return


# -------------------------------------------------------------------------------------------- proxies
@dataclass
class ProxyLog:
    targets: list[str] = field(default_factory=list)


async def _pipe(source, sink) -> None:
    try:
        while data := await source.receive_some(65536):
            await sink.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        with trio.CancelScope(shield=True):
            try:
                await sink.send_eof() if hasattr(sink, "send_eof") else await sink.aclose()
            except (trio.BrokenResourceError, trio.ClosedResourceError, AttributeError):
                pass


async def _splice(client, target_host: str, target_port: int) -> None:
    upstream = await trio.open_tcp_stream(target_host, target_port)
    async with upstream:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pipe, client, upstream)
            nursery.start_soon(_pipe, upstream, client)


def http_connect_proxy(log: ProxyLog, user: str, password: str):
    """CONNECT-only proxy that demands Basic credentials."""
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    async def handler(stream) -> None:
        buffer = bytearray()
        head = await read_head(stream, buffer)
        if head is None:
            return
        lines = head.decode().split("\r\n")
        method, target, _ = lines[0].split(" ")
        auth = dict(header_lines(head)).get("Proxy-Authorization") or dict(
            (k.lower(), v) for k, v in header_lines(head)
        ).get("proxy-authorization")
        if method != "CONNECT" or auth != expected:
            await stream.send_all(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")
            await stream.aclose()
            return
        log.targets.append(target)
        host, port = target.rsplit(":", 1)
        await stream.send_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await _splice(stream, host, int(port))

    return handler


def socks5_proxy(log: ProxyLog, user: str, password: str):
    """SOCKS5 with username/password authentication (RFC 1928/1929), CONNECT only."""

    async def exactly(stream, n: int, buffer: bytearray) -> bytes:
        while len(buffer) < n:
            data = await stream.receive_some(65536)
            if not data:
                raise trio.BrokenResourceError("short read")
            buffer += data
        out = bytes(buffer[:n])
        del buffer[:n]
        return out

    async def handler(stream) -> None:
        buf = bytearray()
        _, count = await exactly(stream, 2, buf)
        methods = await exactly(stream, count, buf)
        if 2 not in methods:
            await stream.send_all(b"\x05\xff")
            return
        await stream.send_all(b"\x05\x02")
        _, ulen = await exactly(stream, 2, buf)
        got_user = (await exactly(stream, ulen, buf)).decode()
        (plen,) = await exactly(stream, 1, buf)
        got_password = (await exactly(stream, plen, buf)).decode()
        if (got_user, got_password) != (user, password):
            await stream.send_all(b"\x01\x01")
            return
        await stream.send_all(b"\x01\x00")
        _, cmd, _, atyp = await exactly(stream, 4, buf)
        if atyp == 1:
            host = ".".join(str(b) for b in await exactly(stream, 4, buf))
        elif atyp == 3:
            (n,) = await exactly(stream, 1, buf)
            host = (await exactly(stream, n, buf)).decode()
        else:
            return
        (port,) = struct.unpack(">H", await exactly(stream, 2, buf))
        log.targets.append(f"{host}:{port}")
        await stream.send_all(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00")
        if host == "localhost":
            host = "127.0.0.1"
        await _splice(stream, host, port)

    return handler
