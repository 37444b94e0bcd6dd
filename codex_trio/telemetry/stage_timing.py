"""Opt-in per-stage timing of requests, for benchmarks (issue #20): where a request's time goes.

Off unless the environment variable `CODEX_TRIO_STAGE_TIMING` names a file when the listener starts. Then every
HTTP request gets a small dict of stage -> `time.perf_counter_ns()`, carried in a context variable (trio copies it
into the tasks a request starts, so the dict is shared), and when the response is over one JSON line
`{"path": ..., "status": ..., "stages": {...}}` is appended to that file. Off, `mark` is one global read.

Stages, in the order a streamed turn passes them (a stage that did not happen is absent):

    head          the first bytes of the request head were read from the socket
    app           the ASGI app was called (hypercorn parsed the head: `app - head` is the HTTP parse)
    auth          the key check passed
    body          the request body was read
    routed        the model was resolved
    leased        an account was leased
    ws_connected  a new upstream WebSocket was opened (TCP, TLS, upgrade)
    prewarmed     its prewarm answered
    framed        the turn's WebSocket frame was built (`framed - leased` is the gateway's own work on the turn)
    sent          the turn's request went upstream (WebSocket frame handed to the I/O thread, or the SSE POST
                  started; `sent - framed` is that hand-off)
    first_event   the first upstream batch arrived
    translated    the first batch was encoded for the client (by the body's producer)
    headers_sent  hypercorn took the response head (held until the first body chunk when that follows at once:
                  both then leave in one write, see `server/http_server.py`)
    first_write   hypercorn took the first body chunk
"""

from __future__ import annotations

import os
import time
from contextvars import ContextVar
from typing import Any, Awaitable, Callable

import orjson

ENV = "CODEX_TRIO_STAGE_TIMING"

_marks: ContextVar[dict[str, int] | None] = ContextVar("codex_trio_stage_marks", default=None)
_connection: ContextVar[Any] = ContextVar("codex_trio_stage_connection", default=None)
_sink: int | None = None  # the output file's descriptor while timing is on
_sink_path: str | None = None


def mark(stage: str, *, again: bool = False) -> None:
    """Record `stage` for the current request: its first occurrence, or with `again` its latest."""
    if _sink is None:
        return
    marks = _marks.get()
    if marks is not None and (again or stage not in marks):
        marks[stage] = time.perf_counter_ns()


def on_connection(stream: Any) -> None:
    """Called in a connection's task: `stream.head_started_ns` is when the current request head began to arrive."""
    _connection.set(stream)


def timed(app: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """`app` with stage timing when `CODEX_TRIO_STAGE_TIMING` is set (else `app` itself)."""
    global _sink, _sink_path
    path = os.environ.get(ENV)
    if not path:
        return app
    if path != _sink_path:
        _sink, _sink_path = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), path
    sink = _sink

    async def timing(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        now = time.perf_counter_ns()
        stream = _connection.get()
        marks = {"head": getattr(stream, "head_started_ns", None) or now, "app": now}
        status: list[int] = []

        async def timed_send(message: dict[str, Any]) -> None:
            await send(message)
            kind = message["type"]
            if kind == "http.response.start":
                status.append(message["status"])  # `headers_sent` is marked where hypercorn takes the head
            elif kind == "http.response.body" and message.get("body"):
                marks.setdefault("first_write", time.perf_counter_ns())

        token = _marks.set(marks)
        try:
            await app(scope, receive, timed_send)
        finally:
            _marks.reset(token)
            line = {"path": scope.get("path"), "status": status[0] if status else None, "stages": marks}
            os.write(sink, orjson.dumps(line) + b"\n")

    return timing


def breakdown(stages: dict[str, int]) -> list[tuple[str, float]]:
    """(stage, milliseconds since the stage before it), in time order, from a recorded `stages` dict."""
    ordered = sorted(stages.items(), key=lambda item: item[1])
    return [(name, (at - ordered[i - 1][1]) / 1e6 if i else 0.0) for i, (name, at) in enumerate(ordered)]
