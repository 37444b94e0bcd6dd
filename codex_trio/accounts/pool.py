"""The account pool: which account serves the next request, and what the answer teaches us about it.

    async with pool.acquire(model="gpt-5.5", conversation_id=cid, previous_response_id=prev,
                            exclude=tried) as lease:
        ... send with lease.account.tokens.access_token ...
        await lease.report_success(quota, response_id=rid, input_tokens=…, output_tokens=…)

On an upstream error before the first byte the caller reports it (mark_rate_limited / mark_banned /
mark_token_invalid / report_failure), adds the id to `exclude` and acquires again: failover happens before
the client sees anything. Rules follow spec/upstream.md §9 with the fixes of peers.md §3 A.3: a cooldown
ends at the reset time it was given (measured on the injected clock, so tests move time), after which the
account is re-verified through /wham/usage before it is trusted again; nothing stays locked past its reset.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import time
from collections import OrderedDict
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from operator import itemgetter
from typing import AsyncIterator, Awaitable, Callable, Iterable

import trio

from codex_trio.errors import ErrorKind, GatewayError
from codex_trio.upstream.quota import QuotaSnapshot, crossed_thresholds

from . import oauth
from .choice_index import ChoiceIndex, Rank
from .model import Account, AccountStatus
from .refresh import RefreshFailed, TokenRefresher
from .store import AccountStore

log = logging.getLogger(__name__)

CLOUDFLARE_COOLDOWNS = (10.0, 30.0, 90.0, 120.0)
CLOUDFLARE_QUIET_RESET = 3600.0
EMPTY_404_WINDOW = 3600.0
EMPTY_404_LIMIT = 3
# least_used: window resets closer than this to the earliest known one count as equal
RESET_TIE_SECONDS = 60.0


class Strategy(StrEnum):
    LEAST_USED = "least_used"
    ROUND_ROBIN = "round_robin"
    STICKY = "sticky"


class Failure(StrEnum):
    """What `report_failure` understands (statuses with their own method are not here)."""

    SERVER_ERROR = "server_error"
    OVERLOADED = "overloaded"
    NETWORK = "network"
    CLOUDFLARE_CHALLENGE = "cloudflare_challenge"  # 403 HTML / cf-mitigated: short escalating cooldown
    EMPTY_404 = "empty_404"  # bot-management block: clear cookies; 3 within an hour disables the account
    MODEL_NOT_SUPPORTED = "model_not_supported"


@dataclass(slots=True)
class PoolConfig:
    strategy: Strategy = Strategy.LEAST_USED
    max_concurrent_per_account: int = 3
    affinity_ttl_seconds: float = 4 * 3600
    skip_exhausted: bool = True
    warning_thresholds: tuple[float, ...] = (80.0, 90.0)
    slot_wait_seconds: float = 30.0
    max_verifications: int = 5  # /wham/usage checks per acquire
    default_cooldown_seconds: float = 60.0  # 429 without a reset time
    model_limit_ids: dict[str, str] = field(default_factory=dict)  # model -> per-model limit id


@dataclass(slots=True, eq=False)  # hashed by identity: the choice index keeps runtimes in sets and dicts
class _Runtime:
    account: Account
    position: int = 0  # insertion order in the pool (the scan's order among equal ranks)
    wake: float = math.inf  # the next time its blocked state or rank can change by itself (choice index)
    in_flight: int = 0
    quota: QuotaSnapshot | None = None
    verify_required: bool = False
    unauthorized_seen: str | None = None  # access token that got a first 401
    cf_strikes: int = 0
    cf_until: float = 0.0
    cf_last: float = 0.0
    empty_404s: tuple[float, ...] = ()  # not a list per account: 5,000 empty lists were 0.3 MiB
    pending_requests: int = 0
    pending_input: int = 0
    pending_output: int = 0
    quota_dirty: bool = False
    last_failure: tuple[str, float] | None = None  # shown by GET /auth/accounts and `codex-trio accounts list`


AFFINITY_ENTRIES = 50_000  # per map (responses, conversations): ~7 MiB each when full


class _Affinity:
    """key → (account id, when it was recorded). Insertion order = age order, so purging pops from the front.
    Ages are compared with the current TTL, so a changed `auth.affinity_ttl_minutes` applies to every entry.

    At most `AFFINITY_ENTRIES` are kept, the oldest given up first: the TTL alone let the map grow with the
    request rate (two hours of a 30-minute soak's 11 turns/s is 80,000 entries per map, ~12 MiB; 100 turns/s
    would be ~100 MiB). A conversation whose entry was given up is placed like a new one."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._map: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def put(self, key: str, account_id: str, now: float) -> None:
        self._map.pop(key, None)
        self._map[key] = (account_id, now)
        while self._map:
            first = next(iter(self._map.values()))
            if first[1] + self.ttl > now and len(self._map) <= AFFINITY_ENTRIES:
                break
            self._map.popitem(last=False)

    def get(self, key: str | None, now: float) -> str | None:
        if not key:
            return None
        entry = self._map.get(key)
        if entry is None or entry[1] + self.ttl <= now:
            return None
        return entry[0]

    def forget_account(self, account_id: str) -> None:
        for key in [k for k, (a, _) in self._map.items() if a == account_id]:
            del self._map[key]


