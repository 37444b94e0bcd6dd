"""A versioned schema (one per store: accounts, operator) and the one loop that applies its migrations, for
either engine.

`migrations[n]` takes a schema from version n to n+1: SQL statements written in the common dialect
(`store/sql.py`), or a function given the connection (inside the migration transaction). Append only; never
edit a released step. The version lives in the database: SQLite keeps one `schema_version` row per file (one
file per store), PostgreSQL one `schema_versions` row per store (both stores share the database). The engine
reads and writes that version and runs `apply` inside one transaction, so a failed step leaves the database as
it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Union

MigrationStep = Union[str, Callable[[Any], None]]

_CREATED = re.compile(r"^\s*CREATE TABLE (?:IF NOT EXISTS )?(\w+)", re.IGNORECASE)
_DROPPED = re.compile(r"^\s*DROP TABLE (?:IF EXISTS )?(\w+)", re.IGNORECASE)


@dataclass(frozen=True)
class Schema:
    name: str  # "accounts", "operator": also its lock and version key in PostgreSQL
    migrations: list[list[MigrationStep]]

    @property
    def version(self) -> int:
        return len(self.migrations)

    def tables(self) -> list[str]:
        """The tables the migrations leave, in creation order (what `store copy` moves)."""
        tables: list[str] = []
        for steps in self.migrations:
            for step in steps:
                if callable(step):
                    continue
                if created := _CREATED.match(step):
                    if created.group(1) != "schema_version":  # the engine's, not the store's
                        tables.append(created.group(1))
                elif dropped := _DROPPED.match(step):
                    tables.remove(dropped.group(1))
        return tables

    def apply(self, conn: Any, version: int, ddl: Callable[[str], str]) -> None:
        """Run the steps from `version` to the newest on `conn` (inside the caller's transaction)."""
        for number in range(version, self.version):
            for step in self.migrations[number]:
                if callable(step):
                    step(conn)
                elif statement := ddl(step):
                    conn.execute(statement)
