"""A streamed response body: the frames a turn's pump hands over a channel, written with batching and heartbeats.

The pump (`dispatch/pump.py`) runs as its own task, owned by the request, and sends bytes over a channel; the
body only reads that channel, which keeps two things simple and safe:

* heartbeats: waiting on a channel with a timeout loses nothing (unlike cancelling an upstream read);
* batching: everything queued when the body wakes up goes out in one write (hypercorn's cost is per write).

Endings are the pump's: it sends the protocol's terminal frame (or failure frame) before closing the channel.
A client that goes away stops the body; the request then ends, and with it the pump, which closes the turn.
"""

from __future__ import annotations

from typing import AsyncIterator

import trio

# Frames the pump may queue ahead of a slow client before it waits (about one upstream batch each).
STREAM_BUFFER = 256


async def relay(receive: trio.MemoryReceiveChannel[bytes], *, heartbeat: bytes,
                heartbeat_seconds: float) -> AsyncIterator[bytes]:
    """Everything the channel carries, batched per wake-up; `heartbeat` after each `heartbeat_seconds` of
    silence (nothing when the protocol has no heartbeat its clients accept)."""
    async with receive:
        ended = False
        while not ended:
            # A scope of its own rather than `move_on_after`, whose context-manager generator costs a few µs per
            # event (with 1,000 slow streams this wait happens 20,000 times a second).
            with trio.CancelScope(deadline=trio.current_time() + heartbeat_seconds) as idle:
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
