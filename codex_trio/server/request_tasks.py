"""Tasks that work for one HTTP request (the turn pump of a streamed reply), ended when the request ends.

A streamed reply is produced by a task that outlives the route handler: the handler returns the response, and
the body is written afterwards. That task must still belong to the request, so that it ends when the request
ends — whether the body was written to its end, the client went away, or the response was never sent at all
(a client gone at the very moment its head went out). `own_request_tasks` wraps the ASGI app: each HTTP request
gets a `RequestTasks`, and when the app is done with the request, every task started through it is cancelled.

The tasks themselves run in the app's nursery: a nursery per request would cost every request a scheduler
round trip (about 24 µs measured) for the few that stream.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any, Awaitable, Callable

import trio

log = logging.getLogger(__name__)

ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class RequestTasks:
    def __init__(self) -> None:
        self._scopes: list[trio.CancelScope] = []

    async def start(self, nursery: trio.Nursery, task: Callable[..., Awaitable[Any]]) -> Any:
        """`nursery.start(task)`, with the task cancelled when the request ends (at once if it already has)."""
        scope = trio.CancelScope()
        self._scopes.append(scope)

        async def bound(task_status=trio.TASK_STATUS_IGNORED) -> None:
            status = _Status(task_status)
            with scope:
                try:
                    await task(task_status=status)
                except Exception:
                    if not status.reported:
                        raise  # to the request that is starting it
                    # After it started, a failure is the request's alone, never the app nursery's.
                    log.exception("a task of a request failed")

        return await nursery.start(bound)

    def end(self) -> None:
        for scope in self._scopes:
            scope.cancel()
        self._scopes.clear()


class _Status:
    """A task_status that remembers whether the task reported itself started."""

    def __init__(self, status: Any) -> None:
        self._status = status
        self.reported = False

    def started(self, value: Any = None) -> None:
        self.reported = True
        self._status.started(value)


_REQUEST_TASKS: ContextVar[RequestTasks] = ContextVar("request_tasks")


def own_request_tasks(app: ASGIApp) -> ASGIApp:
    async def scoped(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        tasks = RequestTasks()
        token = _REQUEST_TASKS.set(tasks)
        try:
            await app(scope, receive, send)
        finally:
            _REQUEST_TASKS.reset(token)
            tasks.end()  # the request is over: so is every task working for it

    return scoped


def request_tasks() -> RequestTasks:
    """The current request's tasks; only inside an app wrapped by `own_request_tasks`."""
    try:
        return _REQUEST_TASKS.get()
    except LookupError:
        raise RuntimeError("no request tasks: the app is not wrapped by own_request_tasks") from None
