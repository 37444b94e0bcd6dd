"""Thin async glue between the sans-IO builders/decoders and the native transport (`codex_trio.native`).

* `sse_turn` — one `POST /codex/responses` turn: yields batches of `CodexEvent`s.
* `CodexWebSocket` — one upstream socket for one (account, conversation, variant): prewarm, chained turns
  (`WsChain` decides what to send), a full-history replay when the server lost the chain, pings, age cap.
* `ConversationTransport` — what the dispatcher holds per (account, conversation, variant): WebSocket first
  like codex, falling back to SSE when the upgrade is refused with 426 (for good) or fails (for that turn).
* unary calls for the account pool: `check_account`, `fetch_models`, `fetch_usage`, `refresh_tokens`, `compact`.

Every non-2xx answer becomes `UpstreamFailed(failure)`, whose `UpstreamFailure` tells the dispatcher whether
to retry, refresh, rotate or relay (see errors.py). Rate-limit headers are handed to `on_quota`.

Async generators here must be closed by their consumer (`contextlib.aclosing`), so that abandoning a
stream (client disconnect) also closes the upstream request.
"""

from __future__ import annotations

import time
from contextlib import aclosing
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Iterable, Protocol

import orjson

from codex_trio.errors import ErrorKind, GatewayError
from codex_trio.native import Client, ProtocolError, UpstreamError
from codex_trio.telemetry import stage_timing
from codex_trio.upstream import body as bodies
from codex_trio.upstream import headers as hdrs
from codex_trio.upstream.context import AccountAuth, ModelTraits, ThreadContext, TurnContext
from codex_trio.upstream.errors import Action, UpstreamFailure, classify_event, classify_http
from codex_trio.upstream.events import TERMINAL_TYPES, CodexEvent
from codex_trio.upstream.identity import Identity
from codex_trio.upstream.quota import QuotaSnapshot, from_headers, from_rate_limits_event, from_usage, rate_limit_headers
from codex_trio.upstream.sse import SseDecoder, error_event
from codex_trio.upstream.ws_chain import Plan, WsChain
from codex_trio.upstream.ws_frames import binary_frame_event, closed_early_event, decode_text_frame

ERROR_BODY_LIMIT = 1024 * 1024
Clock = Callable[[], float]
QuotaSink = Callable[[QuotaSnapshot], None]
HeadersSink = Callable[[list[tuple[str, str]]], None]


class CookieJarLike(Protocol):
    """The account's Cloudflare cookie jar (`codex_trio.cookies.CookieJar`): consulted before an HTTPS call,
    fed with the answer's `set-cookie` headers. The WebSocket never uses it (codex-rs's store skips wss)."""

    def header_for(self, url: str) -> str | None: ...

    def capture(self, url: str, headers: Iterable[tuple[str, str]]) -> int: ...


def with_cookies(headers: list[tuple[str, str]], url: str, cookies: CookieJarLike | None, *,
                 accept_encoding: str | None = None) -> list[tuple[str, str]]:
    """The request headers plus the jar's `cookie` header for `url`, last, where reqwest's store puts it. reqwest's
    decompression layer sits outside its cookie layer, so with a release that accepts compressed answers the
    `accept-encoding` it adds comes before the cookie: it is written here, ahead of the cookie (the layer then
    leaves a present accept-encoding alone)."""
    value = cookies.header_for(url) if cookies is not None else None
    if not value:
        return headers
    # reqwest merges its default `accept: */*` before either layer runs, so it goes first when absent
    default = [] if any(name == "accept" for name, _ in headers) else [("accept", "*/*")]
    encoding = [("accept-encoding", accept_encoding)] if accept_encoding else []
    return [*headers, *default, *encoding, ("cookie", value)]


def unknown_previous_response(response_id: str) -> GatewayError:
    return GatewayError(400, f"previous_response_id {response_id!r} is not the last response of this conversation's "
                        "upstream connection (it expired or belongs to another); send the full conversation instead.",
                        ErrorKind.INVALID_REQUEST, code="previous_response_not_found", param="previous_response_id")


