"""The request-body cap, enforced before the framework buffers anything.

Quart also has a cap (MAX_CONTENT_LENGTH), but a chunked body is buffered up to it first, and the exception it
then raises is kept by the buffer it was raised from: a reference cycle that keeps the ~100 MB alive until the
cycle collector happens to run (four rejected uploads kept 290 MB resident). Here:

* a declared Content-Length over the cap is answered 413 at once; the app never runs and no body byte is read;
* a chunked body that grows past the cap is cut off: the app sees the client leave (`http.disconnect`, so no
  exception and no cycle), the client gets the 413, and the connection closes instead of reading the rest.

The 413 is in the protocol's error envelope for the path, like every other error.

A response that goes out before its request's (small) body has arrived — a 404 for an unknown path, a 401 —
waits a moment for the rest of the body before it completes. hypercorn closes a connection whose request was
not read to its end; reading the few bytes instead keeps the keep-alive connection usable, and spares the client
the reset that closing on unread data causes (which can destroy the answer before the client reads it). Such an
early answer is not final until it goes out: its head is held back while it waits, and a body that passes the
cap meanwhile gets the 413 instead, as on any other path (the head used to go out alone, its Content-Length not
honoured).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import trio

from ..errors import ErrorKind, GatewayError
from .shutdown import ErrorAnswer


# The unread rest of a request body a response waits for (bytes, seconds) before it completes.
DRAIN_LIMIT = 1024 * 1024
DRAIN_SECONDS = 1.0


def too_large(limit: int) -> GatewayError:
    return GatewayError(413, f"The request body is too large (the limit is {limit // (1024 * 1024)} MiB).",
                        ErrorKind.INVALID_REQUEST, code="request_too_large")


def _declared_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class LimitedReceive:
    """The app's `receive`, counting the body and cut off past the cap. Passes on `ready` and
    `watch_disconnect` of the `receive` it wraps (`request_inbox.RequestInbox`), counting what `ready` takes."""

    __slots__ = ("_receive", "_limit", "received", "overflowed", "complete")

    def __init__(self, receive: Callable, limit: int) -> None:
        self._receive = receive
        self._limit = limit
        self.received = 0
        self.overflowed = False
        self.complete = trio.Event()  # the body's last message was received

    async def __call__(self) -> dict[str, Any]:
        if self.overflowed:
            return {"type": "http.disconnect"}
        return self._count(await self._receive())

    def ready(self) -> dict[str, Any] | None:
        if self.overflowed:
            return {"type": "http.disconnect"}
        ready = getattr(self._receive, "ready", None)
        message = ready() if ready is not None else None
        return None if message is None else self._count(message)

    def watch_disconnect(self, callback: Callable[[], None] | None) -> bool:
        watch = getattr(self._receive, "watch_disconnect", None)
        return watch is not None and watch(callback)

    def _count(self, message: dict[str, Any]) -> dict[str, Any]:
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self._limit:
                self.overflowed = True
                return {"type": "http.disconnect"}
            if not message.get("more_body", False):
                self.complete.set()
        return message


def limit_body(app: Callable[..., Awaitable[None]], limit: int, error_answer: ErrorAnswer) -> Callable[..., Awaitable[None]]:
    async def limited(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def refuse() -> None:
            status, headers, payload = error_answer(scope.get("path", "/"), too_large(limit))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": payload, "more_body": False})

        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await refuse()
            return
        body = LimitedReceive(receive, limit)
        started = False  # the app's response head has been passed on
        early_head: dict[str, Any] | None = None

        async def watching_send(message: dict[str, Any]) -> None:
            nonlocal started, early_head
            if body.overflowed and not started:
                return  # the app's own answer to a body it never got in full: ours goes out instead
            if message["type"] == "http.response.start":
                if not body.complete.is_set():
                    # An answer ready before the body has arrived (a 404, a 401) is not final yet: the body may
                    # pass the cap while the answer waits for it below, and the 413 then goes out instead.
                    early_head = message
                    return
                started = True
            elif (message["type"] == "http.response.body" and not message.get("more_body", False)
                    and not body.complete.is_set() and (declared or 0) <= DRAIN_LIMIT
                    and body.received <= DRAIN_LIMIT):
                # the framework keeps reading the body until this send completes (or, past the cap, cancels it)
                with trio.move_on_after(DRAIN_SECONDS):
                    await body.complete.wait()
            if early_head is not None:
                head, early_head, started = early_head, None, True
                await send(head)
            await send(message)

        await app(scope, body, watching_send)
        if body.overflowed and not started:
            await refuse()

    return limited
