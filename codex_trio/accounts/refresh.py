"""Token refresh: single-flight per account, persisted before use, careful with single-use refresh tokens.

Why it is built this way (spec/chatgpt-mode.md §7, upstream.md §2.3, peers.md §3 A.4 — rotation races that
invalidated whole pools):

* One `trio.Lock` per account, and then the store's refresh lock of the account, which every process on the
  store honours (an OS file lock for SQLite — the CLI beside a gateway —, an advisory lock for PostgreSQL —
  several instances). Whoever holds both re-reads the account from the store first; if the access token is no
  longer the one the caller saw expire (someone else, in this process or another, refreshed meanwhile), that
  result is reused and nothing is sent. So N waiters in M processes cause exactly one refresh. A process that
  cannot reach the store cannot take the lock, and does not refresh.
* The new tokens are committed to SQLite *before* anyone can use them, and only then written back to a
  linked auth.json. A crash after the issuer answered but before the commit would lose the new refresh token,
  so the commit is the first thing done with the answer.
* Before sending, the linked auth.json is read: if the Codex CLI rotated the token itself, its newer tokens
  are adopted instead of burning ours.
* Permanent verdicts of the issuer (`refresh_token_reused`, `_expired`, `_invalidated`, `invalid_grant`) mark
  the account `expired` with the reason. Anything else the issuer *answered* (5xx, 429, odd 4xx) issued no
  token, so the same refresh token is retried with exponential backoff and jitter.
* Few in flight at once. Between the issuer rotating a token and our commit, the successor exists only in
  this process: a kill -9 there loses the account. `spend` keeps at most `max_in_flight` refreshes (setting
  `auth.max_refreshes_in_flight`, default 4) in that window, shielded from cancellation (a client that
  disconnects must not drop the answer), and `drain` makes shutdown wait for them. The background job
  refreshes accounts that expire together (an import) spread over the margin, not all on one tick.
* Lost answers. `NotDelivered` (connect/DNS/TLS failure) is retried like a 5xx. `DeliveryUnknown` (the
  request may have reached the issuer and the answer was lost) is different: the issuer may already have
  rotated the token, so the account is marked `refreshing` ("outcome unknown", which survives a restart) and
  the store and auth.json are re-read for a successor written by another process. Only when none exists is
  the same token sent once more — and that resend is the *confirmation*, not a blind retry: if the first
  request never arrived it simply succeeds; if it did arrive, the successor token went nowhere (nobody holds
  it: we just checked), the login is already lost, and the issuer's `refresh_token_reused` answer is what
  marks the account expired, with a reason that says the answer was lost and how to log in again. We never
  declare an account dead on a guess, and we never send a token whose successor someone else may be using.
"""

from __future__ import annotations

import logging
import random
import time
import zlib
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, TypeVar

import trio

from ..store.errors import StoreUnavailable
from ..store.locks import HeldLock
from ..upstream.body import refresh_body
from ..upstream.headers import refresh_headers
from ..upstream.identity import Identity
from . import oauth
from .authjson import AuthJsonError, read_auth_json, write_back
from .http import NotDelivered, OAuthHttp
from .jwt import identity_from_tokens
from .model import Account, AccountStatus
from .store import AccountStore

log = logging.getLogger(__name__)
T = TypeVar("T")

RELOGIN = ("log in again with `codex-trio login` (or POST /auth/login on the admin API); the new login replaces "
           "this account's tokens")
LOST_ANSWER = ("an earlier refresh reached the issuer but its answer was lost (the gateway stopped or the "
               "connection broke before the new token was saved)")


@dataclass(slots=True)
class _Attempt:
    """What the refresh attempts of one account have learnt so far."""

    delivery_unknown: bool
    last_error: str = "refresh failed"


def _shutting_down() -> "RefreshFailed":
    return RefreshFailed("", "the gateway is shutting down; the refresh runs on the next start", permanent=False)


class RefreshFailed(Exception):
    def __init__(self, account_id: str, message: str, *, permanent: bool, code: str | None = None) -> None:
        super().__init__(message)
        self.account_id = account_id
        self.permanent = permanent
        self.code = code


class IssuerSilent(RefreshFailed):
    """A refresh got no answer within the spending deadline (it may have reached the issuer)."""

    def __init__(self, message: str) -> None:
        super().__init__("", message, permanent=False)


