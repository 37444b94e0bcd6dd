"""The simulator's transport: HTTP/1.1 (h11), WebSocket (wsproto, optional permessage-deflate) and HTTP/2
(h2, by ALPN over TLS or by prior knowledge), TLS and plain HTTP on the same port.

Hand-rolled on the sans-IO libraries instead of an ASGI server because the point of the simulator is to
record requests exactly as they arrived: h11 keeps header names in wire order and original case, which
ASGI servers lowercase away. One port serves both TLS and plain text: the first byte of a connection
tells them apart (0x16 starts a TLS handshake).
"""

from __future__ import annotations

import base64
import hashlib
import ssl
from typing import Any

import h11
import h2.config
import h2.connection
import h2.errors
import h2.events
import trio
from wsproto.connection import Connection as WSConnection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage
from wsproto.extensions import PerMessageDeflate
from wsproto.handshake import server_extensions_handshake

from .wire import ConnectionInfo, Disconnect, Handler, HTTPRequest, HTTPResponse, WebSocketAccept

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_READ = 65536
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_FRAME_NAMES = {0x0: "DATA", 0x1: "HEADERS", 0x2: "PRIORITY", 0x3: "RST_STREAM", 0x4: "SETTINGS", 0x5: "PUSH_PROMISE",
                0x6: "PING", 0x7: "GOAWAY", 0x8: "WINDOW_UPDATE", 0x9: "CONTINUATION"}
_QUIET = (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, h11.ProtocolError,
          h2.exceptions.ProtocolError, ConnectionError)


class _PrefixedStream(trio.abc.Stream):
    """A stream that first returns bytes already read (the sniffed first bytes) and then the real stream."""

    def __init__(self, stream: trio.abc.Stream, prefix: bytes) -> None:
        self._stream = stream
        self._prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix, b""
            return data
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self._stream.aclose()


def _peer_address(stream: trio.abc.Stream) -> str | None:
    sock = getattr(stream, "socket", None)
    try:
        return sock.getpeername()[0] if sock is not None else None
    except OSError:
        return None


async def serve_connection(stream: trio.abc.Stream, handler: Handler, ssl_context: ssl.SSLContext | None) -> None:
    try:
        first = await stream.receive_some(_READ)
        if not first:
            return
        peer = _peer_address(stream)
        info = ConnectionInfo("http", peer=peer)
        if first[0] == 0x16 and ssl_context is not None:
            while len(first) < 5 or len(first) < 5 + int.from_bytes(first[3:5], "big"):
                more = await stream.receive_some(_READ)
                if not more:
                    return
                first += more
            hello = first[5:5 + int.from_bytes(first[3:5], "big")]
            tls = trio.SSLStream(_PrefixedStream(stream, first), ssl_context, server_side=True, https_compatible=True)
            await tls.do_handshake()
            info = ConnectionInfo("https", tls.selected_alpn_protocol(), hello, peer=peer)
            stream, first = tls, b""
        if info.alpn == "h2" or first.startswith(_H2_PREFACE[:14]):
            await _H2Server(stream, handler, info).run(first)
        else:
            await _serve_h11(stream, handler, info, first)
    except* _QUIET:
        # A peer that went away, also from inside the HTTP/2 read loop's nursery (which wraps the error in a
        # group): that connection is over, the server is not.
        pass
    finally:
        with trio.move_on_after(1) as cleanup:
            cleanup.shield = True
            try:
                await stream.aclose()
            except _QUIET:
                pass


# ---------------------------------------------------------------- HTTP/1.1 ---------------------------------


async def _next_event(conn: h11.Connection, stream: trio.abc.Stream) -> Any:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await stream.receive_some(_READ))


async def _serve_h11(stream: trio.abc.Stream, handler: Handler, info: ConnectionInfo, initial: bytes) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
    if initial:  # receive_data(b"") would mean end of stream to h11
        conn.receive_data(initial)
    while True:
        try:
            event = await _next_event(conn, stream)
            if not isinstance(event, h11.Request):
                return
            body = bytearray()
            while True:
                part = await _next_event(conn, stream)
                if isinstance(part, h11.Data):
                    body += part.data
                elif isinstance(part, h11.EndOfMessage):
                    break
                else:
                    return
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                payload = b'{"detail":"Bad request: ' + str(exc).encode("ascii", "replace").replace(b'"', b"'") + b'"}'
                await _send_h11(conn, stream, HTTPResponse(400, [("content-type", "application/json")], payload))
            return
        target = event.target.decode("latin-1")
        path, _, query = target.partition("?")
        request = HTTPRequest(
            method=event.method.decode("ascii"),
            path=path,
            query=query,
            headers=[(name.decode("latin-1"), value.decode("latin-1")) for name, value in event.headers.raw_items()],
            body=bytes(body),
            http_version=event.http_version.decode("ascii"),
            scheme=info.scheme,
            connection=info,
        )
        result = await handler(request)
        if isinstance(result, WebSocketAccept):
            await _upgrade_websocket(conn, stream, request, result)
            return
        if not await _send_h11(conn, stream, result):
            return
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            return
        conn.start_next_cycle()


