"""Test helpers: an SSE parser, a raw-handshake WebSocket client on wsproto over trio, request builders."""

from __future__ import annotations

import base64
import os
from typing import Any

import orjson
import trio
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Message, TextMessage
from wsproto.extensions import PerMessageDeflate

from codex_trio.sim import SimAccount, Simulator


def auth_headers(account: SimAccount) -> dict[str, str]:
    return {"authorization": "Bearer " + account.access_token, "chatgpt-account-id": account.account_id}


def user_message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def turn_body(prompt: str = "hello", model: str = "gpt-5.5", **extra: Any) -> dict[str, Any]:
    return {"model": model, "stream": True, "input": [user_message(prompt)], "tool_choice": "auto",
            "parallel_tool_calls": True, "store": False, "include": ["reasoning.encrypted_content"], **extra}


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Parse an SSE body; checks that each `event:` line names the type of its `data:` payload."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        event = orjson.loads(fields["data"])
        assert fields["event"] == event["type"]
        events.append(event)
    return events


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


class WSClient:
    """A WebSocket client that sends a caller-chosen handshake (header names and case kept as given)."""

    def __init__(self, stream: trio.abc.Stream, conn: Connection | None, status: int, headers: dict[str, str],
                 body: bytes) -> None:
        self.stream = stream
        self.conn = conn
        self.status = status
        self.headers = headers
        self.body = body
        self.wire_bytes = 0  # bytes received after the handshake (compressed when deflate is on)
        self.payload_bytes = 0  # bytes of the decoded text messages

    @classmethod
    async def connect(cls, sim: Simulator, headers: list[tuple[str, str]], *, tls: bool = True,
                      deflate: bool = True) -> "WSClient":
        assert sim.urls is not None
        stream: trio.abc.Stream = await trio.open_tcp_stream("127.0.0.1", sim.urls.port)
        if tls:
            stream = trio.SSLStream(stream, sim.ssl_context(), server_hostname="chatgpt.com")
        names = {k.lower() for k, _ in headers}
        base = [("Host", "chatgpt.com"), ("Connection", "Upgrade"), ("Upgrade", "websocket"),
                ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", base64.b64encode(os.urandom(16)).decode())]
        lines = [h for h in base if h[0].lower() not in names] + list(headers)
        if deflate and "sec-websocket-extensions" not in names:
            lines.append(("sec-websocket-extensions", "permessage-deflate; client_max_window_bits"))
        request = "GET /backend-api/codex/responses HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in lines) + "\r\n"
        await stream.send_all(request.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            assert chunk, "connection closed during the handshake"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode().split("\r\n")
        status = int(status_line.split()[1])
        got = {}
        for line in header_lines:
            k, _, v = line.partition(":")
            got[k.strip().lower()] = v.strip()
        if status != 101:
            length = int(got.get("content-length", "0"))
            while len(rest) < length:
                rest += await stream.receive_some(65536)
            await stream.aclose()
            return cls(stream, None, status, got, rest)
        extensions = []
        agreed = got.get("sec-websocket-extensions")
        if agreed:
            pmd = PerMessageDeflate()
            pmd.finalize(agreed)
            extensions.append(pmd)
        return cls(stream, Connection(ConnectionType.CLIENT, extensions=extensions, trailing_data=rest), status,
                   got, b"")

    async def send(self, message: dict[str, Any]) -> None:
        assert self.conn is not None
        await self.stream.send_all(self.conn.send(Message(data=orjson.dumps(message).decode())))

    async def receive(self) -> dict[str, Any] | None:
        """The next JSON message, or None when the server closed (with or without a close frame)."""
        assert self.conn is not None
        parts: list[str] = []
        while True:
            for event in self.conn.events():
                if isinstance(event, TextMessage):
                    parts.append(event.data)
                    if event.message_finished:
                        text = "".join(parts)
                        self.payload_bytes += len(text.encode())
                        return orjson.loads(text)
                elif isinstance(event, CloseConnection):
                    return None
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            self.wire_bytes += len(data)
            if not data:
                return None
            self.conn.receive_data(data)

    async def turn(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        """Send a response.create and collect events up to a terminal one."""
        await self.send(message)
        events = []
        while True:
            event = await self.receive()
            if event is None:
                return events
            events.append(event)
            if event["type"] in ("response.completed", "response.failed", "response.incomplete", "error"):
                return events

    async def aclose(self) -> None:
        await self.stream.aclose()
