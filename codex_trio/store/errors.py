"""What a store raises, whichever engine is behind it."""

from __future__ import annotations

import sqlite3


class SchemaError(Exception):
    """The database cannot be opened or migrated safely (newer, foreign or unreadable); nothing was written."""


class StoreUnavailable(Exception):
    """The database could not be reached (PostgreSQL down, connection lost, no connection free in time).

    Nothing was written; the caller keeps what it holds and tries again later (degraded, not down)."""


# What a write may fail with at run time, whichever engine: the writers catch these and keep their batch.
DATABASE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, StoreUnavailable)
