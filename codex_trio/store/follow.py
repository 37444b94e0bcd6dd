"""Several instances on one PostgreSQL: what another instance changed in the account rows (a cooldown, a ban, a
refresh, a quota snapshot, a new or removed account) reaches this instance's pool within a second; so do the egress
proxies another instance added, changed or removed (`ProxyPool.adopt`).

Every write to the PostgreSQL store sends a NOTIFY; the follower LISTENs, so it looks as soon as another instance
wrote, and at the latest every `interval` (a missed notification, a lost listening connection). Each look reads
the rows whose `updated_at` moved since the last look (with a few seconds of overlap for clocks that differ
between machines) and hands them to the pool, which keeps its own in-flight counts and unflushed counters
(`AccountPool.upsert`). A row is applied once per `updated_at`. Removed accounts are noticed by a cheaper id
listing every few rounds. A look that fails marks the store unavailable (`store/health.py`, kept by the store
itself) and the instance keeps serving from what it holds; the next look that succeeds marks it back and writes
the state changes the store kept meanwhile (`AccountStore.replay_deferred`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable

import trio

from .errors import StoreUnavailable

if TYPE_CHECKING:
    from ..accounts.pool import AccountPool
    from ..accounts.proxy_service import ProxyService
    from ..accounts.store import AccountStore

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
CLOCK_SKEW_SECONDS = 5.0  # rows stamped by another machine's clock up to this far behind ours are still seen
MEMBERSHIP_EVERY = 10  # rounds between two id listings (removed accounts)


class AccountFollower:
    def __init__(self, store: "AccountStore", pool: "AccountPool", *, clock: Callable[[], float] = time.time,
                 interval: float = POLL_SECONDS, listener: Any = None, proxies: "ProxyService | None" = None) -> None:
        self._store = store  # keeps its own `health` current with every call
        self._pool = pool
        self._proxies = proxies  # the egress proxy pool: rows another instance changed are adopted too
        self._listener = listener  # PostgreSQL LISTEN: wakes the follower as soon as another instance wrote
        self._clock = clock
        self._interval = interval
        self._applied: dict[str, float] = {}  # account id -> updated_at of the row last applied
        self._rounds = 0

    async def poll_once(self, since: float) -> int:
        """Apply the rows changed since `since`; returns how many were applied."""
        applied = 0
        for account in await self._store.changed_since(since - CLOCK_SKEW_SECONDS):
            if self._applied.get(account.id, -1.0) >= account.updated_at:
                continue
            self._applied[account.id] = account.updated_at
            self._pool.upsert(account)
            applied += 1
        self._rounds += 1
        if self._rounds % MEMBERSHIP_EVERY == 0:
            present = set(await self._store.ids())
            gone = [a.id for a in self._pool.accounts() if a.id not in present]
            if gone:
                self._pool.remove(gone)
                for account_id in gone:
                    self._applied.pop(account_id, None)
        if self._proxies is not None:
            proxies = self._proxies.proxies
            if proxies.adopt(*await proxies.stored()):
                await self._proxies.rebalance()  # auto accounts on a removed or disabled proxy get another
        return applied

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        since = self._clock()
        try:
            while True:
                await self._wait()
                since = await self._round(since)
        finally:
            if self._listener is not None:
                self._listener.close()

    async def _wait(self) -> None:
        if self._listener is None:
            await trio.sleep(self._interval)
            return
        # a blocking wait in a thread, abandoned on cancellation (it ends by itself within the interval)
        await trio.to_thread.run_sync(self._listener.wait, self._interval, abandon_on_cancel=True)

    async def _round(self, since: float) -> float:
        """One look at the store; returns where the next look starts."""
        started = self._clock()
        try:
            await self.poll_once(since)
        except StoreUnavailable:
            return since  # degraded: serve from what the pool holds; the store's health says so
        if self._store.deferred:
            try:
                replayed = await self._store.replay_deferred()
            except StoreUnavailable:
                return started
            log.info("store back: %d state write(s) kept while it was away written", replayed)
        return started


async def run_shared_state(gateway: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Background job (after the accounts job): on a PostgreSQL store, follow the account rows other instances
    change. On SQLite (one process) there is nothing to follow."""
    services = gateway.services
    store = services.store
    if store is None or store.engine.dialect != "postgresql":
        task_status.started()
        return
    from .postgres import ChangeListener

    listener = ChangeListener(store.engine.url, store.engine.channel)
    follower = AccountFollower(store, services.pool, clock=services.connector.clock, listener=listener,
                               proxies=services.proxy_admin)
    await follower.run(task_status=task_status)
