"""Upstream transport that looks, on the wire, like the real Codex CLI (0.169.0 and 0.171.0; trio API).

The work happens in the Rust extension (`codex_trio._native`) on a tokio runtime. Every call gets one
eventfd and one bounded channel: tokio queues items and bumps the eventfd without the GIL; this module
waits with `trio.lowlevel.wait_readable` and drains everything queued in one call.

Profiles (see spec/chatgpt-mode.md §9):
  "openssl" — the real client's default HTTPS (native-tls / OpenSSL 3.6, no ALPN → HTTP/1.1);
  "rustls"  — its HTTPS when a custom CA is configured (rustls + aws-lc-rs, ALPN h2,http/1.1 → HTTP/2).
The WebSocket always uses the rustls configuration without ALPN, whatever the profile.

Header names and order go on the wire as given (HTTP names are lower-cased by the HTTP stack, exactly
as the real client's are; the WebSocket handshake keeps the given case). The stack adds only what the
real client's stack adds: `accept: */*` and `host` when absent, and `content-length`.
"""

from __future__ import annotations

import atexit
import math
from collections import deque
from types import TracebackType
from typing import AsyncIterator, Literal, Mapping, Sequence

import orjson
import trio

from codex_trio import _native

__all__ = [
    "Client",
    "Response",
    "StreamResponse",
    "WebSocket",
    "WsMessage",
    "UpstreamError",
    "ConnectError",
    "TlsError",
    "UpstreamTimeout",
    "ProxyError",
    "ProtocolError",
    "in_flight",
    "count_tokens",
    "count_tokens_batch",
]

Headers = Sequence[tuple[str, str]]


class UpstreamError(Exception):
    """Any failure talking to the upstream. `kind` names the class; the message has the cause chain."""

    kind = "internal"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        # HTTP status of a refused WebSocket upgrade (e.g. 426 → fall back to SSE), else None.
        self.status = status


class ConnectError(UpstreamError):
    kind = "connect"


class TlsError(UpstreamError):
    kind = "tls"


class UpstreamTimeout(UpstreamError):
    kind = "timeout"


class ProxyError(UpstreamError):
    kind = "proxy"


class ProtocolError(UpstreamError):
    kind = "protocol"


_ERRORS: dict[str, type[UpstreamError]] = {
    cls.kind: cls for cls in (ConnectError, TlsError, UpstreamTimeout, ProxyError, ProtocolError)
}


def _error(kind: str, message: str, status: int | None = None) -> UpstreamError:
    return _ERRORS.get(kind, UpstreamError)(f"{kind}: {message}", status)


def _from_native(exc: Exception) -> UpstreamError:
    kind, message, status = exc.args
    return _error(kind, message, status)


def in_flight() -> int:
    """Number of native calls whose tokio task is still running."""
    return _native.in_flight()


atexit.register(_native.shutdown)


def count_tokens(text: str) -> int:
    """o200k_base token count (ranks embedded in the extension; nothing is downloaded)."""
    return _native.count_tokens(text)


def count_tokens_batch(texts: list[str]) -> list[int]:
    return _native.count_tokens_batch(texts)


async def _next_items(call) -> tuple[list, bool]:
    """Wait until the call has queued something (or ended) and take all of it.

    Cancelling the waiting task aborts the tokio task, which closes its connection.
    """
    try:
        while True:
            items, finished = call.drain()
            if items or finished:
                return items, finished
            await trio.lowlevel.wait_readable(call.fileno())
    except BaseException:
        call.cancel()
        raise


def _raise_if_error(item) -> None:
    if type(item) is tuple and item[0] == "error":
        raise _error(item[1], item[2], item[3])


def _seconds(value: float | None) -> float | None:
    if value is None or math.isinf(value):
        return None
    return value