async def _send_h11(conn: h11.Connection, stream: trio.abc.Stream, response: HTTPResponse) -> bool:
    """Write a response; False when the connection must end here (an intended mid-stream disconnect)."""
    headers = list(response.headers)
    if response.stream is None:
        headers.append(("content-length", str(len(response.body))))
    await stream.send_all(conn.send(h11.Response(status_code=response.status, headers=headers)))
    if response.stream is None:
        if response.body:
            await stream.send_all(conn.send(h11.Data(data=response.body)))
    else:
        try:
            async for chunk in response.stream:
                await stream.send_all(conn.send(h11.Data(data=chunk)))
        except Disconnect:
            return False
    await stream.send_all(conn.send(h11.EndOfMessage()))
    return True


# ---------------------------------------------------------------- WebSocket --------------------------------


async def _upgrade_websocket(conn: h11.Connection, stream: trio.abc.Stream, request: HTTPRequest,
                             accept: WebSocketAccept) -> None:
    key = (request.header("sec-websocket-key") or "").encode("ascii")
    digest = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest()).decode("ascii")
    headers = [("upgrade", "websocket"), ("connection", "upgrade"), ("sec-websocket-accept", digest)]
    extensions = []
    offered = request.header("sec-websocket-extensions")
    if accept.allow_deflate and offered:
        deflate = PerMessageDeflate()
        agreed = server_extensions_handshake([o.strip() for o in offered.split(",") if o.strip()], [deflate])
        if agreed is not None:
            headers.append(("sec-websocket-extensions", agreed.decode("ascii")))
            extensions.append(deflate)
    headers += accept.headers
    await stream.send_all(conn.send(h11.InformationalResponse(status_code=101, headers=headers)))
    leftover = conn.trailing_data[0]
    channel = _WSChannel(stream, WSConnection(ConnectionType.SERVER, extensions=extensions, trailing_data=leftover))
    await accept.session(channel)


class _WSChannel:
    def __init__(self, stream: trio.abc.Stream, ws: WSConnection) -> None:
        self._stream = stream
        self._ws = ws
        self._parts: list[str] = []
        self._closed = False

    async def receive_text(self) -> str | None:
        while not self._closed:
            for event in self._ws.events():
                if isinstance(event, TextMessage):
                    self._parts.append(event.data)
                    if event.message_finished:
                        text = "".join(self._parts)
                        self._parts.clear()
                        return text
                elif isinstance(event, Ping):
                    await self._stream.send_all(self._ws.send(event.response()))
                elif isinstance(event, BytesMessage):
                    await self.close(1003, "binary frames are not supported")
                    return None
                elif isinstance(event, CloseConnection):
                    try:
                        await self._stream.send_all(self._ws.send(event.response()))
                    except _QUIET:
                        pass
                    self._closed = True
                    return None
            try:
                data = await self._stream.receive_some(_READ)
            except _QUIET:
                data = b""
            self._ws.receive_data(data or None)
            if not data:
                self._closed = True
        return None

    async def send_texts(self, messages: list[str]) -> None:
        await self._stream.send_all(b"".join(self._ws.send(Message(data=m)) for m in messages))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if not self._closed:
            self._closed = True
            try:
                await self._stream.send_all(self._ws.send(CloseConnection(code=code, reason=reason)))
            except _QUIET:
                pass
        await self._stream.aclose()

    async def abort(self) -> None:
        self._closed = True
        await self._stream.aclose()


# ---------------------------------------------------------------- HTTP/2 -----------------------------------