def _ring_key(rt: _Runtime) -> tuple[float, str]:
    return (rt.account.created_at, rt.account.id)


def _sticky_rank(rt: _Runtime, now: float = 0.0, horizon: float = 0.0) -> Rank:
    return (-(rt.account.last_used_at or 0.0), rt.account.created_at)


def _earliest_reset(rt: _Runtime, now: float) -> float | None:
    return rt.quota.earliest_reset(now) if rt.quota else None


def _least_used_rank(rt: _Runtime, now: float, horizon: float, reset: float | None = None) -> Rank:
    if reset is None:
        reset = _earliest_reset(rt, now)
    later = reset if reset is not None and reset >= horizon else 0.0
    exhausted = rt.quota is not None and rt.quota.blocks(now)
    return (exhausted, later, rt.account.request_count + rt.in_flight, rt.account.last_used_at or 0.0)


def _wake_time(rt: _Runtime, now: float) -> float:
    """The next time something `_blocked_reason` or a rank reads changes without anyone touching the account:
    a cooldown's end, the access token's expiry (a refreshing account), a quota window's reset."""
    account = rt.account
    times = [t for t in (account.cooldown_until, rt.cf_until, account.access_expires_at) if t and t > now]
    if rt.quota is not None:
        windows = rt.quota.windows() + [w for b in rt.quota.buckets for w in (b.primary, b.secondary) if w]
        times += [w.resets_at for w in windows if w.resets_at is not None and w.resets_at > now]
    return min(times, default=math.inf)


class Lease:
    """One request's hold on one account (one concurrency slot until the `async with` ends)."""

    def __init__(self, pool: AccountPool, runtime: _Runtime, conversation_id: str | None,
                 preferred_missed: bool, model: str | None = None) -> None:
        self._pool = pool
        self._rt = runtime
        self._conversation_id = conversation_id
        self._model = model
        # the previous response lives on another account: the caller must send the full history instead of
        # previous_response_id (it is unknown to this account)
        self.preferred_missed = preferred_missed

    @property
    def account(self) -> Account:
        return self._rt.account

    @property
    def quota(self) -> QuotaSnapshot | None:
        """The pool's snapshot of the account's quota: `account.quota` as parsed (it is written from this one)."""
        return self._rt.quota

    async def report_success(self, quota: QuotaSnapshot | None = None, *, response_id: str | None = None,
                             input_tokens: int = 0, output_tokens: int = 0) -> None:
        pool, rt = self._pool, self._rt
        now = pool.clock()
        if response_id:
            pool._by_response.put(response_id, rt.account.id, now)
        if self._conversation_id:
            pool._by_conversation.put(self._conversation_id, rt.account.id, now)
        rt.pending_requests += 1
        rt.pending_input += input_tokens
        rt.pending_output += output_tokens
        rt.account.request_count += 1
        rt.account.input_tokens += input_tokens
        rt.account.output_tokens += output_tokens
        rt.account.last_used_at = now
        rt.unauthorized_seen = None
        rt.cf_strikes = 0
        pool._touch(rt)
        if quota is not None:
            await pool._apply_quota(rt, quota)

    async def update_quota(self, quota: QuotaSnapshot) -> None:
        """A mid-stream snapshot (WebSocket codex.rate_limits)."""
        await self._pool._apply_quota(self._rt, quota)

    async def mark_rate_limited(self, reset_at: float | None, quota: QuotaSnapshot | None = None) -> None:
        """429 usage_limit_reached: cooled down until `reset_at` (unix seconds; default cooldown if unknown).
        When the answer's quota shows only a per-model limit full (e.g. codex_bengalfox) while the main one
        has room, the account is not cooled down: that limit is remembered for this request's model, and the
        account keeps serving other models."""
        pool, rt = self._pool, self._rt
        if quota is not None:
            rt.quota = rt.quota.merged(quota) if rt.quota else quota
            rt.account.quota = rt.quota.to_dict()
            rt.account.quota_updated_at = pool.clock()
            rt.quota_dirty = True
            pool._touch(rt)
            now = pool.clock()
            full = [b.limit_id for b in quota.buckets if b.blocks(now)]
            if self._model and full and not quota.exhausted:
                pool.config.model_limit_ids[self._model] = full[0]
                return
        await pool._cool_down(rt, reset_at)

    async def mark_banned(self, reason: str) -> None:
        await self._pool._set_status(self._rt, AccountStatus.BANNED, reason)

    async def mark_token_invalid(self) -> bool:
        """An upstream 401. Like the real client: the first 401 reloads the account from the store and the
        request may be retried (with a token another task may have refreshed meanwhile); the second 401 for
        the same token refreshes with refresh_reason=unauthorized_recovery. Returns True if the caller should
        retry on this account with `lease.account` (fresh tokens), False to fail over (account is expired)."""
        pool, rt = self._pool, self._rt
        failed = rt.account.tokens.access_token
        try:
            if rt.unauthorized_seen != failed:
                rt.unauthorized_seen = failed
                rt.account = await pool.refresher.reload(rt.account.id)
                pool._touch(rt)
                return True
            rt.unauthorized_seen = None
            rt.account = await pool.refresher.refresh(rt.account.id, oauth.RefreshReason.UNAUTHORIZED_RECOVERY,
                                                      seen_access_token=failed)
            pool._touch(rt)
            return True
        except RefreshFailed:
            return False  # a permanent failure has marked the account expired; either way, fail over

    async def report_failure(self, failure: Failure | str) -> None:
        await self._pool._failure(self._rt, Failure(failure))


