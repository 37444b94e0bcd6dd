"""The one SQL dialect the stores are written in, and its translation for PostgreSQL (pure functions).

The stores write SQLite-flavoured SQL that PostgreSQL also accepts once two things are translated: `?`
placeholders (psycopg wants `%s`, and a literal `%` doubled), and in schema steps the column types (SQLite's
`REAL` / `INTEGER` are PostgreSQL's `DOUBLE PRECISION` / `BIGINT` — token counts outgrow 32 bits) and the
SQLite-only `WITHOUT ROWID`. Everything else the stores use is common to both: `ON CONFLICT … DO UPDATE /
DO NOTHING`, `coalesce`, partial unique indexes.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache


@lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """`?` placeholders outside string literals → `%s`; every `%` doubled (psycopg formats every query)."""
    out: list[str] = []
    quoted = False
    for char in sql:
        if char == "'":
            quoted = not quoted
        if char == "%":
            out.append("%%")
        elif char == "?" and not quoted:
            out.append("%s")
        else:
            out.append(char)
    return "".join(out)


_TYPES = ((re.compile(r"\bREAL\b"), "DOUBLE PRECISION"), (re.compile(r"\bINTEGER\b"), "BIGINT"),
          (re.compile(r"\s+WITHOUT ROWID\b"), ""))


SQLITE_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"


def postgres_ddl(sql: str) -> str:
    """A schema statement written for SQLite, for PostgreSQL ("" = nothing to run: SQLite's per-file version
    table, which the first step of each store creates; PostgreSQL keeps `schema_versions` instead)."""
    if sql.strip() == SQLITE_VERSION_TABLE:
        return ""
    for pattern, replacement in _TYPES:
        sql = pattern.sub(replacement, sql)
    return sql


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a PostgreSQL advisory lock named `name` (same in every process)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)
