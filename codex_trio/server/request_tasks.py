"""A nursery owned by each HTTP request, for the tasks that work for it (the turn pump of a streamed reply).

A streamed reply is produced by a task that outlives the route handler: the handler returns the response, and
the body is written afterwards. That task must still belong to the request, so that it ends when the request
ends — whether the body was written to its end, the client went away, or the response was never sent at all
(a client gone at the very moment its head went out). `own_request_tasks` wraps the ASGI app: every HTTP request
runs inside a nursery of its own, cancelled as soon as the app is done with the request; `request_nursery()`
gives a handler that nursery.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Awaitable, Callable

import trio

ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

_REQUEST_NURSERY: ContextVar[trio.Nursery] = ContextVar("request_nursery")


def own_request_tasks(app: ASGIApp) -> ASGIApp:
    async def scoped(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        async with trio.open_nursery() as nursery:
            token = _REQUEST_NURSERY.set(nursery)
            try:
                await app(scope, receive, send)
            finally:
                _REQUEST_NURSERY.reset(token)
                nursery.cancel_scope.cancel()  # the request is over: so is every task working for it

    return scoped


def request_nursery() -> trio.Nursery:
    """The current request's nursery; only inside an app wrapped by `own_request_tasks`."""
    try:
        return _REQUEST_NURSERY.get()
    except LookupError:
        raise RuntimeError("no request nursery: the app is not wrapped by own_request_tasks") from None
