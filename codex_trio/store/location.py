"""Where the stores live (`store.url`), and opening one store's engine there.

* empty (the default): SQLite files in the data dir — `accounts.sqlite3` and `operator.sqlite3`;
* `sqlite:///abs/dir` (or `sqlite://rel/dir`): the same files in another folder;
* `postgresql://…` / `postgres://…`: one PostgreSQL database holding both stores (several instances).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import SchemaError
from .schema import Schema

SQLITE_FILES = {"accounts": "accounts.sqlite3", "operator": "operator.sqlite3"}
# A committed refresh token must survive power loss (FULL); losing the last second of usage is allowed (NORMAL).
SQLITE_SYNCHRONOUS = {"accounts": "FULL", "operator": "NORMAL"}


@dataclass(frozen=True)
class StoreLocation:
    dialect: str  # "sqlite" | "postgresql"
    directory: Path | None = None  # sqlite: the folder of the files
    url: str = ""  # postgresql: the connection URL

    @classmethod
    def parse(cls, url: str, data_dir: Path) -> "StoreLocation":
        url = url.strip()
        if not url:
            return cls("sqlite", directory=Path(data_dir))
        scheme = urlsplit(url).scheme.lower()
        if scheme == "sqlite":
            path = url[len("sqlite://"):]
            if not path or path == "/":
                raise ValueError(f"store.url {url!r}: name the folder of the SQLite files (sqlite:///path/to/dir)")
            return cls("sqlite", directory=Path(path))
        if scheme in ("postgresql", "postgres"):
            return cls("postgresql", url=url)
        raise ValueError(f"store.url {url!r}: use sqlite:///path/to/dir or postgresql://user:password@host/db")

    @classmethod
    def of(cls, config: Any) -> "StoreLocation":
        """The location a loaded configuration (`ConfigStore`) names."""
        return cls.parse(config.settings.store.url, config.data_dir)

    def sqlite_path(self, schema: Schema) -> Path:
        assert self.directory is not None
        return self.directory / SQLITE_FILES[schema.name]

    @property
    def description(self) -> str:
        if self.dialect == "sqlite":
            return f"SQLite in {self.directory}"
        from .postgres import redact

        return redact(self.url)

    @property
    def lock_directory(self) -> Path | None:
        """Where SQLite's cross-process lock files live (None for PostgreSQL: it has advisory locks)."""
        return self.directory / "locks" if self.directory is not None else None


def open_engine(location: StoreLocation, schema: Schema, *, what: str, pg_connections: int = 4) -> Any:
    """Open (and migrate) `schema`'s store at `location`. Blocking: call from a worker thread."""
    if location.dialect == "sqlite":
        from .sqlite_engine import SqliteEngine

        return SqliteEngine(location.sqlite_path(schema), schema, synchronous=SQLITE_SYNCHRONOUS[schema.name],
                            what=what)
    try:
        from .postgres import PostgresEngine
    except ImportError as exc:  # pragma: no cover - psycopg is a dependency; a broken install says so
        raise SchemaError(f"store.url names PostgreSQL but psycopg is not importable ({exc})") from None
    return PostgresEngine(location.url, schema, max_connections=pg_connections)
