"""Named locks every process on one store honours (the token refresh of an account takes one).

* SQLite: an OS file lock (`flock`) on `<dir>/locks/<name>.lock` — the CLI and a gateway on one data dir, or two
  gateways, exclude each other; the kernel drops it when a process dies, so a kill -9 never leaves it held.
* PostgreSQL: a session advisory lock on one dedicated connection per process; the server drops it when that
  connection ends (a dead instance holds nothing).

Both are taken by polling a non-blocking attempt from a worker thread, so the trio thread never blocks and a
waiter stays cancellable. A process that cannot reach the database cannot take a lock: `StoreUnavailable`, and the
caller does not do the guarded work (a refresh while the store is away could spend a token nobody can record).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Protocol

import trio

from .errors import StoreUnavailable

POLL_SECONDS = 0.05


class Locks(Protocol):
    def try_acquire(self, name: str) -> Any | None:
        """A held lock's handle, or None when another process holds it (blocking: worker threads only)."""

    def release(self, handle: Any) -> None: ...


class FileLocks:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, name: str) -> Path:
        # account ids are safe file names already; the hash keeps any other name one short file name
        safe = name if name.replace("-", "").replace("_", "").isalnum() and len(name) < 100 else \
            hashlib.sha256(name.encode()).hexdigest()[:32]
        return self.directory / f"{safe}.lock"

    def try_acquire(self, name: str) -> int | None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self._path(name), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreUnavailable(f"cannot open the lock file in {self.directory}: {exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            raise StoreUnavailable(f"cannot lock {self._path(name)}: {exc}") from None
        return fd

    def release(self, handle: int) -> None:
        try:
            fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            os.close(handle)

    def close(self) -> None:
        pass


class AdvisoryLocks:
    """Session advisory locks on one connection of this process (opened on first use, reopened after a loss)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: Any = None
        self._mutex = threading.Lock()  # the connection is used by one worker thread at a time

    def _connection(self) -> Any:
        import psycopg

        from .postgres import CONNECT_TIMEOUT_SECONDS

        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)
        return self._conn

    def try_acquire(self, name: str) -> int | None:
        import psycopg

        from .sql import lock_key

        key = lock_key(f"codex-trio lock {name}")
        with self._mutex:
            try:
                taken = self._connection().execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
            except psycopg.Error as exc:
                raise StoreUnavailable(f"cannot take lock {name}: {exc}") from None
        return key if taken else None

    def release(self, handle: int) -> None:
        import psycopg

        with self._mutex:
            try:
                self._connection().execute("SELECT pg_advisory_unlock(%s)", (handle,))
            except psycopg.Error:
                pass  # the connection is gone, and the server dropped its locks with it

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()


@asynccontextmanager
async def holding(locks: Locks, name: str) -> AsyncIterator[None]:
    """Hold `name` across processes for the body (waits, cancellably, while another process holds it)."""
    while True:
        handle = await trio.to_thread.run_sync(locks.try_acquire, name)
        if handle is not None:
            break
        await trio.sleep(POLL_SECONDS)
    try:
        yield
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(locks.release, handle)