class _H2Server:
    def __init__(self, stream: trio.abc.Stream, handler: Handler, info: ConnectionInfo) -> None:
        self._stream = stream
        self._handler = handler
        self._info = info
        self._start = bytearray()  # raw client bytes until its first HEADERS frame has been seen
        self._start_done = False
        self._conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
        self._send_lock = trio.Lock()
        self._window_changed = trio.Event()
        self._heads: dict[int, list[tuple[bytes, bytes]]] = {}
        self._bodies: dict[int, bytearray] = {}
        self._scopes: dict[int, trio.CancelScope] = {}

    async def _flush(self) -> None:
        async with self._send_lock:
            data = self._conn.data_to_send()
            if data:
                await self._stream.send_all(data)

    async def run(self, initial: bytes) -> None:
        self._conn.initiate_connection()
        await self._flush()
        async with trio.open_nursery() as nursery:
            data = initial
            while True:
                if not data:
                    data = await self._stream.receive_some(_READ)
                    if not data:
                        break
                if not self._start_done:
                    self._note_connection_start(data)
                events = self._conn.receive_data(data)
                data = b""
                ended = False
                for event in events:
                    if isinstance(event, h2.events.RequestReceived):
                        self._heads[event.stream_id] = list(event.headers)
                        self._bodies[event.stream_id] = bytearray()
                    elif isinstance(event, h2.events.DataReceived):
                        self._bodies.setdefault(event.stream_id, bytearray()).extend(event.data)
                        self._conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        nursery.start_soon(self._respond, event.stream_id)
                    elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
                        self._window_changed.set()
                        self._window_changed = trio.Event()
                    elif isinstance(event, h2.events.StreamReset):
                        scope = self._scopes.get(event.stream_id)
                        if scope is not None:
                            scope.cancel()
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        ended = True
                await self._flush()
                if ended:
                    break
            nursery.cancel_scope.cancel()

    def _note_connection_start(self, data: bytes) -> None:
        """Record the client's frames up to its first HEADERS (SETTINGS ids in wire order, WINDOW_UPDATE)."""
        self._start += data
        view = bytes(self._start[len(_H2_PREFACE):]) if self._start.startswith(_H2_PREFACE) else b""
        frames: list[dict] = []
        while len(view) >= 9:
            length = int.from_bytes(view[:3], "big")
            kind, flags, stream = view[3], view[4], int.from_bytes(view[5:9], "big") & 0x7FFFFFFF
            if len(view) < 9 + length:
                break
            payload = view[9:9 + length]
            frame: dict = {"type": _FRAME_NAMES.get(kind, str(kind)), "flags": flags, "stream": stream,
                           "length": length}
            if kind == 0x4:
                frame["settings"] = [[int.from_bytes(payload[i:i + 2], "big"), int.from_bytes(payload[i + 2:i + 6], "big")]
                                     for i in range(0, length - length % 6, 6)]
            elif kind == 0x8 and length == 4:
                frame["increment"] = int.from_bytes(payload, "big") & 0x7FFFFFFF
            frames.append(frame)
            view = view[9 + length:]
            if kind == 0x1:
                self._info.h2_connection_start = frames
                self._start_done = True
                self._start.clear()
                return
        if len(self._start) > 1 << 16:  # no HEADERS in the first 64 KiB: stop looking
            self._start_done = True
            self._start.clear()

    async def _respond(self, stream_id: int) -> None:
        raw = self._heads.pop(stream_id)
        body = bytes(self._bodies.pop(stream_id, b""))
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw]
        pseudo = {n: v for n, v in headers if n.startswith(":")}
        path, _, query = pseudo.get(":path", "/").partition("?")
        request = HTTPRequest(pseudo.get(":method", "GET"), path, query, headers, body, "2", self._info.scheme,
                              self._info)
        with trio.CancelScope() as scope:
            self._scopes[stream_id] = scope
            try:
                result = await self._handler(request)
                if isinstance(result, WebSocketAccept):
                    result = HTTPResponse(400, [("content-type", "application/json")],
                                          b'{"detail":"WebSocket needs an HTTP/1.1 upgrade"}')
                await self._send_response(stream_id, result)
            except Disconnect:
                self._conn.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
                await self._flush()
            except h2.exceptions.StreamClosedError:
                pass
            finally:
                self._scopes.pop(stream_id, None)

    async def _send_response(self, stream_id: int, response: HTTPResponse) -> None:
        headers = [(":status", str(response.status))] + [(n.lower(), v) for n, v in response.headers]
        if response.stream is None:
            headers.append(("content-length", str(len(response.body))))
            self._conn.send_headers(stream_id, headers, end_stream=not response.body)
            await self._flush()
            if response.body:
                await self._send_data(stream_id, response.body, end=True)
            return
        self._conn.send_headers(stream_id, headers)
        await self._flush()
        async for chunk in response.stream:
            await self._send_data(stream_id, chunk, end=False)
        self._conn.end_stream(stream_id)
        await self._flush()

    async def _send_data(self, stream_id: int, data: bytes, end: bool) -> None:
        view = memoryview(data)
        while view:
            size = min(self._conn.local_flow_control_window(stream_id), self._conn.max_outbound_frame_size, len(view))
            if size <= 0:
                await self._window_changed.wait()
                continue
            self._conn.send_data(stream_id, bytes(view[:size]))
            view = view[size:]
            await self._flush()
        if end:
            self._conn.end_stream(stream_id)
            await self._flush()
