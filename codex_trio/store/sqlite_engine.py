"""The embedded engine: one SQLite file per store (WAL, mode 0600), one writer connection, one reader.

Called from worker threads only (the async facades put every call behind a `CapacityLimiter`). A write is
`BEGIN IMMEDIATE … COMMIT`, which every process on the file honours, so a kill -9 leaves the last committed
state and two processes never interleave writes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable, TypeVar

from ..sqlite_files import create_private_file, open_private_db
from .errors import SchemaError
from .schema import Schema

T = TypeVar("T")


class SqliteEngine:
    dialect = "sqlite"

    def __init__(self, path: Path, schema: Schema, *, synchronous: str, what: str) -> None:
        self.path = path
        self.schema = schema
        self._synchronous = synchronous
        self._what = what  # "account store", "operator store": named in every error message
        create_private_file(path)
        self.writer = self._connect()
        self._migrate()
        self.reader = self._connect()

    @property
    def description(self) -> str:
        return str(self.path)

    def _connect(self) -> sqlite3.Connection:
        try:
            return open_private_db(self.path, synchronous=self._synchronous)
        except sqlite3.DatabaseError as exc:
            raise SchemaError(f"{self.path} is not a readable {self._what} ({exc}); it was left untouched — "
                              "restore a backup or move it away") from None

    def _migrate(self) -> None:
        conn = self.writer
        try:
            conn.execute("BEGIN IMMEDIATE")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "schema_version" in tables:
                row = conn.execute("SELECT version FROM schema_version").fetchone()
                if row is None:
                    raise SchemaError(f"{self.path}: schema_version table is empty; refusing to guess")
                version = int(row[0])
            elif tables:
                raise SchemaError(f"{self.path}: has tables {sorted(tables)} but no schema_version; not an "
                                  f"{self._what} of this program")
            else:
                version = 0
            if version > self.schema.version:
                raise SchemaError(f"{self.path}: schema version {version} is newer than this program "
                                  f"({self.schema.version}); upgrade codex-trio")
            self.schema.apply(conn, version, lambda sql: sql)
            if version == 0:
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (self.schema.version,))
            elif version < self.schema.version:
                conn.execute("UPDATE schema_version SET version = ?", (self.schema.version,))
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
            if isinstance(exc, (sqlite3.DatabaseError, TypeError)):
                raise SchemaError(f"{self.path} could not be read as an {self._what} ({exc}); it was left "
                                  "untouched") from None
            raise

    def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        conn = self.writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return work(self.reader)

    def change_counter(self) -> int:
        """Changes when another connection (another process, the CLI) committed (`PRAGMA data_version`)."""
        return int(self.writer.execute("PRAGMA data_version").fetchone()[0])

    def integrity_check(self) -> str:
        return str(self.reader.execute("PRAGMA integrity_check").fetchone()[0])

    def close(self) -> None:
        self.reader.close()
        self.writer.close()
