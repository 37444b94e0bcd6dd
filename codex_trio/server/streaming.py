"""A streamed response body: the frames a turn's pump hands over a channel, written with batching and heartbeats.

The pump (`dispatch/pump.py`) runs as its own task, owned by the request, and sends bytes over a channel; the
body only reads that channel, which keeps two things simple and safe:

* heartbeats: a body that has been silent for its interval is woken by a marker on its own channel, so waiting for
  it loses nothing (unlike cancelling an upstream read);
* batching: everything queued when the body wakes up goes out in one write (hypercorn's cost is per write).

While the body waits with nothing queued, the pump writes its frames to the client itself (`Bypass`, through the
connection's short path for later chunks): a slow stream's delta then wakes one task, not two.

Endings are the pump's: it sends the protocol's terminal frame (or failure frame) before closing the channel.
A client that goes away stops the body; the request then ends, and with it the pump, which closes the turn.

Heartbeats come from one clock task per event loop (`HeartbeatClock`), not from a deadline on every wait: with
1,000 slow streams the body waits 20,000 times a second, and a cancel scope with a deadline per wait was ~6 % of
the Python thread (docs/performance.md, "1,000 paced streams, fourth round").
"""

from __future__ import annotations

import math
from typing import AsyncIterator

import trio

from .http_server import ChunkWriter, later_chunk_writer

# Frames the pump may queue ahead of a slow client before it waits (about one upstream batch each).
STREAM_BUFFER = 256


class _Tick:
    """The marker the clock sends a silent body: not a frame, never written."""


TICK = _Tick()


class _Silence:
    """One body's heartbeat state, as the clock sees it."""

    __slots__ = ("wake", "interval", "last", "ticked")

    def __init__(self, wake: trio.MemorySendChannel, interval: float) -> None:
        self.wake = wake  # the channel the body reads: a TICK on it wakes the body
        self.interval = interval
        self.last = trio.current_time()  # when the body last wrote something
        self.ticked = False  # a TICK is on its way and not yet taken

    def due(self) -> float:
        return math.inf if self.ticked else self.last + self.interval


class HeartbeatClock:
    """Wakes every body that has been silent for its interval: one task for all of them, sleeping until the
    earliest one is due (a body that writes only moves its own time; the clock looks again when it wakes)."""

    def __init__(self) -> None:
        self._bodies: set[_Silence] = set()
        self._next = math.inf
        self._sleep: trio.CancelScope | None = None

    def watch(self, silence: _Silence) -> None:
        self._bodies.add(silence)
        if silence.due() < self._next and self._sleep is not None:
            self._sleep.cancel()  # sleeping past this one's time: look again

    def forget(self, silence: _Silence) -> None:
        self._bodies.discard(silence)

    async def run(self) -> None:
        while True:
            now = trio.current_time()
            self._next = math.inf
            for silence in list(self._bodies):
                if silence.due() <= now:
                    self._tick(silence)
                self._next = min(self._next, silence.due())
            with trio.CancelScope(deadline=self._next) as self._sleep:
                await trio.sleep_forever()
            self._sleep = None

    def _tick(self, silence: _Silence) -> None:
        try:
            silence.wake.send_nowait(TICK)
        except trio.WouldBlock:
            silence.last = trio.current_time()  # frames are queued: the body is not silent, just busy
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self._bodies.discard(silence)  # the pump is done (its end closed) or the body went away
        else:
            silence.ticked = True


class Bypass:
    """Lets a streamed body's producer write a frame to the client itself while the body waits with nothing
    queued, once the response's head and first chunk are out (`http_server.later_chunk_writer`): a slow stream's
    delta then wakes one task (the producer) instead of two, and passes no channel, relay or body loop.

    Order is kept: the body counts as waiting only while it is blocked on an empty channel, and as soon as a frame
    goes over the channel it no longer does (that frame may be on its way to the body), so the frames after it
    follow it over the channel until the body has written it and waits again. Heartbeats and the body's end stay
    the body's; a direct write counts as the body writing (its silence starts again)."""

    __slots__ = ("waiting", "silence")

    def __init__(self) -> None:
        self.waiting = False  # the body is blocked on its empty channel
        self.silence: _Silence | None = None  # the body's heartbeat state, while it has one

    def writer(self) -> ChunkWriter | None:
        """How to write the next frame directly, or None: then it goes over the channel."""
        if self.waiting:
            write = later_chunk_writer()
            if write is not None:
                if self.silence is not None:
                    self.silence.last = trio.current_time()
                return write
        self.waiting = False
        return None


_clock: trio.lowlevel.RunVar[HeartbeatClock] = trio.lowlevel.RunVar("heartbeat_clock")


def heartbeat_clock() -> HeartbeatClock:
    """This event loop's clock, started on first use."""
    try:
        return _clock.get()
    except LookupError:
        clock = HeartbeatClock()
        _clock.set(clock)
        trio.lowlevel.spawn_system_task(clock.run, name="heartbeat clock")
        return clock


async def relay(receive: trio.MemoryReceiveChannel[bytes], *, wake: trio.MemorySendChannel[bytes],
                heartbeat: bytes, heartbeat_seconds: float, bypass: Bypass | None = None) -> AsyncIterator[bytes]:
    """Everything the channel carries, batched per wake-up; `heartbeat` after each `heartbeat_seconds` of
    silence (nothing when the protocol has no heartbeat its clients accept). `wake` is the channel's sending
    end (the pump's), on which the heartbeat clock marks a silent body. `bypass`: the producer may write frames
    itself while this body waits (`Bypass`)."""
    bypass = bypass or Bypass()
    async with receive:
        if not heartbeat:
            try:
                while (frames := await _next_frames(receive, bypass)) is not None:
                    if frames:
                        yield b"".join(frames)
            finally:
                bypass.waiting = False
            return
        clock, silence = heartbeat_clock(), _Silence(wake, heartbeat_seconds)
        clock.watch(silence)
        bypass.silence = silence
        try:
            while (frames := await _next_frames(receive, bypass)) is not None:
                now = trio.current_time()
                ticked, silence.ticked = silence.ticked, False
                if frames:
                    silence.last = now
                    if ticked:  # the clock stopped counting this body when it sent the marker
                        clock.watch(silence)
                    yield b"".join(frames)
                elif now >= silence.last + silence.interval:
                    silence.last = now
                    clock.watch(silence)
                    yield heartbeat
                else:
                    clock.watch(silence)  # marked, but the body wrote since: due again later
        finally:
            bypass.waiting, bypass.silence = False, None
            clock.forget(silence)


async def _next_frames(receive: trio.MemoryReceiveChannel[bytes], bypass: Bypass) -> list[bytes] | None:
    """The frames queued at the next wake-up (an empty list when only the clock's marker was); None once the
    channel has ended and is empty (an end met while taking the queued frames is reported by the next call).
    While it waits on an empty channel, the producer may write directly (`bypass`)."""
    try:
        try:
            first = receive.receive_nowait()
        except trio.WouldBlock:
            bypass.waiting = True
            try:
                first = await receive.receive()
            finally:
                bypass.waiting = False
    except trio.EndOfChannel:
        return None
    frames = [] if first is TICK else [first]
    while True:
        try:
            frame = receive.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            return frames
        if frame is not TICK:
            frames.append(frame)
