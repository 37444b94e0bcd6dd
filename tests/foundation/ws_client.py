"""A small WebSocket client on wsproto over trio for the gateway's downstream Responses WebSocket: it keeps
what the higher-level clients hide (ping frames, the close code)."""

from __future__ import annotations

from typing import Any

import orjson
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Ping, Request, TextMessage


class GatewaySocket:
    def __init__(self, stream: trio.SocketStream, conn: WSConnection) -> None:
        self.stream = stream
        self.conn = conn
        self.pings = 0
        self.close_code: int | None = None
        self._parts: list[str] = []

    @classmethod
    async def connect(cls, url: str, key: str, path: str = "/v1/responses") -> "GatewaySocket":
        host, port = url.removeprefix("http://").rsplit(":", 1)
        stream = await trio.open_tcp_stream(host, int(port))
        conn = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(conn.send(Request(host=f"{host}:{port}", target=path,
                                                extra_headers=[(b"authorization", f"Bearer {key}".encode())])))
        socket = cls(stream, conn)
        while True:
            conn.receive_data(await stream.receive_some())
            for event in conn.events():
                if isinstance(event, AcceptConnection):
                    return socket
                raise AssertionError(f"handshake refused: {event!r}")

    async def send(self, message: dict[str, Any]) -> None:
        await self.stream.send_all(self.conn.send(Message(data=orjson.dumps(message).decode())))

    async def receive(self) -> dict[str, Any] | None:
        """The next JSON message; None once the server closed (its close code is then in `close_code`).
        Pings are answered and counted."""
        while True:
            for event in self.conn.events():
                if isinstance(event, TextMessage):
                    self._parts.append(event.data)
                    if event.message_finished:
                        text, self._parts = "".join(self._parts), []
                        return orjson.loads(text)
                elif isinstance(event, Ping):
                    self.pings += 1
                    await self.stream.send_all(self.conn.send(event.response()))
                elif isinstance(event, CloseConnection):
                    self.close_code = event.code
                    return None
            try:
                data = await self.stream.receive_some()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                return None
            self.conn.receive_data(data)

    async def aclose(self) -> None:
        await self.stream.aclose()
