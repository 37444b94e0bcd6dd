"""`store copy`: every row of every store from one location to another (SQLite → PostgreSQL, and back).

Blocking (the CLI runs it directly). The destination is opened (so migrated to this program's schema) and must be
empty: copying over rows would mix two data sets, and merging accounts is what `accounts import` is for. Each
store is copied in one transaction on the destination, table by table in creation order, with the columns the
source has; the row counts are compared afterwards and a difference is an error (nothing is silently lost).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .location import StoreLocation, open_engine
from .schema import Schema

BATCH_ROWS = 1000


class CopyRefused(Exception):
    """The copy was not started (destination not empty, same place); nothing was written."""


@dataclass(frozen=True)
class TableCopied:
    store: str
    table: str
    rows: int


def _count(conn: Any, table: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def copy_stores(source: StoreLocation, destination: StoreLocation, schemas: list[Schema],
                progress: Callable[[TableCopied], None] = lambda _: None) -> list[TableCopied]:
    if source == destination:
        raise CopyRefused("source and destination are the same store")
    copied: list[TableCopied] = []
    for schema in schemas:
        what = f"{schema.name} store"
        src = open_engine(source, schema, what=what)
        try:
            dst = open_engine(destination, schema, what=what)
            try:
                copied.extend(_copy_schema(src, dst, schema, progress))
            finally:
                dst.close()
        finally:
            src.close()
    return copied


def _copy_schema(src: Any, dst: Any, schema: Schema, progress: Callable[[TableCopied], None]) -> list[TableCopied]:
    tables = schema.tables()
    occupied = dst.read(lambda conn: [t for t in tables if _count(conn, t)])
    if occupied:
        raise CopyRefused(f"{dst.description} already holds rows in {occupied} ({schema.name} store); copy into an "
                          "empty database")
    read: dict[str, int] = {}

    def write(target: Any) -> None:
        def stream(source: Any) -> None:  # batch by batch: a usage table may not fit in memory at once
            for table in tables:
                cursor = source.execute(f"SELECT * FROM {table}")
                read[table] = 0
                while rows := cursor.fetchmany(BATCH_ROWS):
                    columns = list(rows[0].keys())
                    target.executemany(f"INSERT INTO {table} ({', '.join(columns)}) "
                                       f"VALUES ({', '.join('?' for _ in columns)})",
                                       [tuple(row[c] for c in columns) for row in rows])
                    read[table] += len(rows)

        src.read(stream)

    dst.transaction(write)
    counts = dst.read(lambda conn: {t: _count(conn, t) for t in tables})
    result = []
    for table in tables:
        if counts[table] != read[table]:
            raise RuntimeError(f"{schema.name}.{table}: {read[table]} rows read but {counts[table]} in the destination")
        done = TableCopied(schema.name, table, read[table])
        progress(done)
        result.append(done)
    return result
