"""The operator store: usage rows and their rollups, persisted request errors, client keys.

Its own SQLite file (`operator.sqlite3` in the data dir), apart from the account store: usage is written every
second and queried in bulk, while the account store is the one file that must never be lost or locked
(`synchronous = FULL` there, `NORMAL` here: a kill -9 loses nothing committed, a power cut at most the last
commits). Same rules otherwise: mode 0600, WAL, versioned migrations, a newer or foreign file is refused and
left untouched, one writer connection (the background writer, behind a `CapacityLimiter(1)`), reads on
their own connection. With `store.url` on PostgreSQL the same tables live in that database (`store/`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

import orjson
import trio

from ..store.connection import Connection, Row
from ..providers.store import PROVIDERS_MIGRATION
from ..store.budget_leases import MIGRATION as BUDGET_LEASES_MIGRATION
from ..store.rate_leases import MIGRATION as RATE_LEASES_MIGRATION
from ..store.errors import SchemaError
from ..store.location import StoreLocation, open_engine
from ..store.schema import MigrationStep, Schema
from .record import RequestRecord

log = logging.getLogger(__name__)
T = TypeVar("T")

OPERATOR_DB = "operator.sqlite3"
GRANULARITIES = {"minute": 60, "hour": 3600, "day": 86400}
GROUP_COLUMNS = {"model": "model", "account": "account", "key": "key_id"}  # group_by → record column
DIMENSIONS = ("", "model", "account", "key")  # '' = every request
SUM_COLUMNS = ("requests", "errors", "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens",
               "cost_usd", "duration_ms")

# MIGRATIONS[n] takes the schema from version n to n+1. Append only; never edit a released step.
MIGRATIONS: list[list[MigrationStep]] = [
    [
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",  # SQLite's version table
        """CREATE TABLE usage_records (
            id TEXT PRIMARY KEY,
            ts REAL NOT NULL,
            key_id TEXT NOT NULL,
            protocol TEXT NOT NULL,
            requested_model TEXT NOT NULL,
            model TEXT NOT NULL,
            account TEXT NOT NULL,
            status INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            stream INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL,
            cached_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            reasoning_tokens INTEGER NOT NULL,
            ttfb_ms REAL,
            duration_ms REAL NOT NULL,
            error_kind TEXT NOT NULL,
            cost_usd REAL NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX usage_records_ts ON usage_records (ts)",
        # Per granularity (60 / 3600 / 86400 s) and bucket start: one row for all requests (dimension ''), one per
        # model, per account and per client key. Kept equal to the raw sums by the writer (raw rows and their
        # rollup increments commit in one transaction). One row per dimension value, not per (model, account,
        # key) combination: a combination table grows with the product of the three and is nearly as large as
        # the raw rows (measured: 0.9 hourly rows per raw row with 6 models x 10 accounts x 20 keys), while
        # this one has 1 + models + accounts + keys rows per bucket, whatever the traffic.
        """CREATE TABLE usage_rollups (
            granularity INTEGER NOT NULL,
            dimension TEXT NOT NULL,
            bucket INTEGER NOT NULL,
            value TEXT NOT NULL,
            requests INTEGER NOT NULL,
            errors INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL,
            cached_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            reasoning_tokens INTEGER NOT NULL,
            cost_usd REAL NOT NULL,
            duration_ms REAL NOT NULL,
            PRIMARY KEY (granularity, dimension, bucket, value)
        ) WITHOUT ROWID""",
        """CREATE TABLE request_errors (
            id TEXT PRIMARY KEY,
            ts REAL NOT NULL,
            record TEXT NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX request_errors_ts ON request_errors (ts)",
        """CREATE TABLE client_keys (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            prefix TEXT NOT NULL,
            key_hash TEXT NOT NULL UNIQUE,
            enabled INTEGER NOT NULL,
            created_at REAL NOT NULL,
            last_used_at REAL,
            expires_at REAL,
            limits TEXT NOT NULL
        )""",
    ],
    BUDGET_LEASES_MIGRATION,  # several instances: leases of client-key budgets (store/budget_leases.py)
    PROVIDERS_MIGRATION,  # upstream API-key providers, formerly their own providers.sqlite3 (providers/store.py)
    RATE_LEASES_MIGRATION,  # several instances: leases of client-key request slots (store/rate_leases.py)
]
SCHEMA = Schema("operator", MIGRATIONS)
SCHEMA_VERSION = SCHEMA.version

_RECORD_COLUMNS = ("id", "ts", "key_id", "protocol", "requested_model", "model", "account", "status", "outcome",
                   "stream", "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens", "ttfb_ms",
                   "duration_ms", "error_kind", "cost_usd")
_INSERT_RECORD = (f"INSERT INTO usage_records ({', '.join(_RECORD_COLUMNS)}) "
                  f"VALUES ({', '.join('?' for _ in _RECORD_COLUMNS)}) ON CONFLICT DO NOTHING")
_UPSERT_ROLLUP = (
    "INSERT INTO usage_rollups (granularity, dimension, bucket, value, " + ", ".join(SUM_COLUMNS) + ") "
    "VALUES (?, ?, ?, ?, " + ", ".join("?" for _ in SUM_COLUMNS) + ") "
    "ON CONFLICT (granularity, dimension, bucket, value) DO UPDATE SET "
    + ", ".join(f"{c} = usage_rollups.{c} + excluded.{c}" for c in SUM_COLUMNS))
KEY_COLUMNS = ("id", "name", "prefix", "key_hash", "enabled", "created_at", "last_used_at", "expires_at", "limits")


class OperatorStoreError(SchemaError):
    """The operator store cannot be opened safely; nothing was written."""


def _record_row(record: RequestRecord) -> tuple[Any, ...]:
    return (record.id, record.started_at, record.key_id, record.protocol, record.requested_model, record.model,
            record.account, record.status, record.outcome, int(record.stream), record.input_tokens,
            record.cached_tokens, record.output_tokens, record.reasoning_tokens, record.ttfb_ms,
            record.duration_ms, record.error_kind, record.cost_usd)


def rollup_increments(records: Iterable[RequestRecord]) -> dict[tuple[int, str, int, str], list[float]]:
    """The batch pre-aggregated per rollup row, so a batch costs one upsert per row it touches."""
    out: dict[tuple[int, str, int, str], list[float]] = {}
    for r in records:
        values = (1, int(r.outcome != "ok"), r.input_tokens, r.cached_tokens, r.output_tokens, r.reasoning_tokens,
                  r.cost_usd, r.duration_ms)
        for seconds in GRANULARITIES.values():
            bucket = int(r.started_at // seconds) * seconds
            for dimension, value in (("", ""), ("model", r.model), ("account", r.account), ("key", r.key_id)):
                key = (seconds, dimension, bucket, value)
                sums = out.get(key)
                if sums is None:
                    out[key] = list(values)
                else:
                    for i, v in enumerate(values):
                        sums[i] += v
    return out


@dataclass(frozen=True)
class HistoryQuery:
    start: float
    end: float
    granularity: str = "hour"
    group_by: str | None = None


def write_batch(conn: Connection, records: list[RequestRecord], errors: list[RequestRecord]) -> None:
    conn.executemany(_INSERT_RECORD, [_record_row(r) for r in records])
    conn.executemany(_UPSERT_ROLLUP, [key + tuple(sums) for key, sums in rollup_increments(records).items()])
    conn.executemany("INSERT INTO request_errors (id, ts, record) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                     [(r.id, r.started_at, orjson.dumps(r.to_json()).decode()) for r in errors])


def prune(conn: Connection, before: float) -> int:
    """Drop raw rows, minute rollups and persisted errors older than `before`."""
    removed = conn.execute("DELETE FROM usage_records WHERE ts < ?", (before,)).rowcount
    conn.execute("DELETE FROM usage_rollups WHERE granularity = 60 AND bucket < ?", (int(before),))
    conn.execute("DELETE FROM request_errors WHERE ts < ?", (before,))
    return removed


def _sums(row: Row | None) -> dict[str, Any]:
    out = {c: ((row[c] if row is not None else 0) or 0) for c in SUM_COLUMNS}
    out["cost_usd"] = round(float(out["cost_usd"]), 6)
    out["duration_ms"] = round(float(out["duration_ms"]), 3)
    for c in SUM_COLUMNS:
        if c not in ("cost_usd", "duration_ms"):
            out[c] = int(out[c])
    out["total_tokens"] = out["input_tokens"] + out["output_tokens"]
    return out


_SUM_SQL = ", ".join(f"SUM({c}) AS {c}" for c in SUM_COLUMNS)


def read_summary(conn: Connection, since: float, until: float) -> dict[str, Any]:
    """Totals and per-model / account / key totals from the rollups: whole days from the daily rollups, the
    ragged ends from the minute rollups (so a summary reads a few thousand rows at most)."""
    def grouped(dimension: str) -> list[Row]:
        sql = (f"SELECT value, {_SUM_SQL} FROM ({_COVERING_ROLLUPS}) AS covering GROUP BY value "
               "ORDER BY requests DESC, value")
        return conn.execute(sql, _covering_params(dimension, since, until)).fetchall()

    totals = grouped("")
    return {"from": since, "to": until,
            "totals": _sums(totals[0]) if totals else _sums(None),
            "by_model": [{"model": r["value"], **_sums(r)} for r in grouped("model")],
            "by_account": [{"account": r["value"], **_sums(r)} for r in grouped("account")],
            "by_key": [{"key_id": r["value"], **_sums(r)} for r in grouped("key")]}


# [since, until): minutes up to the first whole day, whole days, minutes after the last whole day.
_COVERING_ROLLUPS = " UNION ALL ".join(
    [f"SELECT value, {', '.join(SUM_COLUMNS)} FROM usage_rollups WHERE granularity = ? AND dimension = ? "
     "AND bucket >= ? AND bucket < ?"] * 3)


def _covering_params(dimension: str, since: float, until: float) -> tuple[Any, ...]:
    start = int(since // 60) * 60
    end = int(-(-until // 60)) * 60
    first_day = -(-start // 86400) * 86400
    last_day = end // 86400 * 86400
    if first_day >= last_day:  # less than a whole day: minutes only
        return (60, dimension, start, end, 86400, dimension, 0, 0, 60, dimension, 0, 0)
    return (60, dimension, start, first_day, 86400, dimension, first_day, last_day, 60, dimension, last_day, end)


def read_history(conn: Connection, query: HistoryQuery) -> list[dict[str, Any]]:
    seconds = GRANULARITIES[query.granularity]
    sql = (f"SELECT bucket, value, {', '.join(SUM_COLUMNS)} FROM usage_rollups WHERE granularity = ? "
           "AND dimension = ? AND bucket >= ? AND bucket < ? ORDER BY bucket, value")
    start = int(query.start // seconds) * seconds
    cursor = conn.cursor()
    cursor.row_factory = None  # plain tuples: a 30-day hourly history by key is ~15,000 rows
    cursor.execute(sql, (seconds, query.group_by or "", start, query.end))
    group = query.group_by
    out = []
    for bucket, value, requests, errors, inp, cached, output, reasoning, cost, duration in cursor:
        point = {"bucket": bucket, "requests": requests, "errors": errors, "input_tokens": inp,
                 "cached_tokens": cached, "output_tokens": output, "reasoning_tokens": reasoning,
                 "cost_usd": round(cost, 6), "duration_ms": round(duration, 3), "total_tokens": inp + output}
        if group:
            point[group] = value
        out.append(point)
    return out


def key_token_totals(conn: Connection, since: float) -> dict[str, list[tuple[int, int]]]:
    """Per client key: (day start, tokens) from the daily rollups since `since` (budget counters at start)."""
    out: dict[str, list[tuple[int, int]]] = {}
    for row in conn.execute("SELECT value, bucket, input_tokens + output_tokens AS tokens FROM usage_rollups "
                            "WHERE granularity = 86400 AND dimension = 'key' AND bucket >= ? AND value != ''",
                            (int(since),)):
        out.setdefault(row["value"], []).append((int(row["bucket"]), int(row["tokens"])))
    return out


def read_errors(conn: Connection, limit: int, before: float | None) -> list[dict[str, Any]]:
    sql = "SELECT record FROM request_errors " + ("WHERE ts < ? " if before is not None else "") + \
        "ORDER BY ts DESC LIMIT ?"
    params: tuple[Any, ...] = (before, limit) if before is not None else (limit,)
    return [orjson.loads(row["record"]) for row in conn.execute(sql, params)]


class OperatorStore:
    """Async facade over one engine (`store/`): `await OperatorStore.open(path)` or `open_at(location)`; reads and
    writes run in worker threads."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._write_limiter = trio.CapacityLimiter(1)
        self._read_limiter = trio.CapacityLimiter(1)

    @staticmethod
    def _connect(connect: Callable[[], Any]) -> Any:
        try:
            return connect()
        except SchemaError as exc:
            raise OperatorStoreError(str(exc)) from None

    @staticmethod
    def _sqlite(path: str | os.PathLike[str]) -> Any:
        from ..store.sqlite_engine import SqliteEngine

        return SqliteEngine(Path(path), SCHEMA, synchronous="NORMAL", what="operator store")

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> "OperatorStore":
        return cls(await trio.to_thread.run_sync(cls._connect, lambda: cls._sqlite(path)))

    @classmethod
    async def open_at(cls, location: StoreLocation) -> "OperatorStore":
        return cls(await trio.to_thread.run_sync(
            cls._connect, lambda: open_engine(location, SCHEMA, what="operator store")))

    @classmethod
    def open_sync(cls, location: StoreLocation | str | os.PathLike[str]) -> "OperatorStore":
        if isinstance(location, StoreLocation):
            return cls(cls._connect(lambda: open_engine(location, SCHEMA, what="operator store")))
        return cls(cls._connect(lambda: cls._sqlite(location)))

    @property
    def path(self) -> Path | None:
        """The SQLite file (None on PostgreSQL)."""
        return getattr(self._engine, "path", None)

    @property
    def sync(self) -> Any:
        """The blocking engine (`transaction`, `read`, `close`), for the CLI."""
        return self._engine

    async def close(self) -> None:
        async with self._write_limiter:
            await trio.to_thread.run_sync(self._engine.close)

    async def write(self, work: Callable[[Any], T]) -> T:
        # not cancellable once started: a batch commits or rolls back as a whole
        return await trio.to_thread.run_sync(self._engine.transaction, work, limiter=self._write_limiter)

    async def read(self, work: Callable[[Any], T]) -> T:
        return await trio.to_thread.run_sync(self._engine.read, work, limiter=self._read_limiter)

    async def changed_elsewhere(self) -> int:
        return await trio.to_thread.run_sync(self._engine.change_counter, limiter=self._write_limiter)
