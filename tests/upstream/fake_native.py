"""A scripted stand-in for `codex_trio.native.Client`, used ONLY for the transport state-machine tests
(WebSocket reuse, chain replay, SSE fallback). It implements the facade's call shapes, nothing of its
network behaviour; the same scenarios must be re-run against the real native client and the simulator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from codex_trio.native import UpstreamError


class HandshakeRejected(UpstreamError):
    def __init__(self, status: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(f"handshake rejected with {status}")
        self.status = status
        self.body = body
        self.headers = headers or []


@dataclass
class WsMessage:
    kind: str
    data: Any = None
    close_code: int | None = None


@dataclass
class Call:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes | None
    profile: str = ""


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class FakeStream:
    def __init__(self, status: int, headers: list[tuple[str, str]], chunks: list[bytes]) -> None:
        self.status, self.headers = status, headers
        self._batches = [chunks[i:i + 2] for i in range(0, len(chunks), 2)]
        self.closed = False

    async def __aenter__(self) -> "FakeStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.closed = True

    async def next_batch(self) -> list[bytes]:
        return self._batches.pop(0) if self._batches else []


class FakeWebSocket:
    def __init__(self, backend: "FakeBackend", headers: list[tuple[str, str]]) -> None:
        self.backend = backend
        self.request_headers = headers
        self.response_headers = backend.ws_response_headers
        self.frames: list[dict[str, Any]] = []
        self._queue: list[WsMessage] = []
        self.pings = 0
        self.closed = False

    def take_response_headers(self) -> list[tuple[str, str]]:
        headers, self.response_headers = self.response_headers, []
        return headers

    async def send_text(self, text: str) -> None:
        frame = orjson.loads(text)
        self.frames.append(frame)
        self.backend.ws_frames.append(frame)
        for event in self.backend.ws_reply(frame):
            self._queue.append(event if isinstance(event, WsMessage) else WsMessage("text", orjson.dumps(event).decode()))

    async def receive(self) -> WsMessage:
        return self._queue.pop(0) if self._queue else WsMessage("close", None, 1006)

    def receive_nowait(self) -> WsMessage | None:
        return self._queue.pop(0) if self._queue else None

    async def ping(self) -> None:
        self.pings += 1

    async def close(self, code: int = 1000, timeout: float = 5.0) -> None:
        self.closed = True


@dataclass
class FakeBackend:
    ws_status: int | None = None  # reject upgrades with this status
    ws_reply: Callable[[dict[str, Any]], list[Any]] = lambda frame: []
    sse_reply: Callable[[Call], tuple[int, list[tuple[str, str]], list[bytes]]] = lambda call: (200, [], [])
    unary_reply: Callable[[Call], Response] = lambda call: Response(404, [], b"")
    ws_response_headers: list[tuple[str, str]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    sockets: list[FakeWebSocket] = field(default_factory=list)
    ws_frames: list[dict[str, Any]] = field(default_factory=list)


class FakeClient:
    def __init__(self, backend: FakeBackend, profile: str = "openssl") -> None:
        self.backend = backend
        self.profile = profile

    async def request(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None, *,
                      zstd: bool = False) -> Response:
        call = Call(method, url, headers, body, self.profile)
        self.backend.calls.append(call)
        return self.backend.unary_reply(call)

    def stream(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None, *,
               zstd: bool = False) -> FakeStream:
        call = Call(method, url, headers, body, self.profile)
        self.backend.calls.append(call)
        return FakeStream(*self.backend.sse_reply(call))

    async def websocket(self, url: str, headers: list[tuple[str, str]], *, deflate: bool = True) -> FakeWebSocket:
        self.backend.calls.append(Call("GET", url, headers, None, self.profile))
        if self.backend.ws_status is not None:
            raise HandshakeRejected(self.backend.ws_status)
        socket = FakeWebSocket(self.backend, headers)
        self.backend.sockets.append(socket)
        return socket
