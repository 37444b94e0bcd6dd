"""Serving one turn over HTTP: streamed (SSE / NDJSON) or collected, both by the turn pump (`dispatch/pump.py`).

A streamed turn's pump is a task of the request (`request_tasks.py`), started with `nursery.start`: the route learns whether the turn opened — and answers an error status in its protocol's
envelope if not — before it returns the streaming response. The pump then opens, feeds and closes the turn in
that one task; the body only relays its frames (`streaming.relay`). A collected reply runs the same pump in the
handler's own task.

The rule that no stream ends silently lives in the pump: if the upstream ends without a terminal event, the
client gets the protocol's terminal error frame (streams) or a 502 (collected replies). A stop sequence ends the
reply early: reading stops there and closing the turn cancels it upstream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

import trio
from quart import Response, current_app

from ..dispatch.pump import Collected, TurnPump, discard
from ..errors import GatewayError
from ..telemetry import stage_timing
from ..upstream.events import CodexEvent, NormalizedEvent
from .http_server import head_waits_for_first_chunk
from .request_tasks import request_tasks
from .streaming import STREAM_BUFFER, Bypass, relay

if TYPE_CHECKING:
    from ..dispatch.upstream_turn import UpstreamTurn
    from ..turn import Turn

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class StreamEncoder(Protocol):
    """A protocol's sans-IO stream encoder, as the HTTP routes use it."""

    @property
    def stopped(self) -> bool:
        """A stop sequence ended the reply: read no further, then `finish()` ends the stream cleanly."""
        ...

    def feed(self, event: NormalizedEvent) -> bytes: ...
    def heartbeat(self) -> bytes: ...
    def fail(self, error: GatewayError) -> bytes: ...
    def finish(self) -> bytes: ...


class EncodedStream:
    """`TurnOutput[bytes]` over a StreamEncoder. With `raw`, events are relayed as they came (Responses
    passthrough); the pump still normalizes them, so the terminal event is tracked the same way for every
    protocol. Nothing after a stop sequence reaches the encoder."""

    def __init__(self, encoder: StreamEncoder, *, raw: Callable[[CodexEvent], bytes] | None = None,
                 prefix: bytes = b"") -> None:
        self._encoder = encoder
        self._raw = raw
        self._prefix = prefix

    @property
    def stopped(self) -> bool:
        return self._encoder.stopped

    def start(self) -> list[bytes]:
        return [self._prefix] if self._prefix else []

    def feed(self, event: CodexEvent, normalized: list[NormalizedEvent]) -> list[bytes]:
        if self._raw is not None:
            return [self._raw(event)]
        out = []
        for item in normalized:
            if self._encoder.stopped:
                break
            out.append(self._encoder.feed(item))
        return out

    def finish(self) -> list[bytes]:
        return [self._encoder.finish()]

    def fail(self, error: GatewayError) -> list[bytes]:
        return [self._encoder.fail(error)]


async def stream_turn(pump: TurnPump, turn: "Turn", encoder: StreamEncoder, *, heartbeat_seconds: float,
                      content_type: str = "text/event-stream", raw: Callable[[CodexEvent], bytes] | None = None,
                      prefix: bytes = b"") -> Response:
    """Open the turn (raising GatewayError when no account serves it) and answer with its stream."""
    send, receive = trio.open_memory_channel[bytes](STREAM_BUFFER)
    bypass = Bypass()

    async def deliver(frames: list[bytes]) -> None:
        stage_timing.mark("translated")
        write = bypass.writer()  # the body waits with nothing queued: write the frames from here
        if write is not None:
            await write(b"".join(frames))
        else:
            await send.send(b"".join(frames))

    async def serve(task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with send:
            await pump.run(turn, EncodedStream(encoder, raw=raw, prefix=prefix), deliver, task_status=task_status)

    upstream: "UpstreamTurn" = await request_tasks().start(current_app.nursery, serve)
    head_waits_for_first_chunk()  # the turn is open: its first frames are on their way
    body = relay(receive, wake=send, heartbeat=encoder.heartbeat(), heartbeat_seconds=heartbeat_seconds,
                 bypass=bypass)
    return Response(body, content_type=content_type, headers={**SSE_HEADERS, **dict(upstream.forward_headers)})


@dataclass
class CollectedTurn:
    """A whole turn read for a non-streaming reply."""

    events: list[NormalizedEvent]  # normalized, up to a stop sequence
    raw: list[CodexEvent]
    forward_headers: list[tuple[str, str]] = field(default_factory=list)
    opened_at: float = 0.0  # time.monotonic() when the turn had started upstream


class _Opened:
    """The `task_status` of a pump run in the caller's own task: keeps what the pump reports once open."""

    upstream: "UpstreamTurn | None" = None
    at = 0.0

    def started(self, upstream: Any = None) -> None:
        self.upstream, self.at = upstream, time.monotonic()


async def collect_turn(pump: TurnPump, turn: "Turn", stop_sequences: list[str] | None = None) -> CollectedTurn:
    """Read the whole turn, or until its text deltas reach one of `stop_sequences` (see `stops.early_stops`);
    every adapter sees those deltas, so its `encode_response` cuts the text at the same stop. Raises
    GatewayError on failure."""
    output, opened = Collected(stop_sequences), _Opened()
    await pump.run(turn, output, discard, cuttable=False, task_status=opened)
    headers = list(opened.upstream.forward_headers) if opened.upstream is not None else []
    return CollectedTurn(output.events, output.raw, headers, opened.at)
