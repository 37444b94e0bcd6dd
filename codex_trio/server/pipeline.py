"""Serving one turn: relay the upstream events through a protocol encoder, streamed or collected.

The rule that no stream ends silently lives here: if the upstream ends without a terminal event, the
client gets the protocol's terminal error frame (streams) or a 502 (collected replies).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Protocol

import trio
from quart import Response

from ..errors import ErrorKind, GatewayError
from ..upstream.events import CodexEvent, EventNormalizer, NormalizedEvent
from .streaming import relay

if TYPE_CHECKING:
    from ..app import Gateway
    from ..dispatch.upstream_turn import UpstreamTurn

PREMATURE_CLOSE = GatewayError(502, "The upstream closed the stream before the response completed.",
                               ErrorKind.UPSTREAM, code="premature_close")

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class StreamEncoder(Protocol):
    def feed(self, event: NormalizedEvent) -> bytes: ...
    def heartbeat(self) -> bytes: ...
    def fail(self, error: GatewayError) -> bytes: ...
    def finish(self) -> bytes: ...


def encode_batch(batch: list[CodexEvent], normalizer: EventNormalizer, encoder: StreamEncoder,
                 raw: Callable[[CodexEvent], bytes] | None) -> bytes:
    """One upstream batch → one client write. With `raw`, events are relayed (Responses passthrough) but
    still normalized, so the terminal event is tracked the same way for every protocol."""
    out = []
    for event in batch:
        normalized = normalizer.feed(event)
        if raw is not None:
            out.append(raw(event))
        else:
            out.extend(encoder.feed(item) for item in normalized)
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
                if frames:
                    await send.send(frames)
                if normalizer.terminal is not None:
                    break
            if normalizer.terminal is None:
                raise PREMATURE_CLOSE
            await send.send(encoder.finish())
        finally:
            with trio.CancelScope(shield=True):
                await upstream.aclose()

    body = relay(app_nursery, produce, heartbeat=encoder.heartbeat(),
                 heartbeat_seconds=heartbeat_seconds or settings.server.heartbeat_seconds,
                 terminate=encoder.fail, shutdown=gateway.shutdown)
    headers = {**SSE_HEADERS, **dict(upstream.forward_headers)}
    return Response(body, content_type=content_type, headers=headers)


async def collect(upstream: "UpstreamTurn") -> tuple[list[NormalizedEvent], list[CodexEvent]]:
    """Read the whole turn. Raises GatewayError on failure, including a `Failed` terminal event."""
    normalizer = EventNormalizer()
    events: list[NormalizedEvent] = []
    raw: list[CodexEvent] = []
    try:
        async for batch in upstream.batches():
            for event in batch:
                raw.append(event)
                events.extend(normalizer.feed(event))
            if normalizer.terminal is not None:
                break
    finally:
        with trio.CancelScope(shield=True):
            await upstream.aclose()
    if normalizer.terminal is None:
        raise PREMATURE_CLOSE
    return events, raw
