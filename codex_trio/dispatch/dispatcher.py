"""Opening an upstream turn: choose an account, send, and fail over until the turn has really started.

"Started" means the backend sent its first substantive event (an output item, text, ...). Until then the
client has received nothing, so any failure — HTTP status, refused WebSocket, an early `error` event — may
be retried on the same account (transient errors, a refreshed token) or on another one (rate limits, bans,
Cloudflare blocks, a plan without the model). After that, failures reach the client as its protocol's
terminal error: nothing is retried once a byte may have been shown.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncContextManager, AsyncIterator

import trio

from ..accounts.proxies import NoRoute
from ..errors import ErrorKind, GatewayError
from ..native import UpstreamError
from ..turn import Turn
from ..upstream.context import ThreadContext, TurnContext
from ..upstream.errors import Action, UpstreamFailure, classify_event
from ..upstream.events import TERMINAL_TYPES, CodexEvent, Usage
from ..upstream.quota import QuotaSnapshot, to_headers
from ..upstream.transport import ConversationTransport, UpstreamFailed, compact
from ..accounts.pool import Failure
from ..telemetry import stage_timing
from ..telemetry.recorder import NULL_RECORDER, TurnRecorder, current_recorder, transport_of
from ..routing.catalog import Catalog, with_model_defaults
from .connector import UpstreamConnector
from .conversations import Conversation, ConversationRegistry, continues_conversation, conversation_key, variant_key

if TYPE_CHECKING:
    from ..accounts.pool import AccountPool, Lease
    from ..store.response_chains import ChainLink, ResponseChains

log = logging.getLogger(__name__)

# Events that say nothing yet about whether the turn will work.
PRELUDE_TYPES = frozenset({"response.created", "response.in_progress", "response.queued", "codex.rate_limits",
                           "response.metadata", "codex.response.metadata"})
# Failures that are the client's own request, relayed at once and never tried on another account: RELAY, and
# REPLAY once it reaches the dispatcher — the transport resends the full history itself when a chained turn
# lost its chain, so a "lost chain" answer here came for the full history (e.g. "No tool output found for
# function call …": the client's history has a call without its output). Another account would say the same.
CLIENT_MISTAKES = frozenset({Action.RELAY, Action.REPLAY})
MAX_ACCOUNTS_TRIED = 8
SAME_ACCOUNT_RETRIES = 2  # transient 5xx / transport errors, before moving on (1 s, 2 s)
BUSY_GRACE_SECONDS = 0.5  # how long a turn waits for its conversation's socket before opening its own


@dataclass
class OpenedTurn:
    """An upstream turn that has started; implements `dispatch.upstream_turn.UpstreamTurn`."""

    dispatcher: "Dispatcher"
    lease: "Lease"
    stack: AsyncExitStack
    stream: AsyncIterator[list[CodexEvent]]
    buffered: list[list[CodexEvent]]
    model: str
    conversation: Conversation
    conversation_key: str
    idle_timeout: float
    quota: list[QuotaSnapshot]
    forward_headers: list[tuple[str, str]] = field(default_factory=list)
    _usage: Usage | None = None
    _response_id: str | None = None
    _failure: UpstreamFailure | None = None
    _closed: bool = False
    recorder: TurnRecorder = NULL_RECORDER  # the request's usage / log / metrics record
    chain_link: "ChainLink | None" = None  # several instances: this turn's link in the shared response chains

    @property
    def account_id(self) -> str:
        return self.lease.account.id

    async def batches(self) -> AsyncIterator[list[CodexEvent]]:
        while self.buffered:
            batch = self.buffered.pop(0)
            self._observe(batch)
            yield batch
        while True:
            try:
                # A scope of its own rather than `fail_after`, whose context-manager generator costs a few µs per
                # batch (one batch per event when many slow streams each carry an event every 50 ms).
                with trio.CancelScope(deadline=trio.current_time() + self.idle_timeout) as idle:
                    batch = await self.stream.__anext__()
                if idle.cancelled_caught:
                    raise self._broke(GatewayError(504, f"The upstream sent nothing for {self.idle_timeout:.0f} s; "
                                      "the stream was ended.", ErrorKind.TIMEOUT, code="upstream_idle_timeout"))
            except StopAsyncIteration:
                if self._usage is None and self._failure is None:
                    self.recorder.broke(GatewayError(502, "The upstream ended the stream without a terminal event.",
                                                     ErrorKind.UPSTREAM, code="premature_close"))
                return
            except UpstreamError as exc:
                # The transport's own text (TLS library wording, links) is for the log, not for clients.
                log.warning("account %s: upstream connection broke mid-stream: %s", self.account_id, exc)
                raise self._broke(GatewayError(502, "The upstream connection broke mid-stream; the response is "
                                  "incomplete. Retry the request.", ErrorKind.UPSTREAM,
                                  code="upstream_stream_error")) from None
            self._observe(batch)
            yield batch
            if batch and batch[-1].type in TERMINAL_TYPES:
                return

    def _broke(self, error: GatewayError) -> GatewayError:
        self.recorder.broke(error)
        return error

    def _observe(self, batch: list[CodexEvent]) -> None:
        for event in batch:
            if event.type in ("response.completed", "response.incomplete"):
                response = event.data.get("response") or {}
                self._usage = Usage.from_response(response)
                self._response_id = response.get("id")
            elif event.type == "response.output_item.done" and self.chain_link is not None:
                self.chain_link.outputs.append(event.data.get("item"))
            elif event.type in ("response.failed", "error"):
                self._failure = classify_event(event, now=self.dispatcher.now())

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.recorder.closed(self._usage, self._failure)
        try:
            for snapshot in self.quota:
                await self.lease.update_quota(snapshot)
            if self._failure is not None:
                await self.dispatcher.account_failed(self.lease, self._failure)
            elif self._usage is not None:
                await self.lease.report_success(
                    None, response_id=self._response_id, input_tokens=self._usage.input_tokens,
                    output_tokens=self._usage.output_tokens)
                if self._response_id:
                    self.dispatcher.remember_response(self._response_id, self.conversation_key)
                    if self.chain_link is not None and self.dispatcher.shared_chains is not None:
                        self.dispatcher.shared_chains.completed(self.chain_link, self._response_id, self.account_id,
                                                                self.conversation_key)
        finally:
            await self.stack.aclose()


class Dispatcher:
    """Turns on accounts: built from the account pool, the upstream connector and the model catalog."""

    def __init__(self, pool: "AccountPool", connector: UpstreamConnector, catalog: Catalog, *,
                 settings_source: Any) -> None:
        self.pool = pool
        self.connector = connector
        self.catalog = catalog
        self._settings = settings_source
        self.conversations = ConversationRegistry()
        self._response_conversation: dict[str, str] = {}
        self.shared_chains: "ResponseChains | None" = None  # set on PostgreSQL (store/response_chains.py)

    def now(self) -> float:
        """The accounts' clock (tests run it on the simulator's), so cooldowns end at the backend's resets."""
        return self.connector.clock()

    def choose(self, model: str, key: str, excluded: set[str], *,
               previous_response_id: str | None = None) -> AsyncContextManager["Lease"]:
        """Who serves this turn: a lease on an account of the pool (the seam where other providers plug in).
        Held until the turn is closed; `excluded` are the accounts already tried for it."""
        return self.pool.acquire(model=model, conversation_id=key, previous_response_id=previous_response_id,
                                 exclude=excluded)

    def remember_response(self, response_id: str, key: str) -> None:
        self._response_conversation[response_id] = key
        if len(self._response_conversation) > 20000:  # bounded: oldest first (dicts keep insertion order)
            for old in list(self._response_conversation)[:5000]:
                del self._response_conversation[old]

    def _new_conversation(self, lease: "Lease", request: dict) -> Conversation:
        account = lease.account
        connector = self.connector
        thread = ThreadContext.new(account.installation_id)
        transport = ConversationTransport(
            connector.clients_for(account), connector.identity, connector.endpoint, connector.auth_for(account),
            thread, self.catalog.traits(request["model"]),
            prefer_websocket=self.conversations.websocket_allowed(account.id), clock=connector.clock)
        return Conversation(thread, transport)

    async def _claim_conversation(self, stack: AsyncExitStack, lease: "Lease", key: str,
                                  request: dict) -> Conversation:
        """The conversation's upstream state, held for this turn (released by `stack`).

        Its socket carries one turn at a time. A follow-up usually arrives as the previous turn is closing, so
        it waits a moment; a turn that still finds it busy is another conversation that merely looks the same
        (parallel agents sharing a prompt) and gets its own upstream connection. A turn chained with an
        explicit previous_response_id can only run on the socket that holds that response, so it waits."""
        conversation = self._conversation(lease, key, request)
        # A first message never waits: its socket is busy with another client's identical first message.
        if await conversation.claim(BUSY_GRACE_SECONDS if continues_conversation(key, request) else 0):
            stack.callback(conversation.busy.release)
            return conversation
        if request.get("previous_response_id"):
            await conversation.busy.acquire()
            stack.callback(conversation.busy.release)
            return conversation
        conversation = self._new_conversation(lease, request)
        stack.push_async_callback(conversation.transport.close)
        return conversation

    def _conversation(self, lease: "Lease", key: str, request: dict) -> Conversation:
        return self.conversations.get((lease.account.id, key, variant_key(request)),
                                      lambda: self._new_conversation(lease, request))

    async def open(self, turn: Turn) -> OpenedTurn:
        """Start the turn on some account. Raises GatewayError when no account can serve it."""
        recorder = current_recorder()
        recorder.admit(turn)  # client-key limits: before any upstream call, never counted against an account
        turn.request = request = with_model_defaults(turn.request, self.catalog.entry(turn.request["model"]))
        if turn.options.get("client_metadata"):  # a Responses client's metadata: the upstream body merges it
            request["client_metadata"] = turn.options["client_metadata"]
        previous = request.get("previous_response_id")
        key = (self._response_conversation.get(previous) if previous else None) or conversation_key(turn)
        chain_link = None
        if self.shared_chains is not None:  # a chain served by another instance continues here, replayed
            chain_link, owner_key = await self.shared_chains.begin(
                turn, self.pool, known_here=previous in self._response_conversation)
            request, key = turn.request, owner_key or key
        excluded: set[str] = set()
        last_error: GatewayError | None = None
        for _ in range(MAX_ACCOUNTS_TRIED):
            try:
                opened = await self._open_on_one_account(turn, key, excluded)
                opened.recorder = recorder
                opened.chain_link = chain_link
                recorder.opened(opened.account_id, opened.model, transport_of(opened.conversation.transport))
                return opened
            except _TryAnother as exc:
                recorder.failed_over(exc.account_id, exc.error)
                excluded.add(exc.account_id)
                last_error = exc.error
            except GatewayError as exc:
                if last_error is not None and exc.kind in (ErrorKind.OVERLOADED, ErrorKind.RATE_LIMIT):
                    # no account left: say what went wrong with the ones we tried, and why none is left
                    raise GatewayError(last_error.status if exc.kind is ErrorKind.OVERLOADED else exc.status,
                                       f"{last_error.message} (and no account is left to retry on: {exc.message})",
                                       last_error.kind if exc.kind is ErrorKind.OVERLOADED else exc.kind,
                                       code=last_error.code, retry_after=exc.retry_after or last_error.retry_after
                                       ) from None
                raise
        raise last_error or GatewayError(503, "No account could serve the request.", ErrorKind.OVERLOADED)

    async def _open_on_one_account(self, turn: Turn, key: str, excluded: set[str]) -> OpenedTurn:
        request = turn.request
        settings = self._settings.settings
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            lease = await stack.enter_async_context(self.choose(
                request["model"], key, excluded, previous_response_id=request.get("previous_response_id")))
            stage_timing.mark("leased")
            if request.get("previous_response_id") and lease.preferred_missed:
                raise GatewayError(400, "previous_response_id belongs to an account that cannot serve this request "
                                   "now; send the full conversation instead.", ErrorKind.INVALID_REQUEST,
                                   code="previous_response_not_found", param="previous_response_id")
            try:
                conversation = await self._claim_conversation(stack, lease, key, request)
            except NoRoute as exc:  # its proxy is excluded or gone: paused, never sent direct; try another account
                raise _TryAnother(lease.account.id, exc) from None
            quota: list[QuotaSnapshot] = []
            transport = conversation.transport
            transport.on_quota = quota.append  # this turn's snapshots go to this lease
            for attempt in range(SAME_ACCOUNT_RETRIES + 2):
                account = lease.account
                await conversation.use_auth(self.connector.auth_for(account))
                cookies = self.connector.lazy_cookie_jar_for(account)
                current_recorder().sending()
                stream = transport.turn(request, TurnContext.new(), cookies=cookies)
                try:
                    try:
                        buffered = await self._until_started(stream, settings.api.timeout_seconds)
                    finally:  # before any failure handling: an empty 404 then clears them
                        await self.connector.save_cookies(account, cookies.built)
                except UpstreamFailed as exc:
                    await stream.aclose()
                    if await self._retry_same_account(lease, exc.failure, attempt):
                        continue
                    raise _TryAnother(lease.account.id, exc.failure.to_gateway_error(self.now())) from None
                except UpstreamError as exc:
                    await stream.aclose()
                    error = unreachable(exc, lease.account.id)
                    if attempt < SAME_ACCOUNT_RETRIES:
                        await trio.sleep(attempt + 1)
                        continue
                    await lease.report_failure(Failure.NETWORK)
                    raise _TryAnother(lease.account.id, error) from None
                self.conversations.learn_fallback(lease.account.id, conversation)
                stack.push_async_callback(stream.aclose)
                headers = transport.rate_headers or self._quota_headers(lease, quota)
                return OpenedTurn(self, lease, stack, stream, buffered, request["model"], conversation, key,
                                  settings.api.stream_idle_timeout_seconds, quota, headers)
            raise GatewayError(502, "The upstream kept failing.", ErrorKind.UPSTREAM)
        except BaseException:
            await stack.aclose()
            raise

    async def _until_started(self, stream: AsyncIterator[list[CodexEvent]], timeout: float) -> list[list[CodexEvent]]:
        """Read until the first substantive event. An early error event raises UpstreamFailed, so the caller
        can fail over exactly as for an HTTP error."""
        buffered: list[list[CodexEvent]] = []
        with trio.move_on_after(timeout) as waiting:
            async for batch in stream:
                buffered.append(batch)
                for event in batch:
                    if event.type in PRELUDE_TYPES:
                        continue
                    if event.type in ("error", "response.failed"):
                        failure = classify_event(event, now=self.now())
                        if failure.action not in CLIENT_MISTAKES:
                            raise UpstreamFailed(failure)
                        raise failure.to_gateway_error(self.now())
                    return buffered
        if waiting.cancelled_caught:
            raise GatewayError(504, f"The upstream did not start answering within {timeout:.0f} s (api.timeout_seconds).",
                               ErrorKind.TIMEOUT, code="upstream_timeout")
        return buffered

    async def _retry_same_account(self, lease: "Lease", failure: UpstreamFailure, attempt: int) -> bool:
        """Act on a failure before the turn started. True: try again on this account."""
        if failure.action is Action.RETRY and not failure.rotate_after_retries and attempt < SAME_ACCOUNT_RETRIES:
            await trio.sleep(failure.retry_after or attempt + 1)
            return True
        if failure.action is Action.RETRY and failure.rotate_after_retries and attempt < SAME_ACCOUNT_RETRIES:
            await trio.sleep(attempt + 1)
            return True
        if failure.action is Action.REFRESH and attempt <= SAME_ACCOUNT_RETRIES:
            return await lease.mark_token_invalid()
        if failure.action in CLIENT_MISTAKES:
            raise failure.to_gateway_error(self.now())
        await self.account_failed(lease, failure)
        return False

    async def account_failed(self, lease: "Lease", failure: UpstreamFailure) -> None:
        """Record what a failure says about the account (rate limit, ban, Cloudflare) in the pool."""
        if failure.quota is not None:
            await lease.update_quota(failure.quota)
        if failure.action is Action.ROTATE and failure.account_state in ("rate_limited", "quota_exhausted"):
            await lease.mark_rate_limited(failure.cooldown_until, failure.quota)
        elif failure.action is Action.ACCOUNT_DEAD:
            if failure.status == 401:
                await lease.mark_token_invalid()
            else:
                await lease.mark_banned(failure.message)
            self.conversations.forget_account(lease.account.id)
        elif failure.action is Action.CLOUDFLARE:
            await lease.report_failure(Failure.EMPTY_404 if failure.status == 404 else Failure.CLOUDFLARE_CHALLENGE)
        elif failure.action is Action.RETRY:
            await lease.report_failure(Failure.SERVER_ERROR)

    def _quota_headers(self, lease: "Lease", snapshots: list[QuotaSnapshot]) -> list[tuple[str, str]]:
        """The rate-limit headers of a turn that had no HTTP answer of its own (a reused WebSocket): the
        account's cached quota with this turn's `codex.rate_limits` events folded in, rendered as the
        backend's headers (translation.md §7.12: "from upstream or cached quota")."""
        folded = lease.quota  # the pool's parsed snapshot: not parsed again from `account.quota` per turn
        for snapshot in snapshots:
            folded = folded.merged(snapshot) if folded is not None else snapshot
        return to_headers(folded, self.now()) if folded is not None else []

    async def compact(self, turn: Turn) -> Any:
        """`POST /codex/responses/compact` on some account, failing over like a turn does."""
        current_recorder().admit(turn)  # client-key limits apply to compaction too
        request = turn.request
        key = conversation_key(turn)
        excluded: set[str] = set()
        last_error: GatewayError | None = None
        connector = self.connector
        for _ in range(MAX_ACCOUNTS_TRIED):
            async with self.choose(request["model"], key, excluded) as lease:
                account = lease.account
                conversation = self._conversation(lease, key, request)
                try:
                    cookies = connector.cookie_jar_for(account)
                    try:
                        return await compact(connector.clients_for(account).http, connector.identity,
                                             connector.endpoint, connector.auth_for(account), conversation.thread,
                                             TurnContext.new(), request, self.catalog.traits(request["model"]),
                                             cookies=cookies)
                    finally:
                        await connector.save_cookies(account, cookies)
                except UpstreamFailed as exc:
                    if exc.failure.action in CLIENT_MISTAKES:
                        raise exc.failure.to_gateway_error(self.now()) from None
                    await self.account_failed(lease, exc.failure)
                    last_error = exc.failure.to_gateway_error(self.now())
                except UpstreamError as exc:
                    last_error = unreachable(exc, account.id)
                excluded.add(account.id)
        raise last_error or GatewayError(503, "No account could serve the request.", ErrorKind.OVERLOADED)

    async def close(self) -> None:
        await self.conversations.close_all()


