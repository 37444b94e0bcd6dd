"""The engine for several instances: PostgreSQL through psycopg 3 (sync) and a small `psycopg_pool` pool.

Called from worker threads only, like the SQLite engine. The stores' SQL is the common dialect; `PgConnection`
translates it (`store/sql.py`) and hands back rows that read like `sqlite3.Row` (by name and by position), so
the stores' code is the same for both engines. A write transaction first takes the store's transaction-level
advisory lock: writes of one store are serialised across every instance exactly as `BEGIN IMMEDIATE`
serialises them on a SQLite file (the identity check of `upsert_identity` relies on it).

A connection failure (database down, network gone, no connection free in time) becomes `StoreUnavailable`;
the pool reconnects by itself once the database is back.
"""

from __future__ import annotations

import itertools
import threading
import time
from decimal import Decimal
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import psycopg
from psycopg.adapt import Loader
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool, PoolTimeout

from .errors import SchemaError, StoreUnavailable
from .schema import Schema
from .sql import lock_key, postgres_ddl, to_pyformat

T = TypeVar("T")

CONNECT_TIMEOUT_SECONDS = 3
POOL_WAIT_SECONDS = 5.0
_MIGRATION_LOCK = lock_key("codex-trio schema migration")


class Row:
    """One result row, by column name or position (what `sqlite3.Row` offers the stores)."""

    __slots__ = ("_values", "_index")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: str | int) -> Any:
        return self._values[self._index[key]] if isinstance(key, str) else self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _named_rows(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    index = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(values, index)


class _NumberLoader(Loader):
    """`numeric` (what SUM over BIGINT returns) as int when whole, else float — as SQLite returns it."""

    def load(self, data: Any) -> int | float:
        number = Decimal(bytes(data).decode())
        return int(number) if number == number.to_integral_value() else float(number)


def _configure(conn: psycopg.Connection) -> None:
    conn.adapters.register_loader("numeric", _NumberLoader)


class PgCursor:
    def __init__(self, raw: psycopg.Cursor) -> None:
        self._raw = raw

    @property
    def row_factory(self) -> Any:
        return self._raw.row_factory

    @row_factory.setter
    def row_factory(self, factory: Any) -> None:
        self._raw.row_factory = tuple_row if factory is None else factory

    def execute(self, sql: str, params: Iterable[Any] = ()) -> "PgCursor":
        self._raw.execute(to_pyformat(sql), tuple(params))
        return self

    def fetchone(self) -> Any:
        return self._raw.fetchone()

    def fetchall(self) -> list[Any]:
        return self._raw.fetchall()

    def fetchmany(self, size: int) -> list[Any]:
        return self._raw.fetchmany(size)

    @property
    def rowcount(self) -> int:
        return self._raw.rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._raw)


class PgConnection:
    """A psycopg connection that speaks the stores' dialect (`execute`, `executemany`, `cursor`)."""

    def __init__(self, raw: psycopg.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Iterable[Any] = ()) -> PgCursor:
        return PgCursor(self.raw.cursor()).execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> PgCursor:
        cursor = self.raw.cursor()
        rows = [tuple(r) for r in rows]
        if rows:
            cursor.executemany(to_pyformat(sql), rows)
        return PgCursor(cursor)

    def cursor(self) -> PgCursor:
        return PgCursor(self.raw.cursor())


