"""Quota bookkeeping in the background (spec/upstream.md §9): the cached quota is kept current passively by
every response; this job fills the gaps with `GET /wham/usage`.

* every `interval` it checks each usable account whose snapshot is missing or older than the interval,
* it wakes when a rate-limit cooldown ends and re-verifies that account at once (never held past a reset),
* warning thresholds crossed on the way are logged and kept for `/auth/quota/warnings`.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Awaitable, Callable

import trio

from ..upstream.quota import QuotaSnapshot
from .model import Account
from .pool import AccountPool

log = logging.getLogger(__name__)

# wake slightly after a cooldown's end, so the pool's clock has passed it too
RESET_SLACK_SECONDS = 0.5


class QuotaWarnings:
    """The pool's `on_warning` callback: logs each threshold crossing and keeps the latest ones."""

    def __init__(self, clock: Callable[[], float], *, keep: int = 200) -> None:
        self._clock = clock
        self._events: deque[dict[str, Any]] = deque(maxlen=keep)

    def __call__(self, account: Account, threshold: float, quota: QuotaSnapshot) -> None:
        used = quota.max_used_percent()
        log.warning("account %s (%s): quota at %.1f %% (warning threshold %g %%)", account.label or account.email
                    or account.id, account.id, used, threshold)
        self._events.append({"id": account.id, "label": account.label, "email": account.email,
                             "threshold": threshold, "used_percent": used, "at": self._clock(),
                             "resets_at": quota.earliest_reset(self._clock())})

    def recent(self) -> list[dict[str, Any]]:
        """Crossings, oldest first."""
        return list(self._events)


class QuotaPoller:
    def __init__(self, pool: AccountPool, *, interval: Callable[[], float], concurrency: int = 4,
                 sleep: Callable[[float], Awaitable[None]] = trio.sleep) -> None:
        self._pool = pool
        self._interval = interval  # seconds; read each round so a settings reload applies
        self._concurrency = concurrency  # usage checks at once
        self._sleep = sleep
        self._sleeping: trio.CancelScope | None = None

    def reschedule(self) -> None:
        """The interval changed: end the current wait (the next round uses the new interval)."""
        if self._sleeping is not None:
            self._sleeping.cancel()

    async def _check(self, account: Account, checked: list[str]) -> None:
        try:
            if await self._pool.check_quota(account.id) is not None:
                checked.append(account.id)
        except Exception as exc:  # noqa: BLE001 - one account's failure must not stop the round
            log.warning("account %s: usage check failed: %s", account.id, exc)

    async def _work_through(self, due: list[Account], checked: list[str]) -> None:
        while due:
            await self._check(due.pop(), checked)

    async def poll_once(self) -> list[str]:
        """Check every account that is due; returns the ids whose usage was updated. As many workers as the
        concurrency allows take accounts from the list (a task per account made 5,000 tasks at start-up)."""
        now, max_age = self._pool.clock(), self._interval()
        due = [a for a in self._pool.accounts() if self._pool.verification_due(a, now, max_age)]
        due.reverse()  # popped from the end: checked in pool order
        checked: list[str] = []
        async with trio.open_nursery() as nursery:
            for _ in range(min(len(due), self._concurrency)):
                nursery.start_soon(self._work_through, due, checked)
        return checked

    def _wait(self) -> float:
        now = self._pool.clock()
        wait = self._interval()
        reset = self._pool.next_cooldown_end(now)
        if reset is not None:
            wait = min(wait, reset - now + RESET_SLACK_SECONDS)
        return max(wait, RESET_SLACK_SECONDS)

    async def run(self, *, first_round_after: trio.Event | None = None,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Background job: a round now (or once `first_round_after` is set), then every interval. The gateway
        starts its first round when it serves: with 5,000 stale snapshots that round's checks took most of the
        start-up's Python time, and a request before it needs none of them (the pool verifies what it picks)."""
        task_status.started()
        if first_round_after is not None:
            await first_round_after.wait()
        while True:
            await self.poll_once()
            with trio.CancelScope() as self._sleeping:
                await self._sleep(self._wait())
            self._sleeping = None
