"""Named locks every process on one store honours (the token refresh of an account takes one).

* SQLite: an OS file lock (`flock`) on `<dir>/locks/<name>.lock` — the CLI and a gateway on one data dir, or two
  gateways, exclude each other; the kernel drops it when a process dies, so a kill -9 never leaves it held.
* PostgreSQL: a session advisory lock on one dedicated connection per process; the server drops it when that
  connection ends (a dead instance holds nothing).

Both are taken by polling a non-blocking attempt from a worker thread, so the trio thread never blocks and a
waiter stays cancellable. A process that cannot reach the database cannot take a lock: `StoreUnavailable`, and the
caller does not do the guarded work (a refresh while the store is away could spend a token nobody can record).

A PostgreSQL session lock ends with its connection: if that connection drops while the lock is held, the server
releases it early and another process may take it. The holder therefore `confirm`s the lock before it commits
what the lock guards (`HeldLock.confirm`): still held; or lost and taken back (the guarded rows may have been
changed meanwhile: the caller re-reads before writing); or lost to another process (`LockLost`: write nothing).
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


class LockLost(StoreUnavailable):
    """The lock was released under its holder (its connection dropped) and another process holds it now."""


class Locks(Protocol):
    def try_acquire(self, name: str) -> Any | None:
        """A held lock's handle, or None when another process holds it (blocking: worker threads only)."""

    def still_held(self, handle: Any) -> bool: ...

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

    def still_held(self, handle: int) -> bool:
        return True  # an open descriptor keeps its flock; only this process closes it

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
                conn = self._connection()
                taken = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
            except psycopg.Error as exc:
                raise StoreUnavailable(f"cannot take lock {name}: {exc}") from None
        return (key, conn) if taken else None

    def still_held(self, handle: tuple[int, Any]) -> bool:
        """Whether the server still counts the lock as this session's (False once its connection dropped, even
        if a new connection was opened since)."""
        import psycopg

        key, conn = handle
        with self._mutex:
            if conn is not self._conn or conn.closed or conn.broken:
                return False
            try:
                # a bigint advisory key shows in pg_locks as classid (high 32 bits), objid (low), objsubid 1
                return conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                    "AND granted AND classid = %s AND objid = %s AND objsubid = 1",
                    ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)).fetchone()[0] == 1
            except psycopg.Error:
                return False

    def release(self, handle: tuple[int, Any]) -> None:
        import psycopg

        key, conn = handle
        with self._mutex:
            if conn is not self._conn or conn.closed or conn.broken:
                return  # that connection is gone, and the server dropped its locks with it
            try:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            except psycopg.Error:
                pass

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()


class HeldLock:
    def __init__(self, locks: Locks, name: str, handle: Any) -> None:
        self._locks = locks
        self.name = name
        self.handle = handle

    async def confirm(self) -> bool:
        """Before committing what the lock guards. True: held all along. False: it was lost (its connection
        dropped) and is taken back now — another process may have changed the guarded rows in the gap, so the
        caller re-reads them first. Raises `LockLost` when another process holds it now (or the store is away)."""
        if await trio.to_thread.run_sync(self._locks.still_held, self.handle):
            return True
        handle = await trio.to_thread.run_sync(self._locks.try_acquire, self.name)
        if handle is None:
            raise LockLost(f"lock {self.name} was lost (its connection dropped) and another process holds it now")
        self.handle = handle
        return False


@asynccontextmanager
async def holding(locks: Locks, name: str) -> AsyncIterator[HeldLock]:
    """Hold `name` across processes for the body (waits, cancellably, while another process holds it)."""
    while True:
        handle = await trio.to_thread.run_sync(locks.try_acquire, name)
        if handle is not None:
            break
        await trio.sleep(POLL_SECONDS)
    held = HeldLock(locks, name, handle)
    try:
        yield held
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(locks.release, held.handle)
