"""Several instances on one PostgreSQL: client-key token budgets held across instances with short local leases, so
no request waits for the database and a budget is exceeded at most by the requests in flight when it ran out.

An instance admits a budgeted key's request only while it holds an allowance of that key's budget (a check in
memory, `ClientKeys.admit`); a finished request's tokens come off the allowance. A background loop tops the
allowance up before it runs out: in one transaction under the operator store's write lock (so grants of all
instances are serialised) it reads what the key used (the daily usage rollups, every window: day, week, month)
and what every other live lease reserves, and grants part of what is left. Each instance keeps its row in
`key_budget_leases` current: `reserved` = its allowance left + its tokens not yet written to the rollups (consuming
moves tokens from the one to the other; the usage flush moves them into the rollups), and `expires_at`, renewed
every round, so a killed instance's reservation lapses after `LEASE_SECONDS`. An allowance idle for `IDLE_SECONDS`
is given back. Until an instance first holds a lease for a key it admits by its counters (`share_budgets`) and asks
for one at once; so it does while the database is away (its allowances are dropped then).
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any, Callable

import trio

from .errors import DATABASE_ERRORS

if TYPE_CHECKING:
    from ..telemetry.client_keys import ClientKey, ClientKeys

log = logging.getLogger(__name__)

ROUND_SECONDS = 0.1
LEASE_SECONDS = 10.0
IDLE_SECONDS = 3.0
WINDOWS = ("day", "week", "month")

MIGRATION = [
    """CREATE TABLE key_budget_leases (
        key_id TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        reserved INTEGER NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (key_id, instance_id)
    )""",
]


def budgets_of(key: "ClientKey") -> dict[str, int]:
    return {w: b for w in WINDOWS if (b := getattr(key.limits, f"tokens_per_{w}")) is not None}


class BudgetLeases:
    def __init__(self, engine: Any, keys: "ClientKeys", *, clock: Callable[[], float],
                 unwritten: Callable[[str], int]) -> None:
        self._engine = engine
        self._keys = keys
        self._clock = clock
        self._unwritten = unwritten  # a key's tokens recorded here and not yet in the rollups
        self.instance_id = secrets.token_hex(8)
        self._allowance: dict[str, int] = {}  # key id -> tokens left of this instance's lease (only while held)
        self._last_used: dict[str, float] = {}
        self._wanted: set[str] = set()  # keys whose allowance ran low: a grant is due
        self._wake = trio.Event()
        self._limiter = trio.CapacityLimiter(1)

    # ---- on the request path (no I/O) -----------------------------------------------------------------------

    def allows(self, key: "ClientKey") -> bool | None:
        """Whether this instance's lease admits a request of `key`: None without a lease (the counters decide, and
        a lease is asked for), False once its allowance is used up (a top-up is asked for)."""
        self._last_used[key.id] = self._clock()
        left = self._allowance.get(key.id)
        if left is None or left <= 0:
            self._want(key.id)
        return None if left is None else left > 0

    def consumed(self, key_id: str, tokens: int) -> None:
        if key_id in self._allowance:
            self._allowance[key_id] -= tokens
            if self._allowance[key_id] <= 0:
                self._want(key_id)

    def _want(self, key_id: str) -> None:
        self._wanted.add(key_id)
        self._wake.set()

    # ---- the lease rows -------------------------------------------------------------------------------------

    def _grant(self, key_id: str, budgets: dict[str, int], now: float) -> int:
        """Take part of what is left of the key's budget; returns the tokens granted (0: nothing left)."""
        from ..telemetry.client_keys import window_starts
        from ..telemetry.store import key_token_totals

        starts = window_starts(now)
        mine_left = max(0, self._allowance.get(key_id, 0))

        def work(conn: Any) -> int:
            days = key_token_totals(conn, min(starts.values())).get(key_id, [])
            others = conn.execute("SELECT coalesce(sum(reserved), 0) FROM key_budget_leases WHERE key_id = ? "
                                  "AND instance_id <> ? AND expires_at > ?",
                                  (key_id, self.instance_id, now)).fetchone()[0]
            reserved_here = mine_left + self._unwritten(key_id)
            left = min(budget - sum(t for d, t in days if d >= starts[w]) for w, budget in budgets.items())
            available = left - int(others) - reserved_here
            grant = max(0, available // 2 if available > 1 else available)
            self._write_row(conn, key_id, reserved_here + grant, now)
            return grant

        return self._engine.transaction(work)

    def _write_row(self, conn: Any, key_id: str, reserved: int, now: float) -> None:
        conn.execute("INSERT INTO key_budget_leases (key_id, instance_id, reserved, expires_at) VALUES (?, ?, ?, ?) "
                     "ON CONFLICT (key_id, instance_id) DO UPDATE SET reserved = excluded.reserved, "
                     "expires_at = excluded.expires_at", (key_id, self.instance_id, reserved, now + LEASE_SECONDS))

    def _renew(self, rows: dict[str, int], gone: list[str], now: float) -> None:
        def work(conn: Any) -> None:
            for key_id, reserved in rows.items():
                self._write_row(conn, key_id, reserved, now)
            for key_id in gone:
                conn.execute("DELETE FROM key_budget_leases WHERE key_id = ? AND instance_id = ?",
                             (key_id, self.instance_id))

        self._engine.append(work)

    # ---- the loop -------------------------------------------------------------------------------------------

    async def round(self) -> None:
        now = self._clock()
        wanted, self._wanted = self._wanted, set()
        for key_id in wanted:
            key = self._keys.get(key_id)
            budgets = budgets_of(key) if key is not None else {}
            if not budgets:
                continue
            granted = await trio.to_thread.run_sync(self._grant, key_id, budgets, now, limiter=self._limiter)
            self._allowance[key_id] = max(0, self._allowance.get(key_id, 0)) + granted
        renew: dict[str, int] = {}
        gone: list[str] = []
        for key_id in list(self._allowance):
            key = self._keys.get(key_id)
            if key is None or not budgets_of(key) or now - self._last_used.get(key_id, now) > IDLE_SECONDS:
                del self._allowance[key_id]  # idle (or no budget now): give the allowance back
                unwritten = self._unwritten(key_id)
                if unwritten:
                    renew[key_id] = unwritten
                else:
                    gone.append(key_id)
            else:
                renew[key_id] = max(0, self._allowance[key_id]) + self._unwritten(key_id)
        if renew or gone:
            await trio.to_thread.run_sync(self._renew, renew, gone, now, limiter=self._limiter)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            with trio.move_on_after(ROUND_SECONDS * 5):
                await self._wake.wait()
            self._wake = trio.Event()
            try:
                await self.round()
            except DATABASE_ERRORS as exc:
                # the store is away: no lease can be topped up, so the counters decide (degraded, not down);
                # the reservations written lapse by themselves
                log.warning("client-key budget leases: %s", exc)
                self._allowance.clear()
            await trio.sleep(ROUND_SECONDS)