def undecodable(exc: ProtocolError) -> bool:
    """A zstd/gzip answer that did not decode, as opposed to a broken connection. With decompression on, reqwest
    reports both as "error decoding response body"; only the cause hyper adds for the second ("error reading a
    body from connection") tells them apart."""
    return "error decoding response body" in exc.message and "reading a body from connection" not in exc.message


def refusal_body(exc: UpstreamError) -> bytes:
    """The body of a refused WebSocket upgrade: the native transport puts it (up to 4 KiB) in the message,
    after `WebSocket upgrade refused with HTTP <status>: `. A 429's reset time is in there."""
    _, separator, body = exc.message.partition(f"refused with HTTP {exc.status}: ")
    return body.encode() if separator else b""


class UpstreamFailed(Exception):
    """The backend refused a call; `failure` says what to do about it."""

    def __init__(self, failure: UpstreamFailure) -> None:
        super().__init__(f"upstream {failure.status} {failure.code}: {failure.message}")
        self.failure = failure


class WebSocketUnavailable(Exception):
    """The upgrade failed in a way that means "use HTTP": 426, or no handshake at all."""

    def __init__(self, status: int | None, permanent: bool) -> None:
        super().__init__(f"WebSocket upgrade failed (status {status})")
        self.status = status
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class Clients:
    """One account's native clients. codex's HTTPS calls use OpenSSL (`profile="openssl"`, HTTP/1.1) and its
    Responses WebSocket uses rustls (`profile="rustls"`): two ClientHellos, so two clients, both through the
    account's own egress proxy."""

    http: Client
    websocket: Client


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where requests go: the ChatGPT backend base (`https://chatgpt.com/backend-api`) and the auth issuer."""

    base_url: str
    auth_url: str = "https://auth.openai.com"

    @classmethod
    def of(cls, identity: Identity) -> "Endpoint":
        return cls(identity.chatgpt_base_url, identity.auth_base_url)

    @property
    def responses_url(self) -> str:
        return f"{self.base_url}/codex/responses"

    @property
    def websocket_url(self) -> str:
        return "wss://" + self.responses_url.split("://", 1)[1] if "://" in self.responses_url else self.responses_url


async def _read_error_body(response: Any) -> bytes:
    body = bytearray()
    while len(body) < ERROR_BODY_LIMIT:
        batch = await response.next_batch()
        if not batch:
            break
        for chunk in batch:
            body += chunk
    return bytes(body[:ERROR_BODY_LIMIT])


# ---- HTTP + SSE -------------------------------------------------------------------------------------------


async def sse_turn(client: Client, identity: Identity, endpoint: Endpoint, auth: AccountAuth, thread: ThreadContext,
                   turn: TurnContext, request: dict[str, Any], traits: ModelTraits, *, clock: Clock = time.time,
                   on_quota: QuotaSink | None = None, on_headers: HeadersSink | None = None,
                   cookies: CookieJarLike | None = None, after_refresh: bool = False) -> AsyncIterator[list[CodexEvent]]:
    """One turn over `POST /codex/responses`, full history, zstd body. Yields event batches as they arrive;
    always ends with a terminal event (a synthetic `error` if the stream stopped early). `on_headers` gets
    the answer's rate-limit headers; `cookies` is sent and fed with the answer's Cloudflare cookies."""
    body = bodies.responses_body(request, identity, thread, turn, transport="http", traits=traits)
    payload = bodies.responses_request_bytes(body, identity)
    headers = hdrs.responses_headers(identity, auth, thread, turn, model=body["model"],
                                     reasoning_effort=bodies.reasoning_effort_of(body), traits=traits)
    url = endpoint.responses_url
    async with client.stream("POST", url, with_cookies(headers, url, cookies, accept_encoding=identity.accept_encoding),
                             payload) as response:
        now = clock()
        if cookies is not None:
            cookies.capture(url, response.headers)
        quota = from_headers(response.headers, now)
        if quota is not None and on_quota is not None:
            on_quota(quota)
        if on_headers is not None:
            on_headers(rate_limit_headers(response.headers))
        if response.status != 200:
            raw = await _read_error_body(response)
            raise UpstreamFailed(classify_http(response.status, raw, response.headers, now=now,
                                               after_refresh=after_refresh))
        decoder = SseDecoder()
        finished = False
        while not finished:
            try:
                batch = await response.next_batch()
            except ProtocolError as exc:
                if not undecodable(exc):
                    raise
                # zstd/gzip that does not decode (a body claiming an encoding it does not have): end the turn
                # with an error that says so, never a crash and never a silent end
                yield [error_event("undecodable_body", f"upstream sent a response body that could not be decoded: "
                                                       f"{exc}")]
                return
            events = [e for chunk in batch for e in decoder.feed(chunk)] if batch else decoder.close()
            finished = not batch
            if events:
                yield events
                if events[-1].type in TERMINAL_TYPES or decoder.failed:
                    return
        yield [closed_early_event(None)]


# ---- WebSocket --------------------------------------------------------------------------------------------


class CodexWebSocket:
    """One upstream socket. Serial: one request at a time (the backend's rule)."""

    def __init__(self, ws: Any, chain: WsChain, identity: Identity, thread: ThreadContext, traits: ModelTraits,
                 clock: Clock, on_quota: QuotaSink | None = None) -> None:
        self._ws = ws
        self.on_quota = on_quota  # where this socket's `codex.rate_limits` go (its owner sets it per turn)
        self.rate_headers: list[tuple[str, str]] = []  # the handshake's rate-limit headers
        self.chain = chain
        self._identity = identity
        self._thread = thread
        self._traits = traits
        self._clock = clock

    @classmethod
    async def connect(cls, client: Client, identity: Identity, endpoint: Endpoint, auth: AccountAuth,
                      thread: ThreadContext, traits: ModelTraits, *, model: str, reasoning_effort: str | None,
                      clock: Clock = time.time, on_quota: QuotaSink | None = None,
                      after_refresh: bool = False) -> "CodexWebSocket":
        headers = hdrs.websocket_headers(identity, auth, thread, model=model, reasoning_effort=reasoning_effort,
                                         traits=traits)
        try:
            ws = await client.websocket(endpoint.websocket_url, headers, deflate=True)
        except UpstreamError as exc:
            status = getattr(exc, "status", None)
            if status == 426:
                raise WebSocketUnavailable(426, permanent=True) from exc
            if status in (401, 402, 403, 429) or (status is not None and status >= 500):
                raise UpstreamFailed(classify_http(status, refusal_body(exc), [], now=clock(),
                                                   after_refresh=after_refresh)) from exc
            raise WebSocketUnavailable(status, permanent=False) from exc
        answer = ws.take_response_headers()
        quota = from_headers(answer, clock())
        if quota is not None and on_quota is not None:
            on_quota(quota)
        socket = cls(ws, WsChain(opened_at=clock()), identity, thread, traits, clock, on_quota)
        socket.rate_headers = rate_limit_headers(answer)
        return socket

    def usable(self) -> bool:
        return self.chain.usable(self._clock())

    async def ping_if_due(self) -> None:
        """For the owner's idle loop: keep an idle socket alive the way codex-proxy does (every 25 s)."""
        now = self._clock()
        if self.chain.ping_due(now) and not self.chain.busy:
            self.chain.pinged(now)
            await self._ws.ping()

    async def close(self) -> None:
        self.chain.close()
        await self._ws.close()

    async def prewarm(self, request: dict[str, Any]) -> list[CodexEvent]:
        """`response.create` with `generate:false`: the server sets up the conversation and the turn then
        chains on it. Its input is what codex puts there (see `body.prewarm_input`). Returns the prewarm's
        events (rate limits among them)."""
        request = bodies.with_instructions_in_input(request, self._identity)
        warm = {**request, "input": bodies.prewarm_input(request, self._traits)}
        body = self._frame(warm, None, previous_response_id=None, prewarm=True)
        events: list[CodexEvent] = []
        async with aclosing(self._exchange(body, warm["input"])) as exchange:
            async for batch in exchange:
                events += batch
        return events

    async def stream_turn(self, request: dict[str, Any], turn: TurnContext) -> AsyncIterator[list[CodexEvent]]:
        """One turn: the tail of the history chained on the last response when possible. If the server lost
        the chain (`previous_response_not_found`) before any output, resend the full history once.

        A client's own `previous_response_id` (Responses API) is honoured when it names this socket's last
        response; its input is then only the new items, so there is no full history to fall back on."""
        request = bodies.with_lite_tools(bodies.with_instructions_in_input(request, self._identity), self._thread,
                                         self._traits)
        full_input = list(request.get("input") or [])
        explicit = request.get("previous_response_id")
        if explicit and explicit != self.chain.response_id:
            raise unknown_previous_response(explicit)
        # Built once with the whole history: the chain compares everything but the input, and a chained frame
        # differs from it only in its input and previous_response_id (`bodies.chained_frame`).
        full = self._frame(request, turn, previous_response_id=None, prewarm=False)
        plan = Plan(full_input, explicit) if explicit else self.chain.plan(full, full_input)
        body = bodies.chained_frame(full, plan.input, plan.previous_response_id) if plan.chained else full
        replayed = False
        while True:
            restart = False
            async with aclosing(self._exchange(body, full_input, plan)) as exchange:
                async for batch in exchange:
                    last = batch[-1]
                    if plan.chained and not explicit and not replayed and last.type in ("error", "response.failed") and \
                            classify_event(last, now=self._clock()).action is Action.REPLAY:
                        restart = True
                        break
                    yield batch
            if not restart:
                return
            replayed = True
            self.chain.forget()
            body = self._frame(request, turn, previous_response_id=None, prewarm=False)  # sent now: its start time

    def _frame(self, request: dict[str, Any], turn: TurnContext | None, *, previous_response_id: str | None,
               prewarm: bool) -> dict[str, Any]:
        return bodies.responses_body(request, self._identity, self._thread, turn, transport="websocket",
                                     traits=self._traits, previous_response_id=previous_response_id, prewarm=prewarm,
                                     ws_request_start_ms=int(self._clock() * 1000))

    async def _exchange(self, body: dict[str, Any], full_input: list[dict[str, Any]],
                        plan: Plan | None = None) -> AsyncIterator[list[CodexEvent]]:
        """Send one frame and yield server events until a terminal one. `plan`: the chain's plan for it."""
        if not self.usable():
            raise WebSocketUnavailable(None, permanent=False)
        self.chain.sent(body, full_input, self._clock(), plan)
        try:
            text = bodies.ws_frame_text(body)
            stage_timing.mark("framed", again=True)
            await self._ws.send_text(text)
            stage_timing.mark("sent", again=True)  # again: a new socket's prewarm was sent first
            while True:
                # One batch = the message waited for plus every message that has already arrived behind it,
                # so a burst of small deltas costs one relay write downstream instead of one per delta.
                message: Any = await self._ws.receive()
                now = self._clock()
                batch: list[CodexEvent] = []
                while message is not None:
                    if message.kind == "text":
                        event = decode_text_frame(message.data)
                    elif message.kind == "binary":
                        event = binary_frame_event()
                    else:
                        self.chain.close()
                        yield batch + [closed_early_event(message.close_code)]
                        return
                    self.chain.received(event, now)
                    if event.type == "codex.rate_limits" and self.on_quota is not None:
                        self.on_quota(from_rate_limits_event(event.data, now))
                    batch.append(event)
                    if event.type in TERMINAL_TYPES:
                        yield batch
                        return
                    message = self._ws.receive_nowait()
                yield batch
        except BaseException:
            if self.chain.busy:
                # Abandoned mid-response (cancelled, failed, or its reader stopped early at a stop sequence):
                # the backend is still generating, and this socket's state is unknown. Dropping the socket is
                # how a turn is cancelled upstream (the protocol has no cancel frame); no wait for a close reply.
                self.chain.close()
                try:
                    await self._ws.close(timeout=0)
                except UpstreamError:
                    pass  # it was already broken: the original failure is what counts
            raise


# ---- per conversation -------------------------------------------------------------------------------------


class ConversationTransport:
    """The upstream side of one (account, conversation, variant): reuses one WebSocket across turns, falls
    back to SSE like codex does (426: for good; other handshake failures: for this turn)."""

    def __init__(self, clients: Clients, identity: Identity, endpoint: Endpoint, auth: AccountAuth,
                 thread: ThreadContext, traits: ModelTraits, *, prefer_websocket: bool = True,
                 clock: Clock = time.time, on_quota: QuotaSink | None = None) -> None:
        self._clients = clients
        self._identity = identity
        self._endpoint = endpoint
        self.auth = auth
        self._thread = thread
        self._traits = traits
        self._clock = clock
        self.on_quota = on_quota  # the current turn's quota sink (the dispatcher sets it per turn)
        self.websocket_allowed = prefer_websocket
        self.socket: CodexWebSocket | None = None
        # The rate-limit headers of the current turn's HTTP answer (the SSE response, or the handshake of a
        # socket opened for this turn); empty when the turn ran on a socket opened earlier.
        self.rate_headers: list[tuple[str, str]] = []

    async def turn(self, request: dict[str, Any], turn: TurnContext, *, after_refresh: bool = False,
                   cookies: CookieJarLike | None = None) -> AsyncIterator[list[CodexEvent]]:
        """One turn, WebSocket first. `cookies` (the account's Cloudflare jar) applies to the SSE path only."""
        self.rate_headers = []
        explicit = request.get("previous_response_id")
        if explicit and (self.socket is None or not self.socket.usable() or self.socket.chain.response_id != explicit):
            raise unknown_previous_response(explicit)
        if self.websocket_allowed:
            try:
                socket = await self._socket(request, after_refresh)
            except WebSocketUnavailable as exc:
                if exc.permanent:
                    self.websocket_allowed = False
                socket = None
            if socket is not None:
                async with aclosing(socket.stream_turn(request, turn)) as stream:
                    async for batch in stream:
                        stage_timing.mark("first_event")
                        yield batch
                return
        stage_timing.mark("sent")
        async with aclosing(sse_turn(self._clients.http, self._identity, self._endpoint, self.auth, self._thread, turn,
                                     request, self._traits, clock=self._clock, on_quota=self.on_quota,
                                     on_headers=self._keep_rate_headers, cookies=cookies,
                                     after_refresh=after_refresh)) as stream:
            async for batch in stream:
                stage_timing.mark("first_event")
                yield batch

    def _keep_rate_headers(self, headers: list[tuple[str, str]]) -> None:
        self.rate_headers = headers

    async def _socket(self, request: dict[str, Any], after_refresh: bool) -> CodexWebSocket:
        if self.socket is not None and self.socket.usable():
            self.socket.on_quota = self.on_quota
            return self.socket
        if self.socket is not None:
            await self.socket.close()
            self.socket = None
        socket = await CodexWebSocket.connect(
            self._clients.websocket, self._identity, self._endpoint, self.auth, self._thread, self._traits,
            model=request["model"], reasoning_effort=bodies.reasoning_effort_of(request), clock=self._clock,
            on_quota=self.on_quota, after_refresh=after_refresh)
        self.rate_headers = socket.rate_headers
        stage_timing.mark("ws_connected")
        events = await socket.prewarm(request)
        stage_timing.mark("prewarmed")
        if not events or events[-1].type != "response.completed":
            await socket.close()
            failure = classify_event(events[-1], now=self._clock()) if events else None
            if failure is not None and failure.action is not Action.RETRY:
                raise UpstreamFailed(failure)
            raise WebSocketUnavailable(None, permanent=False)
        self.socket = socket
        return socket

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
            self.socket = None


# ---- unary backend calls (what the account pool needs) ----------------------------------------------------


async def _json_call(client: Client, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None, *,
                     clock: Clock, after_refresh: bool = False, cookies: CookieJarLike | None = None) -> Any:
    try:
        response = await client.request(method, url, headers, body)
    except ProtocolError as exc:
        if not undecodable(exc):
            raise
        # A body that claims an encoding it does not have (or a broken one): the backend's fault, said so.
        raise UpstreamFailed(classify_http(502, orjson.dumps({"detail": f"undecodable answer from {url}: {exc}"}),
                                           [], now=clock())) from exc
    if cookies is not None:
        cookies.capture(url, response.headers)
    if not 200 <= response.status < 300:
        raise UpstreamFailed(classify_http(response.status, bytes(response.body), response.headers, now=clock(),
                                           after_refresh=after_refresh))
    try:
        return orjson.loads(response.body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamFailed(classify_http(502, bytes(response.body)[:ERROR_BODY_LIMIT], response.headers,
                                           now=clock())) from exc


async def check_account(client: Client, identity: Identity, endpoint: Endpoint, auth: AccountAuth, *,
                        clock: Clock = time.time) -> Any:
    """`GET /wham/accounts/check`: workspace routing discovery, the first call codex makes."""
    return await _json_call(client, "GET", f"{endpoint.base_url}/wham/accounts/check",
                            hdrs.accounts_check_headers(identity, auth), None, clock=clock)


async def fetch_models(client: Client, identity: Identity, endpoint: Endpoint, auth: AccountAuth, *,
                       clock: Clock = time.time) -> Any:
    """`GET /codex/models?client_version=<version>`: the account's model catalog."""
    return await _json_call(client, "GET", f"{endpoint.base_url}/codex/models?client_version={identity.version}",
                            hdrs.models_headers(identity, auth), None, clock=clock)


async def fetch_usage(client: Client, identity: Identity, endpoint: Endpoint, auth: AccountAuth, *,
                      clock: Clock = time.time) -> QuotaSnapshot:
    """`GET /wham/usage` as a QuotaSnapshot."""
    body = await _json_call(client, "GET", f"{endpoint.base_url}/wham/usage", hdrs.usage_headers(identity, auth),
                            None, clock=clock)
    return from_usage(body if isinstance(body, dict) else {}, clock())


async def refresh_tokens(client: Client, identity: Identity, endpoint: Endpoint, refresh_token: str,
                         reason: bodies.RefreshReason, *, clock: Clock = time.time) -> dict[str, Any]:
    """`POST /oauth/token` with the refresh token. The caller persists the answer before using it: refresh
    tokens are single-use. A proactive refresh is made before initialisation (no user-agent suffix)."""
    body = bodies.refresh_body(identity, refresh_token, reason)
    headers = hdrs.refresh_headers(identity, initialised=reason != "proactive_expiry")
    # A 401 here means the refresh token itself is dead: the account needs a new login, not another refresh.
    answer = await _json_call(client, "POST", f"{endpoint.auth_url}/oauth/token", headers, body, clock=clock,
                              after_refresh=True)
    if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
        raise UpstreamFailed(classify_http(502, b'{"detail":"token endpoint answered without an access_token"}', [],
                                           now=clock()))
    return answer


async def compact(client: Client, identity: Identity, endpoint: Endpoint, auth: AccountAuth, thread: ThreadContext,
                  turn: TurnContext, request: dict[str, Any], traits: ModelTraits, *,
                  clock: Clock = time.time, cookies: CookieJarLike | None = None) -> Any:
    """`POST /codex/responses/compact` (remote compaction): returns the backend's JSON (`{"output": [...]}`).
    Like every HTTPS call of the real client it carries the account's Cloudflare cookies (`cookies`), and the
    answer's `set-cookie` goes back into the jar."""
    body = bodies.compact_body(request)
    headers = hdrs.compact_headers(identity, auth, thread, turn, model=body["model"],
                                   reasoning_effort=bodies.reasoning_effort_of(body), traits=traits)
    url = f"{endpoint.responses_url}/compact"
    headers = with_cookies(headers, url, cookies, accept_encoding=identity.accept_encoding)
    return await _json_call(client, "POST", url, headers, bodies.encode_json(body),
                            clock=clock, cookies=cookies)
