"""Several instances on one PostgreSQL: a client key's requests-per-minute and concurrency limits held across
instances with short local leases of request slots, so no request waits for the database.

Requests per minute (`RPM`): an instance admits a request of a key with `requests_per_minute` while it holds an
allowance of that key's slots (a check in memory, `ClientKeys.admit`, beside the instance's own sliding-minute
counter). A background round tops
the allowance up before it runs out: in one transaction under the operator store's write lock (grants of all
instances serialised) it reads what every other instance reserves and grants part of what is left of the limit.
Each instance keeps its row in `key_rate_leases` current: `reserved` = its allowance left + the requests of the key
it admitted in the last minute. Admitting moves a slot from the one to the other, and the minute passing only
lowers it, so a row written is never below what the instance holds: the rows of all instances never sum past the
limit, and neither do the requests of any minute. A row lives `WINDOW_SECONDS` unless renewed: a killed instance's
requests have aged out of every minute by the time its reservation lapses. An allowance idle for `IDLE_SECONDS` is
given back (the row then reserves the recent requests only, and goes when they have aged out).

Concurrency (`CONCURRENCY`), the same with `reserved` = allowance left + requests running here: a finished request
gives its slot back to this instance's allowance (not to the others) until the allowance goes idle, so the rows
never sum past `max_concurrency`. A row lives `LEASE_SECONDS` unless renewed (a killed instance's requests died
with it). The price: a key busy on one instance holds its slots there until they idle for `IDLE_SECONDS`, and
another instance asks for them meanwhile; with the key hashed to one instance (docs/scale-out.md) nothing changes.

Before it holds a lease of a key, an instance admits at most one lease's worth (`lease_size`) by its own counter
while it asks for one — the one overshoot: a minute sees at most the limit plus one lease per instance, and at
once run at most the concurrency limit plus one lease per instance. While the
database is away no lease can be topped up, and each instance's own counter decides (degraded, not down).
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
WINDOW_SECONDS = 60.0  # the RPM limit's minute; also how long an RPM row outlives its instance
LEASE_SECONDS = 10.0  # how long a concurrency row outlives its instance
IDLE_SECONDS = 3.0
RPM, CONCURRENCY = "rpm", "concurrency"

MIGRATION = [
    """CREATE TABLE key_rate_leases (
        key_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        reserved INTEGER NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (key_id, kind, instance_id)
    )""",
]


def lease_size(limit: int) -> int:
    """The slots asked for at least at once, and admitted before a lease is held: a tenth of the limit."""
    return max(1, limit // 10)


def limit_of(key: "ClientKey | None", kind: str) -> int | None:
    if key is None:
        return None
    return key.limits.requests_per_minute if kind == RPM else key.limits.max_concurrency


class SlotLeases:
    """The leases of one kind of limit (`RPM` or `CONCURRENCY`) of every key, for this instance."""

    def __init__(self, engine: Any, keys: "ClientKeys", kind: str, *, clock: Callable[[], float]) -> None:
        self._engine = engine
        self._keys = keys
        self.kind = kind
        self._clock = clock
        self._row_seconds = WINDOW_SECONDS if kind == RPM else LEASE_SECONDS
        self.instance_id = secrets.token_hex(8)
        self.available = True  # False while the database is away: the instance's own counters decide
        self._allowance: dict[str, int] = {}  # key id -> slots left of this instance's lease (only while held)
        self._unleased: dict[str, int] = {}  # key id -> requests admitted without a lease, until its row goes
        self._rows: set[str] = set()  # keys this instance has a row for
        self._last_used: dict[str, float] = {}
        self._wanted: set[str] = set()
        self._wake = trio.Event()
        self._limiter = trio.CapacityLimiter(1)

    # ---- on the request path (no I/O) -----------------------------------------------------------------------

    def admits(self, key: "ClientKey", limit: int) -> bool:
        """Whether a request of `key` may start here; True takes a slot (called last, when nothing else refuses)."""
        self._last_used[key.id] = self._clock()
        if not self.available:
            return True
        left = self._allowance.get(key.id)
        if left is None:
            self._want(key.id)
            taken = self._unleased.get(key.id, 0)
            if taken >= lease_size(limit):
                return False
            self._unleased[key.id] = taken + 1
            return True
        if left <= lease_size(limit) // 2:
            self._want(key.id)  # top up before it runs out
        if left <= 0:
            return False
        self._allowance[key.id] = left - 1
        return True

    def released(self, key_id: str) -> None:
        """A request of the key finished here (CONCURRENCY): its slot goes back to this instance's allowance."""
        if key_id in self._allowance:
            self._allowance[key_id] += 1

    def _held(self, key_id: str) -> int:
        """What this instance holds of a key besides its allowance: requests of the last minute, or running now."""
        if self.kind == RPM:
            return self._keys.requests_in_last_minute(key_id)
        return self._keys.running(key_id)

    def _want(self, key_id: str) -> None:
        self._wanted.add(key_id)
        self._wake.set()

    # ---- the lease rows -------------------------------------------------------------------------------------

    def _write_row(self, conn: Any, key_id: str, reserved: int, now: float) -> None:
        conn.execute("INSERT INTO key_rate_leases (key_id, kind, instance_id, reserved, expires_at) "
                     "VALUES (?, ?, ?, ?, ?) ON CONFLICT (key_id, kind, instance_id) DO UPDATE SET "
                     "reserved = excluded.reserved, expires_at = excluded.expires_at",
                     (key_id, self.kind, self.instance_id, reserved, now + self._row_seconds))

    def _grant(self, key_id: str, limit: int, held: int, now: float) -> int:
        """Take part of what is left of the key's limit; `held` = this instance's allowance left + `_held`."""
        def work(conn: Any) -> int:
            others = conn.execute("SELECT coalesce(sum(reserved), 0) FROM key_rate_leases WHERE key_id = ? "
                                  "AND kind = ? AND instance_id <> ? AND expires_at > ?",
                                  (key_id, self.kind, self.instance_id, now)).fetchone()[0]
            available = limit - int(others) - held
            grant = max(0, min(available, max(lease_size(limit), available // 2)))
            self._write_row(conn, key_id, held + grant, now)
            return grant

        return self._engine.transaction(work)

    def _renew(self, rows: dict[str, int], gone: list[str], now: float) -> None:
        def work(conn: Any) -> None:
            for key_id, reserved in rows.items():
                self._write_row(conn, key_id, reserved, now)
            for key_id in gone:
                conn.execute("DELETE FROM key_rate_leases WHERE key_id = ? AND kind = ? AND instance_id = ?",
                             (key_id, self.kind, self.instance_id))

        self._engine.append(work)

    # ---- the loop -------------------------------------------------------------------------------------------

    async def round(self) -> None:
        now = self._clock()
        wanted, self._wanted = self._wanted, set()
        for key_id in wanted:
            limit = limit_of(self._keys.get(key_id), self.kind)
            if limit is None:
                continue
            held = max(0, self._allowance.get(key_id, 0)) + self._held(key_id)
            granted = await trio.to_thread.run_sync(self._grant, key_id, limit, held, now, limiter=self._limiter)
            self._allowance[key_id] = max(0, self._allowance.get(key_id, 0)) + granted
            self._rows.add(key_id)
        renew: dict[str, int] = {}
        gone: list[str] = []
        for key_id in list(self._rows):
            idle = now - self._last_used.get(key_id, now) > IDLE_SECONDS
            if key_id in self._allowance and (limit_of(self._keys.get(key_id), self.kind) is None or idle):
                del self._allowance[key_id]  # give the slots back; what it admitted stays reserved
            reserved = max(0, self._allowance.get(key_id, 0)) + self._held(key_id)
            if reserved:
                renew[key_id] = reserved
            else:
                gone.append(key_id)
                self._rows.discard(key_id)
                self._unleased.pop(key_id, None)
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
                self.available = True
            except DATABASE_ERRORS as exc:
                log.warning("client-key %s leases: %s", self.kind, exc)
                self.available = False
                self._allowance.clear()
            await trio.sleep(ROUND_SECONDS)
