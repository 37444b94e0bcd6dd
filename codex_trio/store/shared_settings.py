"""Several instances on one PostgreSQL: settings changed through one instance's admin API or dashboard (what
`ConfigStore.update` writes to local.yaml) are stored in the database and applied by every instance within a
second.

The database holds one document: every setting changed that way, merged, with a version that grows with each
change. An instance that applies a change publishes it (merged into the document in one locked transaction, so two
instances changing settings at once both count); every instance polls the version every `POLL_SECONDS` and, when
it moved, applies the whole document with `ConfigStore.update` — its own local.yaml is rewritten and its listeners
run exactly as for a local change. At start an instance adopts the document the database holds. What stays per
instance (`LOCAL_ONLY`): the store URL and the listening address. A setting edited by hand in one instance's
local.yaml stays on that instance (only changes made through `update` are shared); a document value that this
instance cannot take (an environment variable overrides it, or its validation fails here) is logged and skipped
until the next change.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

import orjson
import trio

from .errors import StoreUnavailable

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
LOCAL_ONLY = (("store",), ("server", "host"), ("server", "port"))

MIGRATION = [
    """CREATE TABLE shared_settings (
        id INTEGER PRIMARY KEY,
        document TEXT NOT NULL,
        version INTEGER NOT NULL,
        updated_at REAL NOT NULL
    )""",
]


def shared_part(changes: Mapping[str, Any]) -> dict[str, Any]:
    """`changes` without what stays per instance (a deep copy)."""
    def strip(node: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            here = (*path, key)
            if here in LOCAL_ONLY:
                continue
            if isinstance(value, Mapping):
                inner = strip(value, here)
                if inner:
                    out[key] = inner
            else:
                out[key] = value
        return out

    return strip(changes, ())


def merge(document: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(document.get(key), dict):
            merge(document[key], value)
        else:
            document[key] = dict(value) if isinstance(value, Mapping) else value
    return document


class SharedSettings:
    def __init__(self, engine: Any, config: Any, *, clock: Callable[[], float]) -> None:
        self._engine = engine
        self._config = config
        self._clock = clock
        self._outbox: list[dict[str, Any]] = []
        self._applying = False
        self._applied_version = 0
        self._limiter = trio.CapacityLimiter(1)

    def changed_here(self, changes: Mapping[str, Any]) -> None:
        """`ConfigStore.update_hooks`: a change made on this instance, to publish (not one we are applying)."""
        if not self._applying and (shared := shared_part(changes)):
            self._outbox.append(shared)

    def _read(self) -> tuple[int, dict[str, Any]]:
        row = self._engine.read(lambda conn: conn.execute(
            "SELECT version, document FROM shared_settings WHERE id = 1").fetchone())
        return (0, {}) if row is None else (int(row["version"]), orjson.loads(row["document"]))

    def _publish(self, changes: list[dict[str, Any]]) -> None:
        now = self._clock()

        def work(conn: Any) -> None:  # the store's write lock serialises two instances publishing at once
            row = conn.execute("SELECT version, document FROM shared_settings WHERE id = 1").fetchone()
            version, document = (0, {}) if row is None else (int(row["version"]), orjson.loads(row["document"]))
            for change in changes:
                merge(document, change)
            conn.execute("INSERT INTO shared_settings (id, document, version, updated_at) VALUES (1, ?, ?, ?) "
                         "ON CONFLICT (id) DO UPDATE SET document = excluded.document, version = excluded.version, "
                         "updated_at = excluded.updated_at", (orjson.dumps(document).decode(), version + 1, now))

        self._engine.transaction(work)

    async def sync_once(self) -> None:
        """Publish what changed here, then apply the document if another instance changed it."""
        if self._outbox:
            pending, self._outbox = self._outbox, []
            try:
                await trio.to_thread.run_sync(self._publish, pending, limiter=self._limiter)
            except StoreUnavailable:
                self._outbox[:0] = pending  # published when the store is back
                return
        try:
            version, document = await trio.to_thread.run_sync(self._read, limiter=self._limiter)
        except StoreUnavailable:
            return
        if version == self._applied_version:
            return
        self._applied_version = version
        self._applying = True
        try:
            self._config.update(document)
        except Exception as exc:  # noqa: BLE001 - ConfigError, OverriddenByEnvironment: this instance keeps its own
            log.error("the shared settings (version %d) could not be applied here: %s", version, exc)
        finally:
            self._applying = False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._config.update_hooks.append(self.changed_here)
        try:
            await self.sync_once()  # adopt what the database holds before serving
            task_status.started()
            while True:
                await trio.sleep(POLL_SECONDS)
                await self.sync_once()
        finally:
            self._config.update_hooks.remove(self.changed_here)


async def run_shared_settings(gateway: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Background job (after the accounts job): on a PostgreSQL store, share the settings changed through the admin
    API. On SQLite (one process) local.yaml is the only place."""
    store = gateway.services.store
    if store is None or store.engine.dialect != "postgresql":
        task_status.started()
        return
    await SharedSettings(store.engine, gateway.config, clock=gateway.services.connector.clock).run(task_status=task_status)