class AccountGone(RefreshFailed):
    def __init__(self, account_id: str) -> None:
        super().__init__(account_id, f"account {account_id} no longer exists", permanent=True)


class TokenRefresher:
    def __init__(
        self,
        store: AccountStore,
        http: OAuthHttp,
        *,
        identity: Identity,
        token_url: str = oauth.token_url(),
        margin_seconds: float = 300.0,
        max_attempts: int = 5,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = trio.sleep,
        rng: random.Random | None = None,
        on_refreshed: Callable[[Account], None] | None = None,
        max_in_flight: int | Callable[[], int] = 4,
        spend_timeout: float = 60.0,
        http_for: Callable[[Account], OAuthHttp] | None = None,
    ) -> None:
        self._store = store
        self._http = http
        # an account's refreshes leave through its own egress route (accounts/proxies.py), like its requests
        self._http_for = http_for or (lambda account: http)
        self._token_url = token_url
        self.identity = identity
        self.margin_seconds = margin_seconds
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        # called with the account after every token or status change (the pool keeps its copy current)
        self.listeners: list[Callable[[Account], None]] = [on_refreshed] if on_refreshed else []
        # Where the background pass finds the accounts: the pool's records when the gateway runs one (current:
        # every change here reaches it through `listeners`, and on PostgreSQL the follower brings other
        # instances' changes); else a read of the store. A read of 5,000 accounts every minute left ~14 MiB
        # more resident for good.
        self.known_accounts: Callable[[], list[Account]] | None = None
        self._locks: dict[str, trio.Lock] = {}
        self._held_locks: dict[str, HeldLock] = {}  # the store's refresh locks this process holds now
        # refreshes in flight at once, across all accounts (read at each use, so a settings change applies)
        self._max_in_flight = max_in_flight if callable(max_in_flight) else (lambda: max_in_flight)
        self._slots = trio.CapacityLimiter(max(1, self._max_in_flight()))
        self.spend_timeout = spend_timeout
        self._spending = 0
        self._idle = trio.Event()
        self._idle.set()
        self._draining = False

    def _lock(self, account_id: str) -> trio.Lock:
        lock = self._locks.get(account_id)
        if lock is None:
            lock = self._locks[account_id] = trio.Lock()
        return lock

    def refresh_request(self, refresh_token: str,
                        reason: oauth.RefreshReason) -> tuple[list[tuple[str, str]], bytes]:
        """The headers and body of `POST /oauth/token`, as the real client sends them (spec/chatgpt-mode.md
        §7): a proactive refresh happens before the client is initialised (bootstrap originator and
        user-agent), a 401 recovery after (the user-agent carries the client name)."""
        initialised = reason is oauth.RefreshReason.UNAUTHORIZED_RECOVERY
        return (refresh_headers(self.identity, initialised=initialised),
                refresh_body(self.identity, refresh_token, reason))

    def needs_refresh(self, account: Account, *, early: float = 0.0) -> bool:
        exp = account.access_expires_at
        return exp is not None and exp - self.margin_seconds - early <= self._clock()

    async def ensure_fresh(self, account: Account) -> Account:
        """Proactive: refresh if the access token expires within the margin; else return it unchanged."""
        if not self.needs_refresh(account):
            return account
        return await self.refresh(account.id, oauth.RefreshReason.PROACTIVE_EXPIRY,
                                  seen_access_token=account.tokens.access_token)

    async def reload(self, account_id: str) -> Account:
        account = await self._store.get(account_id)
        if account is None:
            raise AccountGone(account_id)
        return account

    async def refresh(self, account_id: str, reason: oauth.RefreshReason, *,
                      seen_access_token: str | None = None, force: bool = False, early: float = 0.0) -> Account:
        """Refresh once for everybody who saw `seen_access_token` fail or expire; later callers get the
        result. Raises RefreshFailed (`permanent` = the account now needs a new login)."""
        async with self._lock(account_id), self._across_processes(account_id):
            account = await self.reload(account_id)
            if seen_access_token is not None and account.tokens.access_token != seen_access_token:
                return account  # refreshed while we waited
            if not force and reason is oauth.RefreshReason.PROACTIVE_EXPIRY \
                    and not self.needs_refresh(account, early=early) \
                    and account.status is not AccountStatus.REFRESHING:
                return account
            adopted = await self._adopt_linked(account)
            if adopted is not None:
                return adopted
            return await self._refresh_locked(account, reason)

    @asynccontextmanager
    async def _across_processes(self, account_id: str) -> AsyncIterator[None]:
        """The store's refresh lock of the account: another process (a second instance, the CLI) refreshing it
        makes us wait, and then the re-read in `refresh` finds its tokens. Without the store there is no refresh:
        a token spent now could not be recorded, and another instance may be spending it."""
        try:
            async with self._store.refresh_lock(account_id) as held:
                self._held_locks[account_id] = held
                try:
                    yield
                finally:
                    self._held_locks.pop(account_id, None)
        except StoreUnavailable as exc:
            raise RefreshFailed(account_id, f"the store cannot be reached ({exc}); no refresh until it is back",
                                permanent=False) from None

    async def _adopt_linked(self, account: Account) -> Account | None:
        """If the linked auth.json holds a different refresh token for the same ChatGPT account, the CLI has
        rotated it: take its tokens (persisted) instead of sending our stale one."""
        if not account.auth_json_path:
            return None
        try:
            login = await trio.to_thread.run_sync(read_auth_json, Path(account.auth_json_path))
        except AuthJsonError:
            return None
        if not login.refresh_token or login.refresh_token == account.tokens.refresh_token:
            return None
        ident = identity_from_tokens(login.access_token, login.id_token)
        if account.account_id and ident.account_id and ident.account_id != account.account_id:
            return None  # the CLI now holds another login; leave both alone
        if ident.expires_at is not None and account.access_expires_at is not None \
                and ident.expires_at < account.access_expires_at:
            return None
        log.info("account %s: adopting tokens the Codex CLI rotated in %s", account.id, login.path)
        return await self._persist(account, login.access_token, login.refresh_token, login.id_token,
                                   write_linked=False)

    async def _confirm_lock(self, account: Account) -> Account | None:
        """Before new tokens are written: is the store's refresh lock still ours? A PostgreSQL lock ends early if
        its connection dropped. Taken back with the row unchanged: write. Another process holds it now, or wrote
        meanwhile: write nothing (its tokens stand; ours would overwrite a successor) — returns what the store
        holds, or raises RefreshFailed."""
        held = self._held_locks.get(account.id)
        try:
            if held is None or await held.confirm():
                return None
        except StoreUnavailable as exc:
            log.error("account %s: the refresh lock was lost before the new tokens were written (%s); they are "
                      "not written", account.id, exc)
            raise RefreshFailed(account.id, f"the refresh lock was lost ({exc})", permanent=False) from None
        stored = await self.reload(account.id)
        if stored.tokens.refresh_token != account.tokens.refresh_token:
            log.error("account %s: the refresh lock was lost and another process refreshed meanwhile; its tokens "
                      "are kept, ours are not written", account.id)
            return stored
        return None

    async def _persist(self, account: Account, access: str, refresh: str | None, id_token: str | None, *,
                       write_linked: bool) -> Account:
        stored = await self._confirm_lock(account)
        if stored is not None:
            return stored
        now = self._clock()
        ident = identity_from_tokens(access, id_token)
        previous_refresh = account.tokens.refresh_token
        account.tokens.access_token = access
        account.tokens.refresh_token = refresh or previous_refresh
        account.tokens.id_token = id_token or account.tokens.id_token
        account.access_expires_at = ident.expires_at
        account.last_refresh = now
        account.account_id = ident.account_id or account.account_id
        account.plan = ident.plan or account.plan
        account.user_id = ident.user_id or account.user_id
        account.email = ident.email or account.email
        account.status, account.status_reason, account.status_changed_at = self._settled(account), None, now
        await self._store.update(
            account.id, access_token=account.tokens.access_token, refresh_token=account.tokens.refresh_token,
            id_token=account.tokens.id_token, access_expires_at=account.access_expires_at, last_refresh=now,
            account_id=account.account_id, plan=account.plan, user_id=account.user_id, email=account.email,
            status=account.status, status_reason=None, status_changed_at=now)
        if write_linked and account.auth_json_path:
            try:
                wrote = await trio.to_thread.run_sync(lambda: write_back(
                    Path(account.auth_json_path), previous_refresh_token=previous_refresh, access_token=access,
                    refresh_token=account.tokens.refresh_token, id_token=account.tokens.id_token,
                    account_id=account.account_id, refreshed_at=now))
                if not wrote:
                    log.warning("account %s: %s holds another login now; not overwritten",
                                account.id, account.auth_json_path)
            except OSError as exc:
                log.warning("account %s: could not write back %s: %s", account.id, account.auth_json_path, exc)
        for listener in self.listeners:
            listener(account)
        return account

    def _settled(self, account: Account) -> AccountStatus:
        """The status an account returns to when a refresh ends without a verdict: a running rate-limit
        cooldown is kept, everything else is active."""
        if account.cooldown_until is not None and account.cooldown_until > self._clock():
            return AccountStatus.RATE_LIMITED
        return AccountStatus.ACTIVE

    async def _set_status(self, account: Account, status: AccountStatus, reason: str | None) -> None:
        now = self._clock()
        account.status, account.status_reason, account.status_changed_at = status, reason, now
        await self._store.update(account.id, status=status, status_reason=reason, status_changed_at=now)
        for listener in self.listeners:
            listener(account)

    def _backoff(self, attempt: int) -> float:
        delay = min(self._max_delay, self._base_delay * (2 ** attempt))
        return delay * self._rng.uniform(0.7, 1.3)

    async def _refresh_locked(self, account: Account, reason: oauth.RefreshReason) -> Account:
        if not account.tokens.refresh_token:
            await self._set_status(account, AccountStatus.EXPIRED, f"no refresh token; {RELOGIN}")
            raise RefreshFailed(account.id, "account has no refresh token", permanent=True)
        attempt = _Attempt(delivery_unknown=account.status is AccountStatus.REFRESHING)
        for number in range(self._max_attempts):
            if number:
                await self._sleep(self._backoff(number - 1))
            if attempt.delivery_unknown:
                # another process (or the CLI) may have received the successor token: look before resending
                fresh = await self.reload(account.id)
                if fresh.tokens.refresh_token != account.tokens.refresh_token:
                    return fresh
                adopted = await self._adopt_linked(fresh)
                if adopted is not None:
                    return adopted
            try:
                done = await self.spend(lambda: self._send_once(account, reason, attempt))
            except IssuerSilent as exc:  # the request may have arrived: confirm before anything else
                attempt.delivery_unknown, attempt.last_error = True, str(exc)
                await self._set_status(account, AccountStatus.REFRESHING, attempt.last_error)
                continue
            if done is not None:
                return done
        # out of attempts: keep the tokens; the status says whether the last outcome is still unknown
        await self._set_status(account, AccountStatus.REFRESHING if attempt.delivery_unknown else
                               self._settled(account), attempt.last_error)
        raise RefreshFailed(account.id, attempt.last_error, permanent=False)

    async def _send_once(self, account: Account, reason: oauth.RefreshReason, attempt: "_Attempt") -> Account | None:
        """One `POST /oauth/token` and what its answer means: the account with its new tokens committed, None
        to try again (`attempt` says why), or RefreshFailed for a verdict."""
        headers, body = self.refresh_request(account.tokens.refresh_token, reason)  # type: ignore[arg-type]
        await self._set_status(account, AccountStatus.REFRESHING, "refresh in flight")
        try:
            response = await self._http_for(account).post(self._token_url, headers, body)
        except NotDelivered as exc:
            attempt.last_error = f"issuer unreachable: {exc}"
            await self._set_status(account, AccountStatus.REFRESHING if attempt.delivery_unknown else
                                   self._settled(account), attempt.last_error)
            return None
        except Exception as exc:  # noqa: BLE001 - DeliveryUnknown or anything else: the outcome is unknown
            attempt.delivery_unknown = True
            attempt.last_error = f"refresh answer lost ({type(exc).__name__}: {exc}); confirming with the issuer"
            await self._set_status(account, AccountStatus.REFRESHING, attempt.last_error)
            return None
        try:
            grant = oauth.parse_token_grant(response.status, response.body)
        except oauth.OAuthError as err:
            if err.permanent:
                if attempt.delivery_unknown and err.code == "refresh_token_reused":
                    why = f"refresh_token_reused: {LOST_ANSWER}; {RELOGIN}"
                else:
                    why = f"{err.code}: {RELOGIN}"
                verdict = AccountStatus.BANNED if err.code in oauth.BANNED_REFRESH_CODES else AccountStatus.EXPIRED
                await self._set_status(account, verdict, why)
                raise RefreshFailed(account.id, f"refresh rejected: {why}", permanent=True, code=err.code) from None
            attempt.last_error = f"issuer answered {err.status} {err.code}"
            await self._set_status(account, self._settled(account), attempt.last_error)
            attempt.delivery_unknown = False  # the issuer answered: it has not rotated this token
            return None
        return await self._persist(account, grant.access_token, grant.refresh_token, grant.id_token,
                                   write_linked=True)

    # ---- the spending window ----------------------------------------------------------------------------

    async def spend(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run `work` — which sends a single-use refresh token and commits the answer — in one of the few
        in-flight slots (`max_in_flight`), shielded from cancellation until it commits.

        Why: between the issuer rotating a token and our commit, the new token exists only in this process;
        a crash (or a cancelled task) there loses the account for good. The window cannot be closed, but
        the number of accounts inside it can be bounded: with `max_in_flight` slots a kill -9 loses at most
        that many, and shutdown waits for them (`drain`). The shield has a deadline so a hung issuer cannot
        hold shutdown forever; what then stays unknown is confirmed on the next attempt or run."""
        if self._draining:
            raise _shutting_down()
        self._slots.total_tokens = max(1, self._max_in_flight())
        async with self._slots:
            if self._draining:
                raise _shutting_down()
            self._spending += 1
            self._idle = trio.Event() if self._idle.is_set() else self._idle
            try:
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = trio.current_time() + self.spend_timeout
                    result = await work()
                if scope.cancelled_caught:
                    raise IssuerSilent(f"no answer from the issuer within {self.spend_timeout:.0f} s; "
                                       "confirming with the issuer")
                return result
            finally:
                self._spending -= 1
                if not self._spending:
                    self._idle.set()

    @property
    def in_flight(self) -> int:
        return self._spending

    async def drain(self, grace_seconds: float) -> int:
        """Shutdown: start no new refresh, wait up to `grace_seconds` for those in flight to commit. Returns
        how many were still in flight (0 unless the issuer hung)."""
        self._draining = True
        with trio.move_on_after(grace_seconds):
            await self._idle.wait()
        if self._spending:
            log.warning("%d token refresh(es) still in flight at shutdown; their accounts are confirmed on the "
                        "next start", self._spending)
        return self._spending

    def spread(self, account: Account) -> float:
        """How much earlier than the margin the background job refreshes this account: a stable share of
        the margin per account. Accounts added together (an import) expire together; without this their
        refreshes would all fall on the same tick."""
        return self.margin_seconds * (zlib.crc32(account.id.encode()) % 1000) / 1000

    async def _refresh_in_background(self, account: Account) -> None:
        try:
            await self.refresh(account.id, oauth.RefreshReason.PROACTIVE_EXPIRY,
                               seen_access_token=account.tokens.access_token, early=self.spread(account))
        except RefreshFailed as exc:
            log.warning("account %s: background refresh failed: %s", account.id, exc)

    async def _accounts_to_check(self) -> list[Account]:
        if self.known_accounts is None:
            return await self._store.list()
        # the store's last call failed: no refresh until it is back, as when its read fails
        return self.known_accounts() if self._store.health.available else []

    async def run(self, *, interval: float = 60.0,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Background job. First confirms refreshes whose outcome a previous run left unknown (status
        `refreshing`), then keeps idle accounts' tokens fresh (so a linked Codex CLI keeps working too),
        each a little before the margin (`spread`), at most `max_in_flight` at once."""
        task_status.started()
        first = True
        while True:
            try:
                accounts = await self._accounts_to_check()
            except StoreUnavailable:
                accounts = []  # degraded: no refresh until the store is back
            async with trio.open_nursery() as nursery:
                for account in accounts:
                    if not account.enabled or account.status in (AccountStatus.EXPIRED, AccountStatus.BANNED,
                                                                 AccountStatus.DISABLED):
                        continue
                    unknown = first and account.status is AccountStatus.REFRESHING
                    if unknown or self.needs_refresh(account, early=self.spread(account)):
                        nursery.start_soon(self._refresh_in_background, account)
            first = False
            await self._sleep(interval)
