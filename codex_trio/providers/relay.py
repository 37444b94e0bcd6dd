"""Sending one request to a provider: choose a key (rotated, rested on 429), fail over between keys until the
provider answered 200 (nothing has reached the client yet), then either

* translate: the provider's stream becomes Responses events (`ProviderTurn`, an `UpstreamTurn` like the
  backend's), which the client's own encoder serves; or
* pass through: the client speaks the provider's protocol, so its body goes out with only auth and model
  changed and the provider's bytes come back unchanged (`passthrough`).

Either way the turn is recorded (usage, request log, metrics) with `provider:<label>` as the account, and a
stream that breaks or ends early gets the client protocol's terminal error, as for the backend.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

import orjson
import trio

from ..errors import ErrorKind, GatewayError, status_to_kind
from ..telemetry.recorder import NULL_RECORDER, TurnRecorder
from ..upstream.errors import UpstreamFailure, classify_event
from ..upstream.events import CodexEvent, Usage
from ..upstream.sse import SseDecoder
from .keyring import REFUSED_FACTOR
from .model import Provider
from .responses_stream import ResponsesStream
from .translate import DECODERS, REQUEST_BUILDERS
from .wire import auth_headers, turn_url

if TYPE_CHECKING:
    import httpx

    from .service import ProviderService

log = logging.getLogger(__name__)


def load_httpx():
    """httpx, imported when a provider is first called: a gateway without providers never loads it (idle RSS)."""
    import httpx

    return httpx
KEY_FAILURES = (401, 403, 429)  # the key's problem: another key may work
RETRIED_STATUSES = (408, 500, 502, 503, 504, 529)  # the provider's trouble: another key (a new attempt) may work
ERROR_BODY_LIMIT = 64 * 1024


def account_of(provider: Provider) -> str:
    """How usage, the request log and metrics name a provider (its "account")."""
    return f"provider:{provider.label}"


@dataclass
class Opened:
    """A provider request answered with 200, its body not read yet."""

    provider: Provider
    response: httpx.Response


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return None


def _provider_message(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode("utf-8", "replace").strip()
    if isinstance(data, list) and data:
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return str(error or data)[:300]


class ProviderRefused(Exception):
    """The provider refused the request itself (a 4xx no other key cures): relayed to the client."""

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        super().__init__(status)
        self.status, self.body, self.content_type = status, body, content_type

    def as_error(self, provider: Provider) -> GatewayError:
        return GatewayError(self.status, f"provider {provider.label}: {_provider_message(self.body)}",
                            status_to_kind(self.status), code="provider_error")


async def send(service: "ProviderService", provider: Provider, url: str, body: bytes,
               headers: dict[str, str], recorder: TurnRecorder = NULL_RECORDER) -> Opened:
    """POST `body` with each usable key in turn until the provider answers 200. Raises ProviderRefused for the
    client's own mistake, GatewayError when no key could get an answer."""
    settings_cooldown = service.key_cooldown()
    keys = service.keys.order(provider.id, provider.keys)
    if not keys:
        wait = service.keys.soonest_ready(provider.id, provider.keys) or settings_cooldown
        raise GatewayError(429, f"every API key of provider {provider.label} is resting after rate limits; retry "
                           f"in {wait:.0f} s", ErrorKind.RATE_LIMIT, code="provider_rate_limited", retry_after=wait)
    client = service.client_for(provider)
    last: GatewayError | None = None
    for key in keys:
        recorder.sending()
        request = client.build_request("POST", url, content=body,
                                       headers={**headers, **auth_headers(provider, key),
                                                "content-type": "application/json"})
        try:
            with trio.fail_after(service.timeout()):
                response = await client.send(request, stream=True)
        except (load_httpx().HTTPError, trio.TooSlowError) as exc:
            log.warning("provider %s: request failed: %s", provider.label, type(exc).__name__)
            last = GatewayError(502, f"provider {provider.label} could not be reached ({type(exc).__name__}); check "
                                "its base URL and egress proxy", ErrorKind.UPSTREAM, code="provider_unreachable")
            recorder.failed_over(account_of(provider), last)
            continue
        if response.status_code == 200:
            return Opened(provider, response)
        error_body = await _read_capped(response)
        status = response.status_code
        if status in KEY_FAILURES:
            rest = _retry_after(response) or settings_cooldown
            service.keys.rest(provider.id, key, rest if status == 429 else rest * REFUSED_FACTOR)
            kind = ErrorKind.RATE_LIMIT if status == 429 else ErrorKind.UPSTREAM
            what = "rate-limited" if status == 429 else "refused"
            last = GatewayError(429 if status == 429 else 502, f"provider {provider.label} {what} its API key: "
                                f"{_provider_message(error_body)}", kind, code="provider_key_" + what.replace("-", "_"),
                                retry_after=rest if status == 429 else None)
        elif status in RETRIED_STATUSES:
            last = GatewayError(502, f"provider {provider.label} failed (HTTP {status}): "
                                f"{_provider_message(error_body)}", ErrorKind.UPSTREAM, code="provider_error")
        else:
            raise ProviderRefused(status, error_body, response.headers.get("content-type", "application/json"))
        recorder.failed_over(account_of(provider), last)
    assert last is not None
    raise last


