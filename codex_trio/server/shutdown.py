"""Graceful shutdown of everything a client is waiting for.

When shutdown starts, listeners stop accepting and idle connections close. Open work — a request still
waiting for its answer, a streamed response, a downstream WebSocket turn — may finish for a grace period;
then every piece still open is cut, and whoever registered it ends it in its protocol's way: a stream with its
terminal error frame (the turn pump, `dispatch/pump.py`), a request without an answer yet with a 503 in its protocol's error
envelope (`answer_when_cut`), a WebSocket turn with its failure events. No client sees a silent EOF.

Work registered after the cut (a stream whose body starts a moment later) is cut at once.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Awaitable, Callable, Iterator

import trio

from ..errors import ErrorKind, GatewayError

log = logging.getLogger(__name__)

def shutdown_error() -> GatewayError:
    """What a request or stream cut by shutdown is told (a fresh error each time: see protocols/failures.py)."""
    return GatewayError(503, "The gateway is shutting down; retry the request.", ErrorKind.OVERLOADED,
                        code="server_shutting_down")

ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]
# A whole error answer for a path, in the protocol that path speaks: status, headers, body
# (`envelopes.closing_error_answer`).
ErrorAnswer = Callable[[str, GatewayError], tuple[int, list[tuple[bytes, bytes]], bytes]]


class ShutdownCoordinator:
    def __init__(self) -> None:
        self.draining = trio.Event()
        self._open: set[trio.CancelScope] = set()
        self._awaiting: set[trio.CancelScope] = set()
        self._cut: set[trio.CancelScope] = set()
        self._cutting = False
        self._idle = trio.Event()
        self._idle.set()

    def register(self, scope: trio.CancelScope, *, awaiting_answer: bool = False) -> None:
        """`awaiting_answer`: a request that has no response yet (counted apart from streams)."""
        self._open.add(scope)
        if awaiting_answer:
            self._awaiting.add(scope)
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        if self._cutting:
            self._cut.add(scope)
            scope.cancel()

    def unregister(self, scope: trio.CancelScope) -> None:
        self._open.discard(scope)
        self._awaiting.discard(scope)
        self._cut.discard(scope)
        if not self._open:
            self._idle.set()

    def was_cut(self, scope: trio.CancelScope) -> bool:
        return scope in self._cut

    def cut_error(self) -> GatewayError:
        """What work cut by shutdown tells its client."""
        return shutdown_error()

    @contextmanager
    def cuttable(self) -> Iterator[trio.CancelScope]:
        """Run a block that shutdown may cut after the grace period. Afterwards `scope.cancelled_caught`
        (with `was_cut` inside the block) says whether it was."""
        with trio.CancelScope() as scope:
            self.register(scope)
            try:
                yield scope
            finally:
                self.unregister(scope)

    @property
    def open_streams(self) -> int:
        """Streams and WebSocket turns under way."""
        return len(self._open) - len(self._awaiting)

    @property
    def requests_awaiting_answer(self) -> int:
        return len(self._awaiting)

    async def drain(self, grace_seconds: float) -> int:
        """Wait up to `grace_seconds` for open work; cut the rest. Returns how many were cut."""
        self.draining.set()
        with trio.move_on_after(grace_seconds):
            await self._idle.wait()
        self._cutting = True
        remaining = list(self._open)
        for scope in remaining:
            self._cut.add(scope)
            scope.cancel()
        if remaining:
            log.info("shutdown: ended %d open request(s) and stream(s) after the grace period", len(remaining))
        return len(remaining)


def answer_when_cut(app: ASGIApp, coordinator: ShutdownCoordinator, error_answer: ErrorAnswer) -> ASGIApp:
    """Wrap an ASGI app: each HTTP request is open work until its response starts. One cut before that is
    answered with a 503 in the protocol's envelope for its path (and the connection closes). A started response
    is no longer this wrapper's: a stream is registered by its relay, anything else is a send away from done."""

    async def guarded(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = False
        with trio.CancelScope() as work:
            async def watch(message: dict[str, Any]) -> None:
                nonlocal started
                if message["type"] == "http.response.start" and not started:
                    started = True
                    coordinator.unregister(work)
                await send(message)

            coordinator.register(work, awaiting_answer=True)
            try:
                await app(scope, receive, watch)
            finally:
                coordinator.unregister(work)
        if work.cancelled_caught and not started:
            status, headers, payload = error_answer(scope.get("path", "/"), shutdown_error())
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": payload, "more_body": False})

    return guarded