class Response:
    """A buffered HTTP response."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        """First value of the header `name` (case-insensitive), or None."""
        return _first_header(self.headers, name)

    def json(self):
        return orjson.loads(self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.body)} bytes>"


def _first_header(headers: list[tuple[str, str]], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None


class StreamResponse:
    """A streamed HTTP response: `async for chunk in response` or `await response.next_batch()`."""

    def __init__(self, call, status: int, headers: list[tuple[str, str]], pending: deque) -> None:
        self._call = call
        self.status = status
        self.headers = headers
        self._pending = pending
        self._done = False

    def header(self, name: str) -> str | None:
        return _first_header(self.headers, name)

    async def next_batch(self) -> list[bytes]:
        """All chunks queued right now (waiting for at least one); an empty list at the end of the body."""
        if self._done:
            return []
        items = list(self._pending)
        self._pending.clear()
        more, finished = self._call.drain()
        items.extend(more)
        if not items:
            if not finished:
                items, finished = await _next_items(self._call)
            if finished and not items:
                self._done = True
                raise ProtocolError("protocol: the stream ended without an end marker")
        return self._take(items)

    def _take(self, items: list) -> list[bytes]:
        chunks = []
        for item in items:
            if type(item) is bytes:
                chunks.append(item)
                continue
            if item[0] == "end":
                self._done = True
            elif chunks:
                # the body broke after some data: hand out the data first, the error on the next call
                self._pending.appendleft(item)
                break
            else:
                self._done = True
                _raise_if_error(item)
        return chunks

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        while True:
            batch = await self.next_batch()
            if not batch:
                if self._done:
                    return
                continue
            for chunk in batch:
                yield chunk

    async def aclose(self) -> None:
        """Stop reading; the connection is closed if the body was not finished."""
        self._done = True
        self._call.cancel()


class _StreamContext:
    def __init__(self, call) -> None:
        self._call = call
        self._response: StreamResponse | None = None

    async def __aenter__(self) -> StreamResponse:
        pending: deque = deque()
        while True:
            items, finished = await _next_items(self._call)
            for index, item in enumerate(items):
                _raise_if_error(item)
                if type(item) is tuple and item[0] == "head":
                    pending.extend(items[index + 1 :])
                    self._response = StreamResponse(self._call, item[1], item[2], pending)
                    return self._response
            if finished:
                raise ProtocolError("protocol: the call ended before the response head")

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._call.cancel()


class Client:
    """Upstream HTTP/WebSocket client with the real Codex client's TLS hello.

    Clients with the same options share one pooled native client (connections are reused).
    `ca_file` adds trust (PEM) without changing the hello. `decompress` makes the HTTP stack send
    `accept-encoding: zstd,gzip` (where Codex 0.171.0 has it) and decode such response bodies; off, it sends
    no accept-encoding, as 0.169.0. A body that claims an encoding it does not have fails as a ProtocolError.
    `resolve` pins host names to addresses (`{"chatgpt.com": "127.0.0.1:8443"}`, like curl's --resolve): only
    where the socket connects changes; SNI, the certificate check and `Host` keep the real name. A port in the URL
    wins over the pinned one.
    """

    def __init__(
        self,
        profile: Literal["openssl", "rustls"] = "openssl",
        proxy: str | None = None,
        ca_file: str | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float | None = None,
        decompress: bool = False,
        resolve: Mapping[str, str] | None = None,
    ) -> None:
        self.profile = profile
        self.proxy = proxy
        self.decompress = decompress
        pinned = sorted((resolve or {}).items())
        try:
            self._native = _native.NativeClient(profile, proxy, ca_file, connect_timeout, _seconds(read_timeout),
                                                decompress, pinned)
        except _native.NativeError as exc:
            raise _from_native(exc) from None

    def _start(self, method, url, headers, body, zstd, timeout, stream):
        try:
            return self._native.start(method, url, list(headers), body, zstd, _seconds(timeout), stream)
        except _native.NativeError as exc:
            raise _from_native(exc) from None

    async def request(
        self,
        method: str,
        url: str,
        headers: Headers,
        body: bytes | None = None,
        *,
        zstd: bool = False,
        timeout: float | None = None,
    ) -> Response:
        """Send a request and buffer the whole response. `zstd=True` compresses the body like the real client."""
        call = self._start(method, url, headers, body, zstd, timeout, False)
        try:
            while True:
                items, finished = await _next_items(call)
                for item in items:
                    _raise_if_error(item)
                    if item[0] == "complete":
                        return Response(item[1], item[2], item[3])
                if finished:
                    raise ProtocolError("protocol: the call ended without a response")
        finally:
            call.cancel()

    def stream(
        self,
        method: str,
        url: str,
        headers: Headers,
        body: bytes | None = None,
        *,
        zstd: bool = False,
    ) -> _StreamContext:
        """`async with client.stream(...) as response:` — the body arrives in chunks."""
        return _StreamContext(self._start(method, url, headers, body, zstd, None, True))

    async def websocket(self, url: str, headers: Headers, *, deflate: bool = True) -> "WebSocket":
        """Open a WebSocket (rustls, no ALPN). A refused upgrade raises ProtocolError with `.status`."""
        try:
            call = self._native.start_websocket(url, list(headers), deflate)
        except _native.NativeError as exc:
            raise _from_native(exc) from None
        pending: deque = deque()
        try:
            while True:
                items, finished = await _next_items(call)
                for index, item in enumerate(items):
                    _raise_if_error(item)
                    if item[0] == "open":
                        pending.extend(items[index + 1 :])
                        return WebSocket(call, item[1], pending)
                if finished:
                    raise ProtocolError("protocol: the WebSocket task ended before the handshake")
        except BaseException:
            call.cancel()
            raise


class WsMessage:
    """One received message: kind "text" (data: str), "binary" (data: bytes) or "close" (close_code)."""

    __slots__ = ("kind", "data", "close_code")

    def __init__(self, kind: Literal["text", "binary", "close"], data: str | bytes, close_code: int | None = None):
        self.kind = kind
        self.data = data
        self.close_code = close_code

    def __repr__(self) -> str:
        return f"<WsMessage {self.kind} {self.data[:60]!r} {self.close_code}>"


class WebSocket:
    def __init__(self, call, response_headers: list[tuple[str, str]], pending: deque) -> None:
        self._call = call
        self.response_headers = response_headers  # of the handshake; see take_response_headers
        self._pending = pending
        self._closed: WsMessage | None = None
        # One task may sit in receive() while another calls close(); only one may wait on the fd.
        self._receiving = False
        self._ended = trio.Event()

    def take_response_headers(self) -> list[tuple[str, str]]:
        """The handshake's response headers, handed over once: a socket kept for minutes does not hold them (a
        few KiB of strings each) after its owner has read what it needs."""
        headers, self.response_headers = self.response_headers, []
        return headers

    async def send_text(self, text: str) -> None:
        """Queue a text message (compressed when permessage-deflate was accepted)."""
        self._send(self._call.send_text, text)

    async def ping(self) -> None:
        self._send(self._call.ping)

    def _send(self, method, *args) -> None:
        if self._closed is not None:
            raise ProtocolError("protocol: the WebSocket is closed")
        try:
            method(*args)
        except _native.NativeError as exc:
            raise _from_native(exc) from None

    async def receive(self) -> WsMessage:
        """The next message. After the connection ends, every call returns the same "close" message."""
        if self._receiving:
            raise trio.BusyResourceError("another task is already receiving on this WebSocket")
        self._receiving = True
        try:
            return await self._receive()
        finally:
            self._receiving = False

    async def _receive(self) -> WsMessage:
        while not self._pending:
            if self._closed is not None:
                return self._closed
            items, finished = await _next_items(self._call)
            self._pending.extend(items)
            if finished and not items:
                self._end(WsMessage("close", "", None))
        return self._pop()

    def receive_nowait(self) -> WsMessage | None:
        """The next text or binary message if it has already arrived, else None (never waits, never raises).
        Lets a reader turn a burst of small messages into one batch; a close or an error is left for the next
        `receive()`, so the messages batched before it are not lost with it."""
        if not self._pending or self._receiving or self._pending[0][0] not in ("text", "binary"):
            return None
        return self._pop()

    def _pop(self) -> WsMessage:
        item = self._pending.popleft()
        kind = item[0]
        if kind == "text" or kind == "binary":
            return WsMessage(kind, item[1])
        if kind == "closed":
            return self._end(WsMessage("close", item[2], item[1]))
        self._end(WsMessage("close", "", None))
        _raise_if_error(item)
        raise ProtocolError(f"protocol: unexpected item {kind!r}")

    def _end(self, message: WsMessage) -> WsMessage:
        self._closed = message
        self._ended.set()
        return message

    async def close(self, code: int = 1000, timeout: float = 5.0) -> None:
        """Send a close frame, wait (bounded) for the server's, then release the connection.

        Safe to call while another task is blocked in receive(): that task then gets the close message.
        """
        try:
            if self._closed is None:
                try:
                    self._call.close(code)
                except _native.NativeError:
                    pass  # the task already ended
                with trio.move_on_after(timeout):
                    if self._receiving:
                        await self._ended.wait()
                    else:
                        while True:
                            _, finished = await _next_items(self._call)
                            if finished:
                                break
                if self._closed is None:
                    self._end(WsMessage("close", "", code))
        finally:
            self._call.cancel()

    async def __aenter__(self) -> "WebSocket":
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()
