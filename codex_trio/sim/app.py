"""Request dispatch: record every request, then route it to the backend, the auth server or the control API."""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qsl

import orjson
import zstandard

from .auth import Auth
from .backend import Backend, json_response
from .control import Control
from .encoding import encode_response
from .state import RecordedRequest, SimState
from .wire import HTTPRequest, HTTPResponse, WebSocketAccept

log = logging.getLogger("codex_trio.sim")


def decode_body(request: HTTPRequest) -> tuple[Any, str | None]:
    """(decoded body, problem). JSON → object, form → [[name, value], …], multipart → None, other text → str,
    empty → None."""
    encoding = (request.header("content-encoding") or "").strip().lower() or None
    data = request.body
    if encoding == "zstd":
        try:
            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        except zstandard.ZstdError as exc:
            return None, f"Could not decode the zstd request body: {exc}"
    elif encoding not in (None, "identity"):
        return None, f"Unsupported Content-Encoding: {encoding}"
    if not data:
        return None, None
    content_type = (request.header("content-type") or "").lower()
    if "json" in content_type:
        try:
            return orjson.loads(data), None
        except orjson.JSONDecodeError:
            return None, None
    if content_type.startswith("multipart/"):  # an upload: tests read `raw_body`, not a text copy of the audio
        return None, None
    if "x-www-form-urlencoded" in content_type:
        return [[k, v] for k, v in parse_qsl(data.decode("utf-8", "replace"), keep_blank_values=True)], None
    return data.decode("utf-8", "replace"), None


def trace_response(request: HTTPRequest) -> HTTPResponse:
    """Cloudflare's `/cdn-cgi/trace` (served on chatgpt.com): key=value lines, `ip=` the caller's address as the
    edge saw it — through a proxy, the proxy's exit IP. The gateway's proxy health check reads it."""
    if request.method not in ("GET", "HEAD"):
        return json_response(405, {"detail": "Method Not Allowed"})
    peer = request.connection.peer if request.connection is not None else None
    host = request.header("host") or request.header(":authority") or ""
    lines = [f"h={host}", f"ip={peer or ''}", f"ts={time.time():.3f}", "visit_scheme=https", "http=http/1.1",
             "tls=TLSv1.3", "sni=plaintext", "warp=off"]
    return HTTPResponse(200, [("content-type", "text/plain")], ("\n".join(lines) + "\n").encode())


class SimApp:
    def __init__(self, state: SimState) -> None:
        self.state = state
        self.backend = Backend(state)
        self.auth = Auth(state)
        self.control = Control(state, self.auth)

    async def handle(self, request: HTTPRequest) -> HTTPResponse | WebSocketAccept:
        """Answer one request; a bug in the simulator becomes a logged 500, never a dead server."""
        try:
            return await self._handle(request)
        except Exception:
            log.exception("simulator failed on %s %s", request.method, request.path)
            return json_response(500, {"detail": "simulator internal error (see the simulator log)"})

    async def _handle(self, request: HTTPRequest) -> HTTPResponse | WebSocketAccept:
        if request.path.startswith("/_sim/"):
            return self.control.handle(request)
        body, problem = decode_body(request)
        record = RecordedRequest(request.method, request.path, request.query, request.headers, body, request.body,
                                 request.header("content-encoding"), request.http_version, request.scheme,
                                 connection=request.connection)
        if self.state.config.record_requests:
            self.state.requests.append(record)
        if problem is not None:
            result: HTTPResponse | WebSocketAccept = json_response(400, {"detail": problem})
        elif request.path == "/cdn-cgi/trace":
            result = trace_response(request)
        elif request.path.startswith("/backend-api/"):
            result = await self.backend.handle(request, record, request.path[len("/backend-api"):])
        else:
            host = request.header("host") or request.header(":authority") or "auth.openai.com"
            result = await self.auth.handle(request, record, f"{request.scheme}://{host}")
        record.status = 101 if isinstance(result, WebSocketAccept) else result.status
        if isinstance(result, HTTPResponse):
            result = encode_response(result, request.header("accept-encoding"),
                                     self.state.config.response_encoding)  # type: ignore[arg-type]
        return result
