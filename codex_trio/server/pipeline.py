"""Serving one turn: relay the upstream events through a protocol encoder, streamed or collected.

The rule that no stream ends silently lives here: if the upstream ends without a terminal event, the
client gets the protocol's terminal error frame (streams) or a 502 (collected replies).

A stop sequence ends the reply early: reading stops there and closing the upstream turn cancels it, so the
subscription does not go on generating (and spending quota on) text nobody will see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Protocol

import trio
from quart import Response

from ..errors import GatewayError
from ..protocols.failures import premature_close
from ..protocols.stops import StopScanner
from ..telemetry import stage_timing
from ..upstream.events import CodexEvent, EventNormalizer, NormalizedEvent, TextDelta
from .streaming import relay

if TYPE_CHECKING:
    from ..app import Gateway
    from ..dispatch.upstream_turn import UpstreamTurn

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class StreamEncoder(Protocol):
    @property
    def stopped(self) -> bool:
        """A stop sequence ended the reply: read no further, then `finish()` ends the stream cleanly."""
        ...

    def feed(self, event: NormalizedEvent) -> bytes: ...
    def heartbeat(self) -> bytes: ...
    def fail(self, error: GatewayError) -> bytes: ...
    def finish(self) -> bytes: ...


def encode_batch(batch: list[CodexEvent], normalizer: EventNormalizer, encoder: StreamEncoder,
                 raw: Callable[[CodexEvent], bytes] | None) -> bytes:
    """One upstream batch → one client write. With `raw`, events are relayed (Responses passthrough) but
    still normalized, so the terminal event is tracked the same way for every protocol. Nothing after a stop
    sequence reaches the encoder (not even a failure the cancelled turn would have had)."""
    out = []
    for event in batch:
        normalized = normalizer.feed(event)
        if raw is not None:
            out.append(raw(event))
            continue
        for item in normalized:
            if encoder.stopped:
                return b"".join(out)
            out.append(encoder.feed(item))
    return b"".join(out)


def stream_response(gateway: "Gateway", app_nursery: trio.Nursery, upstream: "UpstreamTurn",
                    encoder: StreamEncoder, *, content_type: str = "text/event-stream",
                    raw: Callable[[CodexEvent], bytes] | None = None, prefix: bytes = b"",
                    heartbeat_seconds: float | None = None) -> Response:
    settings = gateway.config.settings

    async def produce(send: trio.MemorySendChannel[bytes]) -> None:
        normalizer = EventNormalizer()
        try:
            if prefix:
                await send.send(prefix)
            async for batch in upstream.batches():
                frames = encode_batch(batch, normalizer, encoder, raw)
                stage_timing.mark("translated")
                if frames:
                    await send.send(frames)
                if normalizer.terminal is not None or encoder.stopped:
                    break
            if normalizer.terminal is None and not encoder.stopped:
                raise premature_close()
            await send.send(encoder.finish())
        finally:
            with trio.CancelScope(shield=True):
                await upstream.aclose()

    body = relay(app_nursery, produce, heartbeat=encoder.heartbeat(),
                 heartbeat_seconds=heartbeat_seconds or settings.server.heartbeat_seconds,
                 terminate=encoder.fail, shutdown=gateway.shutdown)
    headers = {**SSE_HEADERS, **dict(upstream.forward_headers)}
    return Response(body, content_type=content_type, headers=headers)


async def collect(upstream: "UpstreamTurn", stop_sequences: list[str] | None = None,
                  ) -> tuple[list[NormalizedEvent], list[CodexEvent]]:
    """Read the whole turn, or until its text deltas reach one of `stop_sequences` (see `stops.early_stops`);
    every adapter sees those deltas, so its `encode_response` cuts the text at the same stop. Raises
    GatewayError on failure."""
    normalizer = EventNormalizer()
    stops = StopScanner(stop_sequences or ())
    events: list[NormalizedEvent] = []
    raw: list[CodexEvent] = []
    try:
        async for batch in upstream.batches():
            for event in batch:
                raw.append(event)
                for item in normalizer.feed(event):
                    if stops.hit:
                        break  # the rest is what a cancelled turn would have said
                    events.append(item)
                    if isinstance(item, TextDelta):
                        stops.feed(item.delta)
            if normalizer.terminal is not None or stops.hit:
                break
    finally:
        with trio.CancelScope(shield=True):
            await upstream.aclose()
    if normalizer.terminal is None and not stops.hit:
        raise premature_close()
    return events, raw