def redact(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://…"
    host = info.get("host", "")
    return f"postgresql://{info.get('user', '')}@{host}:{info.get('port', 5432)}/{info.get('dbname', '')}"


class PostgresEngine:
    dialect = "postgresql"

    def __init__(self, url: str, schema: Schema, *, max_connections: int = 4) -> None:
        self.url = url
        self.schema = schema
        self._write_lock = lock_key(f"codex-trio store {schema.name}")
        self.channel = f"codex_trio_{schema.name}"  # NOTIFY after every write: followers look at once
        self._changes = itertools.count()
        self.pool = ConnectionPool(url, min_size=1, max_size=max_connections, open=False, configure=_configure,
                                   kwargs={"row_factory": _named_rows, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
                                   timeout=POOL_WAIT_SECONDS, reconnect_timeout=0, name=f"codex-trio-{schema.name}")
        try:
            self.pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS * 2)
        except PoolTimeout:
            self.pool.close()
            raise SchemaError(f"could not connect to {self.description}; is the database running and the "
                              "store.url right?") from None
        try:
            self._migrate()
        except BaseException:
            self.pool.close()
            raise

    @property
    def description(self) -> str:
        return redact(self.url)

    def _migrate(self) -> None:
        def work(conn: PgConnection) -> None:
            # both stores and every instance may start at once: one migration at a time
            conn.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, "
                         "version BIGINT NOT NULL)")
            row = conn.execute("SELECT version FROM schema_versions WHERE component = ?",
                               (self.schema.name,)).fetchone()
            version = int(row[0]) if row is not None else 0
            if version > self.schema.version:
                raise SchemaError(f"{self.description}: the {self.schema.name} schema is at version {version}, "
                                  f"newer than this program ({self.schema.version}); upgrade codex-trio")
            if version == 0:
                existing = [t for t in self.schema.tables()
                            if conn.execute("SELECT to_regclass(?)", (t,)).fetchone()[0] is not None]
                if existing:
                    raise SchemaError(f"{self.description}: has tables {existing} but no {self.schema.name} "
                                      "schema version; not a database of this program")
            self.schema.apply(conn, version, postgres_ddl)
            conn.execute("INSERT INTO schema_versions (component, version) VALUES (?, ?) ON CONFLICT (component) "
                         "DO UPDATE SET version = excluded.version", (self.schema.name, self.schema.version))

        self._run(work, lock=False)

    def _run(self, work: Callable[[PgConnection], T], *, lock: bool) -> T:
        try:
            with self.pool.connection() as raw:  # commits on a clean exit, rolls back on an exception
                if lock:
                    raw.execute("SELECT pg_advisory_xact_lock(%s)", (self._write_lock,))
                result = work(PgConnection(raw))
                if lock:
                    raw.execute(f"NOTIFY {self.channel}")  # delivered when the transaction commits
                # Committed here, not by leaving the block: psycopg returns silently from a connection that broke
                # after the last statement (the database going down), so that commit would be skipped without an
                # error and the caller would take its rows for written. On a broken connection this raises.
                raw.commit()
                return result
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
            raise StoreUnavailable(f"{self.description}: {exc}") from None

    def transaction(self, work: Callable[[PgConnection], T]) -> T:
        return self._run(work, lock=True)

    def read(self, work: Callable[[PgConnection], T]) -> T:
        return self._run(work, lock=False)

    def append(self, work: Callable[[PgConnection], T]) -> T:
        """A write of rows only this instance inserts (`store/response_chains.py`): committed, but without the
        store's write lock and without a NOTIFY (nobody follows these rows)."""
        return self._run(work, lock=False)

    def change_counter(self) -> int:
        """Always "changed": PostgreSQL has no cheap data version, so callers re-read (a poll, once a second)."""
        return next(self._changes)

    def integrity_check(self) -> str:
        return self.read(lambda conn: "ok" if conn.execute("SELECT 1").fetchone()[0] == 1 else "unexpected")

    def close(self) -> None:
        self.pool.close()


class ChangeListener:
    """`LISTEN` on one channel, waited on from a worker thread: `wait` returns True as soon as another connection
    wrote (NOTIFY), False after `timeout` (the caller polls either way, so a lost notification costs one interval).
    A lost connection is reopened by the next wait; while the database is away each wait just sleeps."""

    def __init__(self, url: str, channel: str) -> None:
        self._url = url
        self._channel = channel
        self._conn: Any = None
        self._busy = threading.Lock()
        self._closing = False

    def wait(self, timeout: float) -> bool:
        with self._busy:
            try:
                if self._conn is None or self._conn.closed or self._conn.broken:
                    self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)
                    self._conn.execute(f"LISTEN {self._channel}")
                notified = any(True for _ in self._conn.notifies(timeout=timeout, stop_after=1))
            except psycopg.Error:
                self._conn = None
                time.sleep(timeout)
                notified = False
            if self._closing:
                self._close()
            return notified

    def close(self) -> None:
        """From any thread: closes now, or at the end of a wait in progress (which ends within its timeout)."""
        self._closing = True
        if self._busy.acquire(blocking=False):
            try:
                self._close()
            finally:
                self._busy.release()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