# What a client is told when the connection to the backend fails, by the transport's error class. The
# transport's own text (TLS library wording, with links to its manual) says nothing a client can act on: it
# goes to the log.
_TRANSPORT_FAILURES = {
    "connect": "Could not connect to the upstream; check the network and the account's egress proxy.",
    "tls": "The secure connection to the upstream failed; check the network, the egress proxy and tls.ca_file.",
    "timeout": "The upstream did not answer in time.",
    "proxy": "The egress proxy failed to reach the upstream; check the account's proxy settings.",
}
_TRANSPORT_FAILURE = "The connection to the upstream broke before the response started."


def unreachable(exc: UpstreamError, account_id: str) -> GatewayError:
    """A transport failure before the turn started, as the client sees it (the detail is logged)."""
    log.warning("account %s: upstream connection failed (%s): %s", account_id, exc.kind, exc)
    message = _TRANSPORT_FAILURES.get(exc.kind, _TRANSPORT_FAILURE)
    return GatewayError(502, f"{message} Retry the request; the gateway log has the details.", ErrorKind.UPSTREAM,
                        code="upstream_unreachable")


class _TryAnother(Exception):
    def __init__(self, account_id: str, error: GatewayError) -> None:
        super().__init__(error.message)
        self.account_id = account_id
        self.error = error
