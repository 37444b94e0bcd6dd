"""The small HTTP vocabulary between the simulator's transport (server.py) and its application (app.py).

The transport parses bytes into an `HTTPRequest` that keeps header names in wire order and original case,
and writes back whatever the application returns: a complete `HTTPResponse`, a streamed one, or a
`WebSocketAccept` whose session then talks over a `WebSocketChannel`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import AsyncIterator, Awaitable, Callable, Protocol


@dataclass(slots=True)
class ConnectionInfo:
    """What the transport saw of the connection a request came on (for fingerprint tests)."""

    scheme: str  # "http" or "https"
    alpn: str | None = None
    client_hello: bytes | None = None  # the TLS ClientHello handshake message, record header stripped
    # HTTP/2: the client's frames before its first HEADERS, like fixtures' `h2_connection_start`
    h2_connection_start: list[dict] = field(default_factory=list)
    peer: str | None = None  # the address the connection came from (the exit IP of a proxy, for /cdn-cgi/trace)


@dataclass(slots=True)
class HTTPRequest:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]  # wire order, original case (HTTP/2: pseudo-headers first)
    body: bytes
    http_version: str  # "1.1" or "2"
    scheme: str  # "http" or "https"
    connection: ConnectionInfo | None = None

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None


class Disconnect(Exception):
    """Raised by a response stream to drop the connection abruptly (no terminal chunk, no close frame)."""


@dataclass(slots=True)
class HTTPResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # When set, the body is streamed: each yielded chunk is written as soon as it is produced.
    stream: AsyncIterator[bytes] | None = None


class WebSocketChannel(Protocol):
    async def receive_text(self) -> str | None:
        """The next text message, or None once the peer closed."""

    async def send_texts(self, messages: list[str]) -> None:
        """Send several text messages in one write."""

    async def close(self, code: int = 1000, reason: str = "") -> None: ...

    async def abort(self) -> None:
        """Drop the connection without a close frame."""


@dataclass(slots=True)
class WebSocketAccept:
    headers: list[tuple[str, str]]
    session: Callable[[WebSocketChannel], Awaitable[None]]
    allow_deflate: bool = True


Handler = Callable[[HTTPRequest], Awaitable["HTTPResponse | WebSocketAccept"]]
