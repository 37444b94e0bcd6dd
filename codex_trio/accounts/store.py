"""The account store: one SQLite file (WAL, synchronous=FULL, mode 0600), one writer — or, for several instances,
the same tables in PostgreSQL (`store.url`; `store/` has both engines, this module is the same for both).

Rules that keep accounts from being lost (peers.md §3 A.6: a failed read once made a gateway overwrite its
pool with an empty one):
* opening never creates or migrates over something it could not read: an unreadable or newer-version file
  raises `StoreError` and is left untouched;
* a row that does not decode is skipped and reported, never rewritten or deleted;
* every write is one transaction (BEGIN IMMEDIATE … COMMIT), so a kill -9 leaves the last committed state;
* all writes go through one connection behind a `CapacityLimiter(1)` (one writer thread at a time);
  reads use their own connection (WAL lets them run beside the writer);
* one row per ChatGPT identity (workspace + user): a unique index says so, and `upsert_identity` looks up
  and inserts in one write transaction, so neither concurrent requests nor two processes importing the
  same login at once can create a second row sharing its single-use refresh token.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any, AsyncContextManager, Awaitable, Callable, TypeVar

import orjson
import trio

from ..store.connection import Connection, Row
from ..store.errors import SchemaError, StoreUnavailable
from ..store.health import StoreHealth
from ..store.location import StoreLocation, open_engine
from ..store.locks import AdvisoryLocks, FileLocks, HeldLock, Locks, holding
from ..store.schema import MigrationStep, Schema
from .model import Account, AccountStatus, Tokens
from .proxies import PROXY_MIGRATION
from ..store.response_chains import MIGRATION as RESPONSE_CHAINS_MIGRATION
from ..store.shared_settings import MIGRATION as SHARED_SETTINGS_MIGRATION

log = logging.getLogger(__name__)
T = TypeVar("T")

_DEAD_STATUSES = ("expired", "banned")


def _merge_duplicate_identities(conn: Connection) -> None:
    """Before the identity index becomes unique: fold every group of rows of one ChatGPT login into one.

    The row kept is the one whose tokens are most likely alive (not expired/banned, newest access token,
    last refreshed); it takes the others' usage counters, and their label / proxy / linked auth.json when it
    has none. The rows folded away are copied whole (tokens included) into `merged_accounts`, so nothing is
    lost and an operator can still look at them.
    """
    groups = conn.execute(
        "SELECT account_id, coalesce(user_id, '') FROM accounts WHERE account_id IS NOT NULL "
        "GROUP BY account_id, coalesce(user_id, '') HAVING count(*) > 1").fetchall()
    now = time.time()
    for account_id, user_id in groups:
        rows = conn.execute("SELECT * FROM accounts WHERE account_id = ? AND coalesce(user_id, '') = ?",
                            (account_id, user_id)).fetchall()
        rows.sort(key=lambda r: (r["status"] not in _DEAD_STATUSES, r["access_expires_at"] or 0.0,
                                 r["last_refresh"] or 0.0, r["updated_at"] or 0.0), reverse=True)
        keep, folded = rows[0], rows[1:]
        merged = {
            "request_count": sum(r["request_count"] for r in rows),
            "input_tokens": sum(r["input_tokens"] for r in rows),
            "output_tokens": sum(r["output_tokens"] for r in rows),
            "last_used_at": max((r["last_used_at"] for r in rows if r["last_used_at"]), default=None),
            "created_at": min(r["created_at"] for r in rows),
        }
        for column in ("label", "proxy", "auth_json_path"):
            merged[column] = keep[column] or next((r[column] for r in folded if r[column]), None)
        assignments = ", ".join(f"{name} = ?" for name in merged)
        conn.execute(f"UPDATE accounts SET {assignments} WHERE id = ?", (*merged.values(), keep["id"]))
        for row in folded:
            conn.execute("INSERT INTO merged_accounts (id, merged_into, merged_at, row) VALUES (?, ?, ?, ?)",
                         (row["id"], keep["id"], now, orjson.dumps({k: row[k] for k in row.keys()}).decode()))
            conn.execute("DELETE FROM accounts WHERE id = ?", (row["id"],))
        log.warning("account store: %d duplicate row(s) of ChatGPT account %s merged into %s (kept in "
                    "merged_accounts)", len(folded), account_id, keep["id"])


# MIGRATIONS[n] takes the schema from version n to n+1. Append only; never edit a released step.
MIGRATIONS: list[list[MigrationStep]] = [
    [
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",  # SQLite's version table
        """CREATE TABLE accounts (
            id TEXT PRIMARY KEY,
            access_token TEXT NOT NULL,
            refresh_token TEXT,
            id_token TEXT,
            account_id TEXT,
            email TEXT,
            plan TEXT,
            user_id TEXT,
            label TEXT,
            enabled INTEGER NOT NULL DEFAULT 1,
            status TEXT NOT NULL DEFAULT 'active',
            status_reason TEXT,
            status_changed_at REAL,
            cooldown_until REAL,
            access_expires_at REAL,
            last_refresh REAL,
            installation_id TEXT NOT NULL,
            proxy TEXT,
            cookies TEXT NOT NULL DEFAULT '[]',
            quota TEXT,
            quota_updated_at REAL,
            request_count INTEGER NOT NULL DEFAULT 0,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            last_used_at REAL,
            auth_json_path TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        "CREATE INDEX accounts_identity ON accounts (account_id, user_id)",
    ],
    [
        """CREATE TABLE merged_accounts (
            id TEXT NOT NULL,
            merged_into TEXT NOT NULL,
            merged_at REAL NOT NULL,
            row TEXT NOT NULL
        )""",
        _merge_duplicate_identities,
        "DROP INDEX accounts_identity",
        # user_id may be NULL (old tokens without the claim); NULLs never collide in a unique index
        "CREATE UNIQUE INDEX accounts_identity ON accounts (account_id, coalesce(user_id, '')) "
        "WHERE account_id IS NOT NULL",
    ],
    PROXY_MIGRATION,  # the egress proxy pool (accounts/proxies.py)
    RESPONSE_CHAINS_MIGRATION,  # the shared response-id map of several instances (store/response_chains.py)
    SHARED_SETTINGS_MIGRATION,  # settings changed through the admin API, shared (store/shared_settings.py)
]
SCHEMA = Schema("accounts", MIGRATIONS)
SCHEMA_VERSION = SCHEMA.version

