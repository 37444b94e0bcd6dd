"""Turning a producer of client frames into a streamed response body.

The producer (a protocol's pump: upstream events → encoded frames) runs as its own task in the app's
nursery and hands bytes over a channel. The response body only reads that channel, which makes three
things simple and safe:

* heartbeats: waiting on a channel with a timeout loses nothing (unlike cancelling an upstream read);
* batching: everything queued when the body wakes up goes out in one write (hypercorn's cost is per write);
* endings: if the producer fails, or shutdown cuts it, the body appends the protocol's terminal error frame.

A client disconnect cancels the body; its `finally` cancels the producer, which aborts the upstream call.
"""

from __future__ import annotations

import logging
from typing import AsyncIterator, Awaitable, Callable

import trio

from ..errors import ErrorKind, GatewayError
from .shutdown import ShutdownCoordinator, shutdown_error

log = logging.getLogger(__name__)

Producer = Callable[[trio.MemorySendChannel[bytes]], Awaitable[None]]
# Given the reason a stream ended early, return the protocol's terminal frame(s).
Terminator = Callable[[GatewayError], bytes]


def as_gateway_error(exc: BaseException) -> GatewayError:
    if isinstance(exc, GatewayError):
        return exc
    log.exception("stream producer failed", exc_info=exc)
    return GatewayError(502, f"The upstream stream failed: {exc}", ErrorKind.UPSTREAM, code="stream_error")


async def relay(
    nursery: trio.Nursery,
    produce: Producer,
    *,
    heartbeat: bytes,
    heartbeat_seconds: float,
    terminate: Terminator,
    shutdown: ShutdownCoordinator,
    buffer: int = 256,
) -> AsyncIterator[bytes]:
    send, receive = trio.open_memory_channel[bytes](buffer)
    failure: list[BaseException] = []

    async def run(task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            async with send:
                try:
                    await produce(send)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the body went away first: nobody to tell
                except Exception as exc:  # noqa: BLE001 - every failure becomes a terminal frame
                    failure.append(exc)

    scope: trio.CancelScope = await nursery.start(run)
    shutdown.register(scope)
    try:
        async with receive:
            ended = False
            while not ended:
                with trio.move_on_after(heartbeat_seconds) as idle:
                    try:
                        parts = [await receive.receive()]
                    except trio.EndOfChannel:
                        break
                if idle.cancelled_caught:
                    if heartbeat:
                        yield heartbeat
                    continue
                while True:
                    try:
                        parts.append(receive.receive_nowait())
                    except trio.WouldBlock:
                        break
                    except trio.EndOfChannel:
                        ended = True
                        break
                yield b"".join(parts)
        if failure:
            yield terminate(as_gateway_error(failure[0]))
        elif shutdown.was_cut(scope):
            yield terminate(shutdown_error())
    finally:
        scope.cancel()
        shutdown.unregister(scope)