async def _read_capped(response: httpx.Response) -> bytes:
    chunks, size = [], 0
    try:
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= ERROR_BODY_LIMIT:
                break
    except load_httpx().HTTPError:
        pass
    finally:
        await response.aclose()
    return b"".join(chunks)[:ERROR_BODY_LIMIT]


async def provider_chunks(response: httpx.Response, idle_timeout: float) -> AsyncIterator[bytes]:
    """The provider's body; a silence longer than `idle_timeout` or a broken connection is a GatewayError."""
    iterator = response.aiter_bytes().__aiter__()
    while True:
        try:
            with trio.fail_after(idle_timeout):
                chunk = await iterator.__anext__()
        except StopAsyncIteration:
            return
        except trio.TooSlowError:
            raise GatewayError(504, f"the provider sent nothing for {idle_timeout:.0f} s; the stream was ended.",
                               ErrorKind.TIMEOUT, code="upstream_idle_timeout") from None
        except load_httpx().HTTPError:
            raise GatewayError(502, "the connection to the provider broke mid-stream; the response is incomplete. "
                               "Retry the request.", ErrorKind.UPSTREAM, code="upstream_stream_error") from None
        yield chunk


# ---- translation: a provider turn served through the client's own encoder ----------------------------------

@dataclass
class ProviderTurn:
    """Implements `dispatch.upstream_turn.UpstreamTurn` for a provider."""

    opened: Opened
    model: str
    idle_timeout: float
    recorder: TurnRecorder
    now: Callable[[], float]
    forward_headers: list[tuple[str, str]] = field(default_factory=list)
    _usage: Usage | None = None
    _failure: UpstreamFailure | None = None
    _closed: bool = False

    @property
    def account_id(self) -> str:
        return account_of(self.opened.provider)

    async def batches(self) -> AsyncIterator[list[CodexEvent]]:
        provider = self.opened.provider
        stream = ResponsesStream(f"resp_{uuid.uuid4().hex[:24]}", self.model)
        decoder = DECODERS[provider.wire](stream)
        sse = SseDecoder()
        try:
            async for chunk in provider_chunks(self.opened.response, self.idle_timeout):
                batch = [out for event in sse.feed(chunk) for out in decoder.feed(event)]
                if batch:
                    self._observe(batch)
                    yield batch
                if stream.finished:
                    return
        except GatewayError as exc:
            self.recorder.broke(exc)
            raise
        tail = [out for event in sse.close() for out in decoder.feed(event)] + decoder.end()
        if tail:
            self._observe(tail)
            yield tail

    def _observe(self, batch: list[CodexEvent]) -> None:
        for event in batch:
            if event.type in ("response.completed", "response.incomplete"):
                self._usage = Usage.from_response(event.data.get("response"))
            elif event.type in ("response.failed", "error"):
                self._failure = classify_event(event, now=self.now())

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.recorder.closed(self._usage, self._failure)
        with trio.CancelScope(shield=True):
            await self.opened.response.aclose()


async def open_provider_turn(service: "ProviderService", provider: Provider, request: dict[str, Any], model: str,
                             recorder: TurnRecorder, headers: list[tuple[str, str]] = ()) -> ProviderTurn:
    """Start the canonical turn `request` on `provider` (translated to its wire), streamed."""
    body = orjson.dumps(REQUEST_BUILDERS[provider.wire](request, model))
    try:
        opened = await send(service, provider, turn_url(provider, model, stream=True), body, {}, recorder)
    except ProviderRefused as exc:
        raise exc.as_error(provider) from None
    recorder.opened(account_of(provider), model, "provider")
    return ProviderTurn(opened, model, service.timeout(), recorder, service.clock, list(headers))