_JSON_COLUMNS = frozenset({"cookies", "quota"})
_TOKEN_FIELDS = ("access_token", "refresh_token", "id_token")
_TOKEN_FIELDS_SET = frozenset(_TOKEN_FIELDS)
MAX_DEFERRED = 10_000  # state writes kept while the store is away (then the oldest are dropped, counted)
COLUMNS = tuple(f.name for f in dataclasses.fields(Account) if f.name != "tokens") + _TOKEN_FIELDS


class StoreError(SchemaError):
    """The store cannot be opened or read safely; nothing was written."""


def _row_to_account(row: Row) -> Account:
    data = {k: row[k] for k in row.keys()}
    tokens = Tokens(data.pop("access_token"), data.pop("refresh_token"), data.pop("id_token"))
    data["enabled"] = bool(data["enabled"])
    data["status"] = AccountStatus(data["status"])
    data["cookies"] = orjson.loads(data["cookies"] or "[]")
    data["quota"] = orjson.loads(data["quota"]) if data["quota"] else None
    return Account(tokens=tokens, **data)


def _account_to_row(account: Account) -> dict[str, Any]:
    row = {f.name: getattr(account, f.name) for f in dataclasses.fields(Account) if f.name != "tokens"}
    row.update(dataclasses.asdict(account.tokens))
    row["enabled"] = int(account.enabled)
    row["status"] = str(account.status)
    row["cookies"] = orjson.dumps(account.cookies).decode()
    row["quota"] = orjson.dumps(account.quota).decode() if account.quota is not None else None
    return row


def _encode(column: str, value: Any) -> Any:
    if column in _JSON_COLUMNS:
        return None if value is None else orjson.dumps(value).decode()
    if column == "enabled":
        return int(bool(value))
    if column == "status":
        return str(value)
    return value


