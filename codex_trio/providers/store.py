"""The provider store: one table of the operator store (`store.url`: `operator.sqlite3` in the data dir, or the
shared PostgreSQL database), with the API keys sealed by `SecretBox` (key file `providers.key` in the data dir,
which every instance on one database needs a copy of, like `proxies.key`).

Small and synchronous on purpose: a handful of rows, written by an operator. The gateway keeps a snapshot in
memory and polls the rows (`rows_changed`), so `codex-trio providers add` or another instance's admin API
applies to a running gateway within a second, with no store round trip on the request path.

Before providers moved into the operator store they had their own file, `providers.sqlite3`: its rows are
imported once when the store opens, and the file is renamed `providers.sqlite3.imported` (kept as a backup).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import orjson

from ..store.errors import SchemaError
from ..store.location import StoreLocation, open_engine
from .model import Provider
from .secrets import SecretBox

log = logging.getLogger(__name__)

LEGACY_PROVIDERS_DB = "providers.sqlite3"  # the store of releases before providers joined the operator store
IMPORTED_SUFFIX = ".imported"
PROVIDERS_KEY = "providers.key"
PROVIDERS_MIGRATION = [
    """CREATE TABLE providers (
        id TEXT PRIMARY KEY,
        label TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        wire TEXT NOT NULL,
        base_url TEXT NOT NULL,
        sealed_keys TEXT NOT NULL,
        models TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        priority INTEGER NOT NULL,
        proxy TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )""",
]
_COLUMNS = ("id", "label", "kind", "wire", "base_url", "sealed_keys", "models", "enabled", "priority", "proxy",
            "created_at", "updated_at")
_UPSERT = (f"INSERT INTO providers ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "
           f"ON CONFLICT(id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _COLUMNS[1:])}")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM providers ORDER BY priority, created_at, id"


class ProviderStoreError(Exception):
    pass


class ProviderStore:
    def __init__(self, data_dir: Path, location: StoreLocation | None = None) -> None:
        from ..telemetry.store import SCHEMA as OPERATOR_SCHEMA  # the operator store's schema holds the table

        self._box = SecretBox(data_dir / PROVIDERS_KEY)
        self._lock = threading.Lock()  # the gateway's worker threads share the engine's connections
        try:
            self._engine = open_engine(location or StoreLocation("sqlite", directory=data_dir), OPERATOR_SCHEMA,
                                       what="operator store", pg_connections=1)  # a handful of rows
        except SchemaError as exc:
            raise ProviderStoreError(str(exc)) from None
        self._seen_rows: list[tuple[Any, ...]] | None = None
        _import_legacy_file(data_dir / LEGACY_PROVIDERS_DB, self)

    def close(self) -> None:
        self._engine.close()

    def _rows(self) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._engine.read(lambda conn: [tuple(row) for row in conn.execute(_SELECT).fetchall()])

    def all(self) -> list[Provider]:
        rows = self._rows()
        self._seen_rows = rows
        return [self._decode(row) for row in rows]

    def rows_changed(self) -> list[Provider] | None:
        """The providers when the rows differ from those last read (any process, any instance), else None."""
        rows = self._rows()
        if rows == self._seen_rows:
            return None
        self._seen_rows = rows
        return [self._decode(row) for row in rows]

    def put(self, provider: Provider) -> None:
        """Insert or replace one provider (by id) in one transaction; a duplicate label is refused."""
        row = self._encode(provider)

        def work(conn: Any) -> None:
            # checked first (the write holds the store's write lock): the unique index would only say "conflict"
            taken = conn.execute("SELECT id FROM providers WHERE label = ? AND id <> ?",
                                 (provider.label, provider.id)).fetchone()
            if taken is not None:
                raise ProviderStoreError(f"a provider labelled {provider.label!r} exists already; pick another "
                                         "label")
            conn.execute(_UPSERT, row)

        with self._lock:
            self._engine.transaction(work)

    def delete(self, provider_ids: list[str]) -> int:
        def work(conn: Any) -> int:
            return sum(conn.execute("DELETE FROM providers WHERE id = ?", (pid,)).rowcount for pid in provider_ids)

        with self._lock:
            return self._engine.transaction(work)

    def put_sealed_if_new(self, row: tuple[Any, ...]) -> bool:
        """One row of the legacy file, keys still sealed with the same key file; an existing id or label wins."""
        def work(conn: Any) -> bool:
            if conn.execute("SELECT 1 FROM providers WHERE id = ? OR label = ?", (row[0], row[1])).fetchone():
                return False
            conn.execute(_UPSERT, row)
            return True

        with self._lock:
            return self._engine.transaction(work)

    def _encode(self, p: Provider) -> tuple:
        return (p.id, p.label, p.kind, p.wire, p.base_url, self._box.seal(orjson.dumps(list(p.keys))).decode(),
                orjson.dumps(list(p.models)).decode(), int(p.enabled), p.priority, p.proxy, p.created_at,
                p.updated_at)

    def _decode(self, row: tuple[Any, ...]) -> Provider:
        (pid, label, kind, wire, base_url, sealed, models, enabled, priority, proxy, created, updated) = row
        return Provider(id=pid, label=label, kind=kind, wire=wire, base_url=base_url,
                        keys=tuple(orjson.loads(self._box.open(sealed.encode()))),
                        models=tuple(orjson.loads(models)), enabled=bool(enabled), priority=int(priority),
                        proxy=proxy, created_at=float(created), updated_at=float(updated))


def _import_legacy_file(path: Path, store: ProviderStore) -> None:
    """Move the rows of a `providers.sqlite3` into the store once, then rename the file (kept as a backup)."""
    if not path.exists():
        return
    try:
        conn = sqlite3.connect(path)
        try:
            rows = conn.execute(_SELECT).fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        log.error("%s could not be read (%s); its providers were not imported — add them again", path, exc)
        return
    imported = 0
    for row in rows:
        sealed = row[5].decode() if isinstance(row[5], bytes) else row[5]
        if store.put_sealed_if_new((*row[:5], sealed, *row[6:])):
            imported += 1
        else:
            log.warning("provider %r of %s not imported: the store has one with its id or label", row[1], path)
    path.rename(path.with_name(path.name + IMPORTED_SUFFIX))
    log.warning("imported %d provider(s) from %s into the operator store; the old file is kept as %s%s",
                imported, path, path.name, IMPORTED_SUFFIX)
