"""No needless translation: when the client speaks the provider's protocol (an OpenAI SDK → a Chat or Responses
provider, Claude Code → an Anthropic provider, a Gemini SDK → a Gemini provider), its body goes out with only
the model (and auth) replaced, and the provider's answer comes back byte for byte.

The stream is still watched on the side (a second decoder, never on the bytes' path): it yields the usage for
the records and tells a complete stream from one cut short, which then ends with the client protocol's
terminal error frame exactly as a backend stream would.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Callable

import orjson
import trio
from quart import Response, current_app, request

from ..errors import GatewayError
from ..protocols.failures import premature_close
from ..server.envelopes import error_headers
from ..server.pipeline import SSE_HEADERS
from ..dispatch.pump import CLOSE_DEADLINE_SECONDS
from ..server.request_tasks import request_tasks
from ..server.streaming import STREAM_BUFFER, relay
from ..telemetry.recorder import current_recorder
from ..turn import Turn
from ..upstream.events import Usage
from ..upstream.sse import SseDecoder
from .relay import ProviderRefused, provider_chunks, account_of, send
from .responses_stream import ResponsesStream
from .translate import DECODERS
from .wire import turn_url

if TYPE_CHECKING:
    from ..server.turns import ProtocolDeps
    from ..routing.providers import ProviderTarget
    from .service import ProviderService

PROVIDER_HEADER = "x-codex-trio-provider"
FORWARDED_ANTHROPIC_HEADERS = ("anthropic-version", "anthropic-beta")


def outgoing_body(wire: str, raw: bytes, model: str) -> bytes:
    """The client's body for the provider: Gemini names the model in the URL (body unchanged), the others in
    the body (only `model` replaced; orjson keeps the client's key order)."""
    if wire == "gemini":
        return raw
    body = orjson.loads(raw)
    body["model"] = model
    return orjson.dumps(body)


def collected_usage(wire: str, body: bytes) -> Usage | None:
    """The usage of a provider's collected (non-streamed) answer, for the records."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    if wire == "gemini":
        u = data.get("usageMetadata") or {}
        return Usage(input_tokens=u.get("promptTokenCount") or 0,
                     output_tokens=(u.get("candidatesTokenCount") or 0) + (u.get("thoughtsTokenCount") or 0),
                     reported=bool(u))
    u = data.get("usage")
    if not isinstance(u, dict):
        return None
    if wire == "chat":
        return Usage(input_tokens=u.get("prompt_tokens") or 0, output_tokens=u.get("completion_tokens") or 0,
                     reported=True)
    if wire == "anthropic":
        cached = u.get("cache_read_input_tokens") or 0
        return Usage(input_tokens=(u.get("input_tokens") or 0) + cached + (u.get("cache_creation_input_tokens") or 0),
                     output_tokens=u.get("output_tokens") or 0, cached_tokens=cached, reported=True)
    return Usage.from_response(data)


class StreamWatch:
    """Decodes a copy of a passthrough stream: completeness and usage. Gemini's JSON-array stream (no
    `alt=sse`) is only checked for its closing bracket."""

    def __init__(self, wire: str, sse: bool) -> None:
        self.sse = sse
        self.stream = ResponsesStream("watch", "")
        self.decoder = DECODERS[wire](self.stream)
        self.sse_decoder = SseDecoder()
        self.usage: Usage | None = None
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        if not self.sse:
            self._tail = (self._tail + chunk)[-16:]
            return
        for event in self.sse_decoder.feed(chunk):
            self._note(self.decoder.feed(event))

    def complete(self) -> bool:
        if not self.sse:
            return self._tail.rstrip().endswith(b"]")
        self._note([out for event in self.sse_decoder.close() for out in self.decoder.feed(event)] + self.decoder.end())
        return self.stream.finished

    def _note(self, events) -> None:
        for event in events:
            if event.type in ("response.completed", "response.incomplete"):
                self.usage = Usage.from_response(event.data.get("response"))


async def passthrough(deps: "ProtocolDeps", service: "ProviderService", target: "ProviderTarget", turn: Turn,
                      raw_body: bytes, client_headers: Any, *, terminate: Callable[[GatewayError], bytes],
                      heartbeat: bytes, gemini_sse: bool = True) -> Response:
    provider, model = target.provider, target.model
    recorder = current_recorder()
    recorder.admit(turn)
    headers = {name: client_headers[name] for name in FORWARDED_ANTHROPIC_HEADERS
               if provider.wire == "anthropic" and client_headers.get(name)}
    url = turn_url(provider, model, stream=turn.stream)
    if provider.wire == "gemini" and turn.stream and not gemini_sse:
        url = url.removesuffix("?alt=sse")
    body = outgoing_body(provider.wire, raw_body, model)
    reply_headers = {PROVIDER_HEADER: provider.label}
    path = request.path  # read here: the streamed reply opens in a task outside the request's context

    async def open_reply():
        """The provider's response, or its refusal (the client's own mistake, already in its protocol's
        envelope) as the answer."""
        try:
            opened = await send(service, provider, url, body, headers, recorder)
        except ProviderRefused as exc:
            # with the headers the protocol's errors carry (Anthropic's x-should-retry), as the backend path's do
            return None, Response(exc.body, status=exc.status, content_type=exc.content_type,
                                  headers={**reply_headers, **error_headers(path, exc.status)})
        recorder.opened(account_of(provider), model, "provider")
        return opened.response, None

    if not turn.stream:  # opened, read and closed in this task
        response, refusal = await open_reply()
        if refusal is not None:
            return refusal
        collected = b""
        try:
            collected = b"".join([chunk async for chunk in provider_chunks(response, service.timeout())])
        finally:
            await response.aclose()
            recorder.closed(collected_usage(provider.wire, collected) if collected else None, None)
        return Response(collected, status=200, content_type=response.headers.get("content-type", "application/json"),
                        headers=reply_headers)

    # Streamed: one task of the request opens, relays and closes the provider's response (as the turn pump does
    # for a turn); the body only writes what it sends.
    send_frames, receive = trio.open_memory_channel[bytes](STREAM_BUFFER)
    watch = StreamWatch(provider.wire, sse=provider.wire != "gemini" or gemini_sse)

    async def serve(task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with send_frames:
            with trio.CancelScope() as work:
                deps.shutdown.register(work)
                try:
                    response, refusal = await open_reply()
                    task_status.started((response, refusal))
                    if refusal is None:
                        await _relay_chunks(response, service.timeout(), watch, recorder, send_frames, terminate)
                finally:
                    cut = deps.shutdown.was_cut(work)
                    deps.shutdown.unregister(work)
            if cut:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await send_frames.send(terminate(deps.shutdown.cut_error()))

    response, refusal = await request_tasks().start(current_app.nursery, serve)
    if refusal is not None:
        return refusal
    content_type = response.headers.get("content-type", "application/json")
    stream = relay(receive, wake=send_frames, heartbeat=heartbeat,
                   heartbeat_seconds=deps.settings.server.heartbeat_seconds)
    return Response(stream, content_type=content_type, headers={**SSE_HEADERS, **reply_headers})


async def _relay_chunks(response: Any, idle_timeout: float, watch: StreamWatch, recorder: Any,
                        out: trio.MemorySendChannel[bytes], terminate: Callable[[GatewayError], bytes]) -> None:
    """The provider's bytes as they come; a stream that breaks off or fails ends with the client protocol's
    terminal error frame. The response is closed (shielded, with a deadline) however this ends."""
    try:
        async for chunk in provider_chunks(response, idle_timeout):
            await out.send(chunk)
            watch.feed(chunk)
        if not watch.complete():
            raise premature_close()
    except GatewayError as exc:
        recorder.broke(exc)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await out.send(terminate(exc))
    finally:
        with trio.CancelScope(shield=True, deadline=trio.current_time() + CLOSE_DEADLINE_SECONDS):
            await response.aclose()
        recorder.closed(watch.usage, None)
