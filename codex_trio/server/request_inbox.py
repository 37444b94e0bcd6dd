"""A request's ASGI `receive` side that the app can read without a task of its own (issue #20).

hypercorn hands each request's app the receive end of a memory channel, and puts the request's messages into it
(`http.request` with body bytes, then `http.disconnect` when the client goes away or the exchange is over), a
scheduler pass per message. Quart-Trio reads them with a second task per request, and the handler waits for that
task to pass the body on: more hand-offs for a body that, for a short request, arrived in the same read as the head.

`RequestInbox` is that queue with two more ways in, both synchronous:

* `ready()` returns a message already queued, or None: the app takes a body that is there without waiting;
* `watch_disconnect(callback)` calls `callback` when the client disconnects: once the body is taken, the app
  needs no task to notice that.

`put` (hypercorn's `app_put`) queues without a scheduler pass. Body messages wait for room beyond `size` queued
ones: that holds back the reading of an upload the app reads slowly. `http.disconnect` never waits (an app that
stopped reading a body, e.g. one past the size cap, would otherwise block the response's end, which reports the
disconnect), and once the app has finished (`finish`) nothing waits: nobody reads any more.

ASGI wrappers that wrap `receive` pass both on (`body_limit.LimitedReceive`); a `receive` without them (a test
client's) is read the ordinary way.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

import trio

DISCONNECT = "http.disconnect"


class RequestInbox:
    __slots__ = ("_size", "_queue", "_arrived", "_room", "_finished", "_disconnected", "_on_disconnect")

    def __init__(self, size: int) -> None:
        self._size = size
        self._queue: deque[dict[str, Any]] = deque()
        self._arrived = trio.lowlevel.ParkingLot()  # the app waiting for a message
        self._room = trio.lowlevel.ParkingLot()  # hypercorn waiting to queue a body message
        self._finished = False
        self._disconnected = False
        self._on_disconnect: Callable[[], None] | None = None

    async def put(self, message: dict[str, Any]) -> None:
        """hypercorn's `app_put`: queue a message for the app."""
        if message["type"] == DISCONNECT:
            self._disconnected = True
            if self._on_disconnect is not None:
                self._on_disconnect()
        else:
            while len(self._queue) >= self._size and not self._finished:
                await self._room.park()
        if self._finished:
            return
        self._queue.append(message)
        self._arrived.unpark()

    async def __call__(self) -> dict[str, Any]:
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._queue:
            await self._arrived.park()
        return self._take()

    def ready(self) -> dict[str, Any] | None:
        return self._take() if self._queue else None

    def _take(self) -> dict[str, Any]:
        message = self._queue.popleft()
        self._room.unpark()
        return message

    def watch_disconnect(self, callback: Callable[[], None] | None) -> bool:
        """Call `callback` (now, if it already happened) when the client disconnects; None stops watching."""
        self._on_disconnect = callback
        if callback is not None and self._disconnected:
            callback()
        return True

    def finish(self) -> None:
        """The app is done with the request: drop what is queued, and let a waiting `put` go."""
        self._finished = True
        self._queue.clear()
        self._room.unpark_all()