class AccountPool:
    # Below this many accounts every choice scans them (a few microseconds); from it on, a choice without
    # exclusions is read from a ChoiceIndex kept up to date as accounts change (same choices, see _pick_indexed).
    INDEX_MIN_ACCOUNTS = 64
    MAX_INDEXES = 4  # one per model context (plans offering it, per-model limit) in use

    def __init__(
        self,
        store: AccountStore,
        refresher: TokenRefresher,
        config: PoolConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        verify_quota: Callable[[Account], Awaitable[QuotaSnapshot | None]] | None = None,
        on_warning: Callable[[Account, float, QuotaSnapshot], None] | None = None,
        on_status_change: Callable[[Account], None] | None = None,
    ) -> None:
        self.store = store
        self.refresher = refresher
        self.config = config or PoolConfig()
        self.clock = clock
        self._verify_quota = verify_quota
        self._on_warning = on_warning
        self._on_status_change = on_status_change
        self._accounts: dict[str, _Runtime] = {}
        self._by_response = _Affinity(self.config.affinity_ttl_seconds)
        self._by_conversation = _Affinity(self.config.affinity_ttl_seconds)
        self._plan_models: dict[str, frozenset[str]] = {}
        self._rr_last: tuple[float, str] | None = None
        self._tie_turn = 0
        self._slot_freed = trio.Event()
        self._positions = itertools.count()
        self._indexes: dict[tuple[frozenset[str] | None, str | None], ChoiceIndex[_Runtime]] = {}
        self._wakes: list[tuple[float, int, _Runtime]] = []  # (wake time, position, runtime), a heap
        refresher.listeners.append(self.upsert)

    def reconfigure(self, config: PoolConfig) -> None:
        """New settings (a config change): strategy, limits, thresholds and cooldowns apply from the next
        choice on. What the pool learnt (per-model limits) is kept; requests waiting for a slot look again,
        since the per-account limit may have grown."""
        config.model_limit_ids = self.config.model_limit_ids
        self.config = config
        self._by_response.ttl = self._by_conversation.ttl = config.affinity_ttl_seconds
        self._indexes.clear()  # strategy, concurrency limit or skip_exhausted may have changed
        self._slot_freed.set()
        self._slot_freed = trio.Event()

    # ---- membership -----------------------------------------------------------------------------------

    async def load(self, accounts: list[Account] | None = None) -> None:
        """Add every account of the store, or `accounts` when the caller has just read them (start-up reads
        the store once for the proxy rebalance and the pool)."""
        for account in await self.store.list() if accounts is None else accounts:
            self.upsert(account)

    def upsert(self, account: Account) -> None:
        """Add an account or replace its record (keeps in-flight counts and runtime quota)."""
        rt = self._accounts.get(account.id)
        if rt is None:
            rt = self._accounts[account.id] = _Runtime(account, next(self._positions),
                                                       quota=QuotaSnapshot.from_dict(account.quota))
            self._touch(rt)
            return
        # counters and quota not flushed yet live only here: a record re-read from the store lacks them
        old = rt.account
        account.request_count = max(account.request_count, old.request_count)
        account.input_tokens = max(account.input_tokens, old.input_tokens)
        account.output_tokens = max(account.output_tokens, old.output_tokens)
        account.last_used_at = max(account.last_used_at or 0.0, old.last_used_at or 0.0) or None
        if rt.quota_dirty:
            account.quota, account.quota_updated_at = old.quota, old.quota_updated_at
        rt.account = account
        if account.quota is not None and rt.quota is None:
            rt.quota = QuotaSnapshot.from_dict(account.quota)
        self._touch(rt)

    def remove(self, account_ids: Iterable[str]) -> None:
        for account_id in account_ids:
            self._accounts.pop(account_id, None)
            self._by_response.forget_account(account_id)
            self._by_conversation.forget_account(account_id)
        self._indexes.clear()

    def set_plan_models(self, plan: str, models: Iterable[str]) -> None:
        """The catalog fetched for one plan: a model is routed only to accounts whose plan lists it
        (accounts of plans not fetched yet stay eligible)."""
        self._plan_models[plan] = frozenset(models)
        self._indexes.clear()  # which accounts a plan filter lets through changed

    def get(self, account_id: str) -> Account | None:
        rt = self._accounts.get(account_id)
        return rt.account if rt else None

    def accounts(self) -> list[Account]:
        return [rt.account for rt in self._accounts.values()]

    def runtime_info(self, account_id: str) -> dict[str, object]:
        rt = self._accounts.get(account_id)
        if rt is None:
            return {}
        now = self.clock()
        return {"in_flight": rt.in_flight, "verify_required": rt.verify_required,
                "cloudflare_cooldown_until": rt.cf_until if rt.cf_until > now else None,
                "last_failure": {"kind": rt.last_failure[0], "at": rt.last_failure[1]} if rt.last_failure else None,
                "quota": rt.quota.to_dict() if rt.quota else None}

    def warnings(self) -> list[dict[str, object]]:
        """Accounts at or above the lowest warning threshold (for /auth/quota/warnings)."""
        if not self.config.warning_thresholds:
            return []
        low = min(self.config.warning_thresholds)
        out = []
        for rt in self._accounts.values():
            if rt.quota is None:
                continue
            used = rt.quota.max_used_percent()
            if used >= low:
                level = max(t for t in self.config.warning_thresholds if t <= used)
                out.append({"id": rt.account.id, "label": rt.account.label, "email": rt.account.email,
                            "used_percent": used, "threshold": level, "quota": rt.quota.to_dict()})
        return out

    # ---- choosing -------------------------------------------------------------------------------------

    def _plans_offering(self, model: str | None) -> frozenset[str] | None:
        """The plans whose fetched catalog lists `model`; None when every plan may serve it (no model, no
        catalog fetched, or no fetched catalog lists it: the backend decides). Computed once per choice."""
        if model is None or not self._plan_models:
            return None
        offering = frozenset(plan for plan, models in self._plan_models.items() if model in models)
        return offering or None

    def _plan_allows(self, account: Account, offering: frozenset[str] | None) -> bool:
        if offering is None:
            return True
        return account.plan is None or account.plan in offering or account.plan not in self._plan_models

    def _blocked_reason(self, rt: _Runtime, limit_id: str | None, offering: frozenset[str] | None,
                        now: float) -> str | None:
        """Why `rt` cannot serve now (None: it can), for a model offered by `offering` plans whose own
        metered limit is `limit_id` (`config.model_limit_ids`)."""
        account = rt.account
        if not account.enabled or account.status is AccountStatus.DISABLED:
            return "disabled"
        if account.status in (AccountStatus.EXPIRED, AccountStatus.BANNED):
            return str(account.status)
        if account.status is AccountStatus.REFRESHING and (account.access_expires_at or math.inf) <= now:
            return "refreshing"
        if account.status is AccountStatus.RATE_LIMITED:
            if account.cooldown_until is not None and account.cooldown_until > now:
                return "rate_limited"
            rt.verify_required = True  # the reset has passed: trust it only after a check
        if rt.cf_until > now:
            return "cloudflare_cooldown"
        if not self._plan_allows(account, offering):
            return "plan"
        if self.config.skip_exhausted and rt.quota is not None:
            if rt.quota.blocks(now, limit_id):
                return "exhausted"
            if rt.quota.exhausted:
                rt.verify_required = True  # exhausted before, but every reset has passed
        return None

    def _order(self, candidates: list[_Runtime], now: float) -> list[_Runtime]:
        strategy = self.config.strategy
        if strategy is Strategy.ROUND_ROBIN:
            ring = sorted(candidates, key=_ring_key)
            last = self._rr_last
            start = next((i for i, r in enumerate(ring) if _ring_key(r) > last), 0) if last else 0
            return ring[start:] + ring[:start]
        if strategy is Strategy.STICKY:
            return sorted(candidates, key=_sticky_rank)
        return self._least_used(candidates, now)

    def _least_used(self, candidates: list[_Runtime], now: float) -> list[_Runtime]:
        """spec/upstream.md §9: exhausted last, then the earliest window reset first — compared only when
        both resets are known: an account that never reported one is not "infinitely far" from a reset, or
        the first account to answer would take every request of a fresh pool — then fewer requests, then
        least recently used; exact ties take turns.

        Resets within RESET_TIE_SECONDS of the earliest known one count as equal: windows last hours, so
        windows opened by requests seconds apart are the same for this purpose. Accounts whose reset lies
        beyond that come after, earliest first."""
        resets = [_earliest_reset(r, now) for r in candidates]
        known = [t for t in resets if t is not None]
        horizon = min(known) + RESET_TIE_SECONDS if known else math.inf
        # Each candidate's key is computed once (with 5,000 accounts the key function dominated the choice).
        keyed = [(_least_used_rank(r, now, horizon, reset), r) for r, reset in zip(candidates, resets)]
        keyed.sort(key=itemgetter(0))  # stable, like sorting the candidates by the key
        ranked = [r for _, r in keyed]
        best = keyed[0][0]
        ties = list(itertools.takewhile(lambda item: item[0] == best, keyed))
        if len(ties) > 1:
            self._tie_turn += 1
            pick = ties[self._tie_turn % len(ties)][1]
            ranked.remove(pick)
            ranked.insert(0, pick)
        return ranked

    def prefer(self, conversation_id: str, account_id: str) -> None:
        """A conversation that another instance served (store/response_chains.py): its account first."""
        self._by_conversation.put(conversation_id, account_id, self.clock())

    # ---- the choice index -----------------------------------------------------------------------------

    def _touch(self, rt: _Runtime) -> None:
        """Something the blocked check or a rank reads changed on `rt`: every index moves it before its next
        choice. Call it after each change, before the next await (a choice may run there)."""
        if self._indexes and self._accounts.get(rt.account.id) is rt:  # not for a removed account's lease
            for index in self._indexes.values():
                index.dirty.add(rt)

    def _index_for(self, limit_id: str | None, offering: frozenset[str] | None,
                   now: float) -> ChoiceIndex[_Runtime]:
        while self._wakes and self._wakes[0][0] <= now:
            when, _, rt = heapq.heappop(self._wakes)
            if rt.wake == when:
                rt.wake = math.inf
                self._touch(rt)
        context = (offering, limit_id)
        index = self._indexes.get(context)
        if index is not None:
            index.apply(now)
            return index

        def is_candidate(rt: _Runtime, now: float) -> bool:
            wake = _wake_time(rt, now)
            if wake != rt.wake:
                rt.wake = wake
                if wake != math.inf:
                    heapq.heappush(self._wakes, (wake, rt.position, rt))
            return (self._blocked_reason(rt, limit_id, offering, now) is None
                    and rt.in_flight < self.config.max_concurrent_per_account)

        strategy = self.config.strategy
        rank = {Strategy.ROUND_ROBIN: lambda rt, now, horizon: _ring_key(rt),
                Strategy.STICKY: _sticky_rank}.get(strategy, _least_used_rank)
        index = ChoiceIndex(is_candidate=is_candidate, rank=rank, horizon_slack=RESET_TIE_SECONDS,
                            reset_of=_earliest_reset if rank is _least_used_rank else None,
                            position=lambda rt: rt.position)
        if len(self._indexes) >= self.MAX_INDEXES:
            del self._indexes[next(iter(self._indexes))]
        self._indexes[context] = index
        index.build(list(self._accounts.values()), now)
        return index

    def _pick_indexed(self, limit_id: str | None, offering: frozenset[str] | None, conversation_id: str | None,
                      previous_response_id: str | None, now: float) -> tuple[_Runtime, bool] | None:
        """The scan's choice read from the index, when it needs no await (no verification, no refresh);
        None leaves the choice to the scan (small pools, no candidate, or the first one needs a check)."""
        if len(self._accounts) < self.INDEX_MIN_ACCOUNTS:
            return None
        index = self._index_for(limit_id, offering, now)
        if not index.entries:
            return None  # the scan waits for a slot or explains why nothing is usable
        strategy, ties = self.config.strategy, 0
        if strategy is Strategy.ROUND_ROBIN:
            first = index.first_after(self._rr_last) if self._rr_last else index.entries[0][2]
        elif strategy is Strategy.STICKY:
            first = index.entries[0][2]
        else:
            ties = index.ties()
            first = index.entries[(self._tie_turn + 1) % ties][2]
        preferred_id = (self._by_response.get(previous_response_id, now)
                        or self._by_conversation.get(conversation_id, now))
        preferred = self._accounts.get(preferred_id) if preferred_id else None
        chosen = preferred if preferred is not None and index.contains(preferred) else first
        if chosen.verify_required or self.refresher.needs_refresh(chosen.account):
            return None
        if ties > 1:
            self._tie_turn += 1
        chosen.in_flight += 1
        self._touch(chosen)
        self._rr_last = _ring_key(chosen)
        return chosen, bool(preferred_id) and chosen.account.id != preferred_id

    @asynccontextmanager
    async def acquire(self, *, model: str | None = None, conversation_id: str | None = None,
                      previous_response_id: str | None = None,
                      exclude: Iterable[str] = ()) -> AsyncIterator[Lease]:
        excluded = set(exclude)
        rt, missed = await self._choose(model, conversation_id, previous_response_id, excluded)
        try:
            yield Lease(self, rt, conversation_id, missed, model)
        finally:
            rt.in_flight -= 1
            self._touch(rt)
            self._slot_freed.set()
            self._slot_freed = trio.Event()

    async def _choose(self, model: str | None, conversation_id: str | None, previous_response_id: str | None,
                      excluded: set[str]) -> tuple[_Runtime, bool]:
        verifications = 0
        deadline = trio.current_time() + self.config.slot_wait_seconds
        while True:
            now = self.clock()
            offering = self._plans_offering(model)
            limit_id = self.config.model_limit_ids.get(model or "")
            if not excluded:
                picked = self._pick_indexed(limit_id, offering, conversation_id, previous_response_id, now)
                if picked is not None:
                    return picked
            reasons: dict[str, str] = {}
            candidates, full = [], []
            for account_id, rt in self._accounts.items():
                if account_id in excluded:
                    continue
                reason = self._blocked_reason(rt, limit_id, offering, now)
                if reason is not None:
                    reasons[account_id] = reason
                elif rt.in_flight >= self.config.max_concurrent_per_account:
                    full.append(rt)
                else:
                    candidates.append(rt)
            preferred_id = (self._by_response.get(previous_response_id, now)
                            or self._by_conversation.get(conversation_id, now))
            if not candidates:
                if full and trio.current_time() < deadline:
                    with trio.move_on_at(deadline):
                        await self._slot_freed.wait()
                    continue
                raise self._no_account(reasons, bool(full), model, now)
            ordered = self._order(candidates, now)
            preferred = next((r for r in ordered if r.account.id == preferred_id), None)
            if preferred is not None:
                ordered.remove(preferred)
                ordered.insert(0, preferred)
            for rt in ordered:
                if rt.verify_required:
                    if verifications >= self.config.max_verifications:
                        excluded.add(rt.account.id)  # not this time; the next request checks it
                        continue
                    verifications += 1
                    if not await self._verify(rt):
                        continue
                rt.in_flight += 1  # hold the slot while refreshing, so others pick another account
                self._touch(rt)
                try:
                    fresh = await self._ensure_fresh(rt)
                except BaseException:
                    rt.in_flight -= 1
                    self._touch(rt)
                    raise
                if not fresh:
                    rt.in_flight -= 1
                    self._touch(rt)
                    excluded.add(rt.account.id)
                    continue
                self._rr_last = _ring_key(rt)
                missed = bool(preferred_id) and rt.account.id != preferred_id
                return rt, missed
            # every candidate failed verification or refresh this round: recompute (their states changed)

    async def _ensure_fresh(self, rt: _Runtime) -> bool:
        if not self.refresher.needs_refresh(rt.account):
            return True
        try:
            rt.account = await self.refresher.ensure_fresh(rt.account)
            self._touch(rt)
            return True
        except RefreshFailed as exc:
            if exc.permanent:
                return False
            # transient: the current token is still usable if it has not actually expired
            exp = rt.account.access_expires_at
            return exp is not None and exp > self.clock()

    async def _verify(self, rt: _Runtime) -> bool:
        """After a reset passed: ask /wham/usage before trusting the account again."""
        quota = None
        if self._verify_quota is not None:
            try:
                quota = await self._verify_quota(rt.account)
            except Exception as exc:  # noqa: BLE001 - a failed check must not lock the account out
                log.warning("account %s: quota check failed (%s); trying it anyway", rt.account.id, exc)
        if quota is not None:
            return await self._settle(rt, quota)
        rt.verify_required = False
        if rt.quota is not None and not rt.quota.blocks(self.clock()):
            rt.quota = rt.account.quota = None  # the stale snapshot's resets have passed; forget it
            rt.quota_dirty = True
            self._touch(rt)
        await self._release(rt)
        return True

    async def _settle(self, rt: _Runtime, quota: QuotaSnapshot) -> bool:
        """Learn from a /wham/usage answer: cool down while it blocks, else release a cooldown whose reset
        has passed. True when the account may serve."""
        await self._apply_quota(rt, quota)
        rt.verify_required = False
        now = self.clock()
        if rt.quota is not None and (rt.quota.blocks(now) or rt.quota.limit_reached):
            await self._cool_down(rt, rt.quota.blocked_until(now))
            return False
        await self._release(rt)
        return True

    async def _release(self, rt: _Runtime) -> None:
        if rt.account.status is AccountStatus.RATE_LIMITED and (rt.account.cooldown_until or 0.0) <= self.clock():
            rt.account.cooldown_until = None
            await self._set_status(rt, AccountStatus.ACTIVE, None)

    async def record_quota(self, account_id: str, quota: QuotaSnapshot) -> bool:
        """A /wham/usage answer obtained outside a request (admin probe, poller), learnt like a verification
        (warnings, cooldown, release after a reset) and written at once. True when the account may serve."""
        rt = self._accounts.get(account_id)
        if rt is None:
            return False
        usable = await self._settle(rt, quota)
        if rt.quota_dirty:
            rt.quota_dirty = False
            await self.store.update(account_id, quota=rt.account.quota, quota_updated_at=rt.account.quota_updated_at)
        return usable

    async def check_quota(self, account_id: str) -> QuotaSnapshot | None:
        """A background /wham/usage check (the quota poller): fresh tokens first, then the answer is learnt
        like a verification. Errors propagate (the poller logs them); an account that cannot be checked
        (unknown, no fetcher, no usable token) returns None and nothing changes."""
        rt = self._accounts.get(account_id)
        if rt is None or self._verify_quota is None or not await self._ensure_fresh(rt):
            return None
        quota = await self._verify_quota(rt.account)
        if quota is None:
            return None
        await self.record_quota(account_id, quota)
        return rt.quota

    def verification_due(self, account: Account, now: float, max_age: float) -> bool:
        """Whether the poller should check this account now: usable and its snapshot is missing or older
        than `max_age`, or rate-limited with its reset passed (re-verified, never held past it)."""
        rt = self._accounts.get(account.id)
        if rt is None or not account.enabled or account.status in (
                AccountStatus.DISABLED, AccountStatus.EXPIRED, AccountStatus.BANNED, AccountStatus.REFRESHING):
            return False
        if account.status is AccountStatus.RATE_LIMITED:
            return (account.cooldown_until or 0.0) <= now
        return account.quota_updated_at is None or now - account.quota_updated_at >= max_age

    def next_cooldown_end(self, now: float) -> float | None:
        """The earliest future end of a rate-limit cooldown (the poller wakes for it)."""
        ends = [rt.account.cooldown_until for rt in self._accounts.values()
                if rt.account.status is AccountStatus.RATE_LIMITED and rt.account.cooldown_until
                and rt.account.cooldown_until > now]
        return min(ends) if ends else None

    def _no_account(self, reasons: dict[str, str], all_full: bool, model: str | None, now: float) -> GatewayError:
        if not self._accounts:
            return GatewayError(503, "no ChatGPT account is configured; add one with `codex-trio login` (or "
                                "POST /auth/login on the admin API)", ErrorKind.OVERLOADED, code="no_account")
        if all_full:
            return GatewayError(503, "every account is busy (max concurrent requests reached); retry shortly",
                                ErrorKind.OVERLOADED, code="accounts_busy", retry_after=1.0)
        values = set(reasons.values())
        if values == {"plan"} or ("plan" in values and values <= {"plan", "disabled", "expired", "banned"}):
            return GatewayError(404, f"no account's plan offers the model {model!r}", ErrorKind.NOT_FOUND,
                                code="model_not_found", param="model")
        limited = [rt for rt in self._accounts.values() if reasons.get(rt.account.id) in
                   ("rate_limited", "exhausted", "cloudflare_cooldown")]
        if limited:
            limit_id = self.config.model_limit_ids.get(model or "")
            until = min(self._available_at(rt, now, limit_id) for rt in limited)
            return GatewayError(429, "every account has reached its usage limit; the next one resets in "
                                f"{max(0, int(until - now))} s", ErrorKind.RATE_LIMIT, code="usage_limit_reached",
                                retry_after=max(1.0, until - now))
        summary = ", ".join(f"{n} {r}" for r, n in sorted(
            {r: list(reasons.values()).count(r) for r in values}.items()))
        return GatewayError(503, f"no usable account ({summary or 'all excluded'}); see each account's status with "
                            "`codex-trio accounts list` or GET /auth/accounts",
                            ErrorKind.OVERLOADED, code="no_account_available")

    def _available_at(self, rt: _Runtime, now: float, limit_id: str | None = None) -> float:
        times = [t for t in (rt.account.cooldown_until, rt.cf_until,
                             rt.quota.blocked_until(now, limit_id) if rt.quota else None) if t and t > now]
        return max(times) if times else now + self.config.default_cooldown_seconds

    # ---- learning from answers ------------------------------------------------------------------------

    async def _apply_quota(self, rt: _Runtime, update: QuotaSnapshot) -> None:
        """Fold a report (headers, event or /wham/usage) into the account's cached snapshot."""
        before = rt.quota.max_used_percent() if rt.quota else 0.0
        quota = rt.quota = rt.quota.merged(update) if rt.quota else update
        rt.account.quota = quota.to_dict()
        rt.account.quota_updated_at = self.clock()
        rt.quota_dirty = True
        self._touch(rt)
        if self._on_warning is not None:
            for threshold in crossed_thresholds(before, quota.max_used_percent(), self.config.warning_thresholds):
                self._on_warning(rt.account, threshold, quota)
        now = self.clock()
        if self.config.skip_exhausted and (quota.blocks(now) or quota.limit_reached):
            await self._cool_down(rt, quota.blocked_until(now))

    async def _cool_down(self, rt: _Runtime, reset_at: float | None) -> None:
        now = self.clock()
        until = reset_at if reset_at is not None and reset_at > now else now + self.config.default_cooldown_seconds
        current = rt.account.cooldown_until
        if current is not None and current > until:
            until = current  # a later reset already known (other window) stays
        rt.account.cooldown_until = until
        rt.verify_required = False
        self._touch(rt)
        await self.store.update(rt.account.id, cooldown_until=until, quota=rt.account.quota,
                                quota_updated_at=rt.account.quota_updated_at)
        rt.quota_dirty = False
        await self._set_status(rt, AccountStatus.RATE_LIMITED, f"usage limit reached; resets at {int(until)}")

    async def _set_status(self, rt: _Runtime, status: AccountStatus, reason: str | None) -> None:
        now = self.clock()
        account = rt.account
        changed = account.status is not status
        account.status, account.status_reason, account.status_changed_at = status, reason, now
        self._touch(rt)
        await self.store.update(account.id, status=status, status_reason=reason, status_changed_at=now,
                                cooldown_until=account.cooldown_until)
        if status in (AccountStatus.BANNED, AccountStatus.EXPIRED, AccountStatus.DISABLED):
            self._by_response.forget_account(account.id)
            self._by_conversation.forget_account(account.id)
        if changed and self._on_status_change is not None:
            self._on_status_change(account)

    async def _failure(self, rt: _Runtime, failure: Failure) -> None:
        """Server errors, network failures and unsupported models change nothing here (the caller fails
        over with `exclude`); they are kept as the account's last failure (shown by GET /auth/accounts)."""
        now = self.clock()
        rt.last_failure = (str(failure), now)
        if failure is Failure.CLOUDFLARE_CHALLENGE:
            if now - rt.cf_last > CLOUDFLARE_QUIET_RESET:
                rt.cf_strikes = 0
            rt.cf_until = now + CLOUDFLARE_COOLDOWNS[min(rt.cf_strikes, len(CLOUDFLARE_COOLDOWNS) - 1)]
            rt.cf_strikes += 1
            rt.cf_last = now
            self._touch(rt)
        elif failure is Failure.EMPTY_404:
            rt.empty_404s = (*(t for t in rt.empty_404s if now - t < EMPTY_404_WINDOW), now)
            rt.account.cookies = []
            await self.store.update(rt.account.id, cookies=[])
            if len(rt.empty_404s) >= EMPTY_404_LIMIT:
                rt.account.enabled = False
                self._touch(rt)
                await self.store.update(rt.account.id, enabled=False)
                await self._set_status(rt, AccountStatus.DISABLED, "3 empty 404s within an hour (blocked by "
                                       "the backend's bot management); re-enable after checking its proxy")

    async def flush(self) -> None:
        """Write usage counters and quota snapshots gathered since the last flush (one write per account)."""
        for rt in list(self._accounts.values()):
            if rt.pending_requests or rt.pending_input or rt.pending_output:
                n, i, o = rt.pending_requests, rt.pending_input, rt.pending_output
                rt.pending_requests = rt.pending_input = rt.pending_output = 0
                await self.store.add_usage(rt.account.id, requests=n, input_tokens=i, output_tokens=o)
            if rt.quota_dirty:
                rt.quota_dirty = False
                await self.store.update(rt.account.id, quota=rt.account.quota,
                                        quota_updated_at=rt.account.quota_updated_at)

    async def run(self, *, flush_interval: float = 5.0, accounts: list[Account] | None = None,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Background job: load the accounts (`accounts` when already read), then flush counters periodically
        (and once more on cancel)."""
        await self.load(accounts)
        task_status.started()
        try:
            while True:
                await trio.sleep(flush_interval)
                await self.flush()
        finally:
            with trio.CancelScope(shield=True):
                await self.flush()
