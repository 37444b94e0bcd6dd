"""The provider store: its own SQLite file (`providers.sqlite3`, WAL, 0600) with one table, and the API keys
sealed by `SecretBox` (key file `providers.key` beside it).

Small and synchronous on purpose: a handful of rows, written by an operator. The gateway keeps a snapshot in
memory and re-reads it when another process (the CLI) committed (`PRAGMA data_version` changes), so
`codex-trio providers add` applies to a running gateway without a restart.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import orjson

from ..sqlite_files import create_private_file, open_private_db
from .model import Provider
from .secrets import SecretBox

PROVIDERS_DB = "providers.sqlite3"
PROVIDERS_KEY = "providers.key"
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS providers (
    id TEXT PRIMARY KEY,
    label TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    wire TEXT NOT NULL,
    base_url TEXT NOT NULL,
    sealed_keys BLOB NOT NULL,      -- Fernet token of a JSON list of API keys
    models TEXT NOT NULL,           -- JSON list of model ids
    enabled INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    proxy TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
)
"""
_COLUMNS = ("id", "label", "kind", "wire", "base_url", "sealed_keys", "models", "enabled", "priority", "proxy",
            "created_at", "updated_at")


class ProviderStoreError(Exception):
    pass


class ProviderStore:
    def __init__(self, data_dir: Path) -> None:
        path = data_dir / PROVIDERS_DB
        create_private_file(path)
        self._box = SecretBox(data_dir / PROVIDERS_KEY)
        self._lock = threading.Lock()  # one writer; the connection is shared by the gateway's threads
        try:
            self._conn = open_private_db(path, synchronous="FULL")
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ProviderStoreError(f"{path} was written by a newer codex-trio (schema {version}); upgrade")
            self._conn.execute(SCHEMA)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise ProviderStoreError(f"{path} is not a usable provider store: {exc}") from None
        self._seen_version: int | None = None

    def close(self) -> None:
        self._conn.close()

    def changed_elsewhere(self) -> bool:
        """True once after another connection committed (our own writes reload explicitly)."""
        with self._lock:
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        changed, self._seen_version = version != self._seen_version, version
        return changed

    def all(self) -> list[Provider]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM providers ORDER BY priority, created_at").fetchall()
        return [self._decode(row) for row in rows]

    def put(self, provider: Provider) -> None:
        """Insert or replace one provider (by id) in one transaction; a duplicate label is refused."""
        row = self._encode(provider)
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                # An upsert by id only: INSERT OR REPLACE would also silently replace the row holding the label.
                updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
                self._conn.execute(f"INSERT INTO providers ({', '.join(_COLUMNS)}) VALUES "
                                   f"({', '.join('?' for _ in _COLUMNS)}) ON CONFLICT(id) DO UPDATE SET {updates}", row)
                self._conn.execute("COMMIT")
            except sqlite3.IntegrityError:
                self._conn.execute("ROLLBACK")
                raise ProviderStoreError(f"a provider labelled {provider.label!r} exists already; pick another "
                                         "label") from None

    def delete(self, provider_ids: list[str]) -> int:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            removed = sum(self._conn.execute("DELETE FROM providers WHERE id = ?", (pid,)).rowcount
                          for pid in provider_ids)
            self._conn.execute("COMMIT")
        return removed

    def _encode(self, p: Provider) -> tuple:
        return (p.id, p.label, p.kind, p.wire, p.base_url, self._box.seal(orjson.dumps(list(p.keys))),
                orjson.dumps(list(p.models)).decode(), int(p.enabled), p.priority, p.proxy, p.created_at,
                p.updated_at)

    def _decode(self, row: sqlite3.Row) -> Provider:
        return Provider(id=row["id"], label=row["label"], kind=row["kind"], wire=row["wire"],
                        base_url=row["base_url"], keys=tuple(orjson.loads(self._box.open(row["sealed_keys"]))),
                        models=tuple(orjson.loads(row["models"])), enabled=bool(row["enabled"]),
                        priority=row["priority"], proxy=row["proxy"], created_at=row["created_at"],
                        updated_at=row["updated_at"])