_IDENTITY_QUERY = "SELECT * FROM accounts WHERE account_id = ? AND coalesce(user_id, '') = ?"


def _insert(conn: Connection, account: Account) -> None:
    row = _account_to_row(account)
    conn.execute(f"INSERT INTO accounts ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
                 tuple(row.values()))


class _SyncStore:
    """The blocking half over one engine (`store/`); only ever called from worker threads, one writer at a time."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.skipped_rows: list[str] = []

    def transaction(self, work: Callable[[Any], T]) -> T:
        return self.engine.transaction(work)

    def read_all(self) -> list[Account]:
        rows = self.engine.read(lambda conn: conn.execute("SELECT * FROM accounts ORDER BY created_at, id").fetchall())
        accounts, skipped = [], []
        for row in rows:
            try:
                accounts.append(_row_to_account(row))
            except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
                skipped.append(row["id"])
                log.error("account %s could not be decoded (%s); left as is in the store", row["id"], exc)
        self.skipped_rows = skipped
        return accounts

    def read_one(self, account_id: str) -> Account | None:
        row = self.engine.read(lambda conn: conn.execute("SELECT * FROM accounts WHERE id = ?",
                                                         (account_id,)).fetchone())
        return _row_to_account(row) if row is not None else None

    def close(self) -> None:
        self.engine.close()


class AccountStore:
    """Async facade. Create with `await AccountStore.open(path)`."""

    def __init__(self, sync: _SyncStore, clock: Callable[[], float], locks: Locks) -> None:
        self._sync = sync
        self._clock = clock
        self._locks = locks
        self.health = StoreHealth(engine=sync.engine.dialect)
        self._deferred: list[tuple[str, dict[str, Any]]] = []  # (account id, columns) kept while the store is away
        self._deferred_usage: dict[str, dict[str, int]] = {}
        self.deferred_dropped = 0
        self._write_limiter = trio.CapacityLimiter(1)
        self._read_limiter = trio.CapacityLimiter(1)

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time) -> AccountStore:
        """The SQLite store file at `path`."""
        from ..store.sqlite_engine import SqliteEngine

        return await cls._open(lambda: SqliteEngine(Path(path), SCHEMA, synchronous="FULL", what="account store"),
                               clock, FileLocks(Path(path).parent / "locks"))

    @classmethod
    async def open_at(cls, location: StoreLocation, *, clock: Callable[[], float] = time.time) -> AccountStore:
        """The account store at `location` (`store.url`), migrated to this program's schema."""
        locks = FileLocks(location.lock_directory) if location.lock_directory else AdvisoryLocks(location.url)
        return await cls._open(lambda: open_engine(location, SCHEMA, what="account store"), clock, locks)

    @classmethod
    async def _open(cls, connect: Callable[[], Any], clock: Callable[[], float], locks: Locks) -> AccountStore:
        def opened() -> Any:
            try:
                return connect()
            except SchemaError as exc:
                raise StoreError(str(exc)) from None

        return cls(_SyncStore(await trio.to_thread.run_sync(opened)), clock, locks)

    @property
    def engine(self) -> Any:
        return self._sync.engine

    @property
    def path(self) -> Path | None:
        """The SQLite file (None on PostgreSQL)."""
        return getattr(self._sync.engine, "path", None)

    @property
    def skipped_rows(self) -> list[str]:
        """Ids of rows the last `list()` could not decode (kept in the file, reported here)."""
        return list(self._sync.skipped_rows)

    async def close(self) -> None:
        async with self._write_limiter:
            await trio.to_thread.run_sync(self._sync.close)
            await trio.to_thread.run_sync(self._locks.close)

    def refresh_lock(self, account_id: str) -> AsyncContextManager[HeldLock]:
        """Held while an account's tokens are refreshed: every process on this store honours it (an OS file lock
        for SQLite, an advisory lock for PostgreSQL). Raises `StoreUnavailable` when the store cannot be reached."""
        return holding(self._locks, f"refresh-{account_id}")

    async def _write(self, work: Callable[[Connection], T]) -> T:
        # not cancellable once started: a write either commits or rolls back as a whole
        return await self._reach(trio.to_thread.run_sync(self._sync.transaction, work, limiter=self._write_limiter))

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._reach(trio.to_thread.run_sync(fn, *args, limiter=self._read_limiter))

    async def _reach(self, call: Awaitable[T]) -> T:
        """Await a store call, keeping `health` current (PostgreSQL can go away; SQLite does not)."""
        try:
            result = await call
        except StoreUnavailable as exc:
            self.health.failed(self._clock(), str(exc))
            raise
        if not self.health.available:
            self.health.ok(self._clock())
        return result

    # ---- degraded: writes that can wait --------------------------------------------------------------

    def _defer(self, kind: str, key: str, fields: dict[str, Any]) -> None:
        """Keep a state write (status, cooldown, quota, usage counters) for when the store is back. Bounded:
        past `MAX_DEFERRED` the oldest is dropped and counted. Token writes are never deferred (a refresh
        needs the store: it never runs without it)."""
        if kind == "usage":
            pending = self._deferred_usage.setdefault(key, {"requests": 0, "input_tokens": 0, "output_tokens": 0})
            for name, value in fields.items():
                pending[name] += value
            return
        self._deferred.append((key, fields))
        if len(self._deferred) > MAX_DEFERRED:
            del self._deferred[0]
            self.deferred_dropped += 1

    @property
    def deferred(self) -> int:
        return len(self._deferred) + len(self._deferred_usage)

    async def replay_deferred(self) -> int:
        """Write what waited for the store, in order (restamped now, so other instances see it). Returns how
        many writes were replayed; stops at the first that fails again (the rest stays queued)."""
        done = 0
        while self._deferred:
            key, fields = self._deferred[0]
            await self.update(key, **fields)
            self._deferred.pop(0)
            done += 1
        while self._deferred_usage:
            account_id, counts = next(iter(self._deferred_usage.items()))
            await self.add_usage(account_id, **counts)
            self._deferred_usage.pop(account_id, None)
            done += 1
        return done

    async def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run `work(connection)` as one write transaction (for the other tables of the store)."""
        return await self._write(work)

    async def query(self, sql: str, params: tuple = ()) -> list[Any]:
        return await self._read(self._sync.engine.read, lambda conn: conn.execute(sql, params).fetchall())

    async def list(self) -> list[Account]:
        return await self._read(self._sync.read_all)

    async def get(self, account_id: str) -> Account | None:
        return await self._read(self._sync.read_one, account_id)

    async def insert(self, account: Account) -> Account:
        now = self._clock()
        account.created_at = account.created_at or now
        account.updated_at = now
        await self._write(lambda c: _insert(c, account))
        return account

    async def upsert_identity(self, account: Account, changes: Callable[[Account], dict[str, Any]],
                              new_id: Callable[[], str]) -> tuple[Account, bool]:
        """Add `account`, or — when a row of the same ChatGPT identity exists — apply `changes(existing)` to
        that row instead. Look-up and write are one transaction (BEGIN IMMEDIATE, which every process
        honours), so concurrent adds of one login end in one row. `account.id` is kept when free, else
        `new_id()` is used. Returns (the stored account, created)."""
        if account.account_id is None:
            raise ValueError("an account without a ChatGPT account id has no identity")
        now = self._clock()

        def work(conn: Connection) -> tuple[Account, bool]:
            row = conn.execute(_IDENTITY_QUERY, (account.account_id, account.user_id or "")).fetchone()
            if row is not None:
                existing = _row_to_account(row)
                fields = {**changes(existing), "updated_at": now}
                values = tuple(_encode(name, value) for name, value in fields.items())
                conn.execute(f"UPDATE accounts SET {', '.join(f'{n} = ?' for n in fields)} WHERE id = ?",
                             values + (existing.id,))
                stored = conn.execute("SELECT * FROM accounts WHERE id = ?", (existing.id,)).fetchone()
                return _row_to_account(stored), False
            if conn.execute("SELECT 1 FROM accounts WHERE id = ?", (account.id,)).fetchone() is not None:
                account.id = new_id()
            account.created_at = account.created_at or now
            account.updated_at = now
            _insert(conn, account)
            return account, True

        return await self._write(work)

    async def insert_many(self, accounts: list[Account]) -> None:
        """Bulk import in one transaction (fast: one fsync for the whole batch)."""
        now = self._clock()
        rows = []
        for account in accounts:
            account.created_at = account.created_at or now
            account.updated_at = now
            rows.append(_account_to_row(account))
        if not rows:
            return
        names = ", ".join(rows[0])
        marks = ", ".join("?" for _ in rows[0])
        await self._write(lambda c: c.executemany(f"INSERT INTO accounts ({names}) VALUES ({marks})",
                                                  [tuple(r.values()) for r in rows]))

    async def update(self, key: str, /, **fields: Any) -> bool:
        """Set columns of one account (token fields by their column names). False if it does not exist.

        While the store cannot be reached, a change without tokens is kept for later (`replay_deferred`) and
        reported done; a change of tokens raises `StoreUnavailable`."""
        unknown = set(fields) - set(COLUMNS)
        if unknown or "id" in fields:
            raise ValueError(f"not updatable: {sorted(unknown | ({'id'} & set(fields)))}")
        changes = dict(fields)
        fields["updated_at"] = self._clock()
        assignments = ", ".join(f"{name} = ?" for name in fields)
        values = tuple(_encode(name, value) for name, value in fields.items()) + (key,)
        try:
            rowcount = await self._write(lambda c: c.execute(f"UPDATE accounts SET {assignments} WHERE id = ?",
                                                             values).rowcount)
        except StoreUnavailable:
            if _TOKEN_FIELDS_SET & changes.keys():
                raise
            self._defer("update", key, changes)
            return True
        return rowcount == 1

    async def update_many(self, keys: list[str], /, **fields: Any) -> int:
        fields["updated_at"] = self._clock()
        assignments = ", ".join(f"{name} = ?" for name in fields)
        values = tuple(_encode(name, value) for name, value in fields.items())

        def work(c: Connection) -> int:
            return sum(c.execute(f"UPDATE accounts SET {assignments} WHERE id = ?", values + (i,)).rowcount
                       for i in keys)

        return await self._write(work)

    async def add_usage(self, account_id: str, *, requests: int = 1, input_tokens: int = 0,
                        output_tokens: int = 0) -> None:
        now = self._clock()
        try:
            await self._write(lambda c: c.execute(
                "UPDATE accounts SET request_count = request_count + ?, input_tokens = input_tokens + ?, "
                "output_tokens = output_tokens + ?, last_used_at = ? WHERE id = ?",
                (requests, input_tokens, output_tokens, now, account_id)))
        except StoreUnavailable:
            self._defer("usage", account_id, {"requests": requests, "input_tokens": input_tokens,
                                              "output_tokens": output_tokens})

    async def changed_since(self, since: float) -> list[Account]:
        """The accounts whose row changed at or after `since` (another instance's cooldown, ban, refresh …)."""
        rows = await self._read(self._sync.engine.read, lambda conn: conn.execute(
            "SELECT * FROM accounts WHERE updated_at >= ? ORDER BY updated_at", (since,)).fetchall())
        out = []
        for row in rows:
            try:
                out.append(_row_to_account(row))
            except (ValueError, TypeError, orjson.JSONDecodeError):
                continue  # reported by `list()`; left as is
        return out

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the store answers (checked before spending a single-use token whose
        answer it must then record)."""
        await self._read(self._sync.engine.read, lambda conn: conn.execute("SELECT 1").fetchone())

    async def ids(self) -> list[str]:
        rows = await self._read(self._sync.engine.read, lambda conn: conn.execute("SELECT id FROM accounts").fetchall())
        return [row[0] for row in rows]

    async def delete(self, account_ids: list[str]) -> int:
        def work(c: Connection) -> int:
            return sum(c.execute("DELETE FROM accounts WHERE id = ?", (i,)).rowcount for i in account_ids)

        return await self._write(work)

    async def integrity_check(self) -> str:
        return await self._read(self._sync.engine.integrity_check)
