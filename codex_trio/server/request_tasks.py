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
        """Like `nursery.start(task)`: the value the task reports with `task_status.started`, or the exception it
        raised before that; the task is cancelled when the request ends (at once if it already has).

        The task is spawned with `start_soon` and reports through `_Status`: `nursery.start` runs the task in a
        nursery of its own until it has started, 15-20 us more per streamed request (docs/performance.md)."""
        scope = trio.CancelScope()
        self._scopes.append(scope)
        status = _Status()

        async def bound() -> None:
            with scope:
                try:
                    await task(task_status=status)
                except Exception as exc:
                    if status.reported:
                        # After it started, a failure is the request's alone, never the app nursery's.
                        log.exception("a task of a request failed")
                    else:
                        status.failed(exc)  # to the request that is starting it
                    return
                except BaseException as exc:  # a cancellation: the task's own, and the starter's answer
                    if not status.reported:
                        status.failed(exc)
                    raise
            if not status.reported:
                status.failed(RuntimeError("a request's task ended without reporting itself started"))

        nursery.start_soon(bound)
        return await status.outcome()

    def end(self) -> None:
        for scope in self._scopes:
            scope.cancel()
        self._scopes.clear()


class _Status:
    """A task's `task_status` and the starter's wait for it: the value reported, or what was raised before."""

    def __init__(self) -> None:
        self.reported = False
        self._value: Any = None
        self._error: BaseException | None = None
        self._done = trio.Event()

    def started(self, value: Any = None) -> None:
        if self.reported:
            raise RuntimeError("called `started` twice on the same task status")
        self.reported = True
        self._value = value
        self._done.set()

    def failed(self, error: BaseException) -> None:
        self._error = error
        self._done.set()

    async def outcome(self) -> Any:
        await self._done.wait()
        if self.reported:
            return self._value
        if isinstance(self._error, Exception):
            raise self._error
        # cancelled before it started (the app's nursery is closing): this request cannot be served either
        raise RuntimeError("a request's task was cancelled before it started") from self._error


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
