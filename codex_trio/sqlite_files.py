"""The SQLite files this program keeps (the account store, the operator store): created private, opened the one
way every store here needs them.

WAL lets readers run beside the one writer; `busy_timeout` makes a second process wait for the writer instead of
failing at once. The side files (`-wal`, `-shm`) hold the same data as the store, so they get its 0600 too.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


def create_private_file(path: Path) -> None:
    """Create `path` (mode 0600) if it is missing; never truncates an existing one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        # An existing file is not opened: closing any descriptor of a file drops every POSIX lock this process
        # holds on it, SQLite's included — another process closing its last connection would then think it the
        # last one and delete the WAL under this process's open connections (they would read stale data forever).
        pass
    os.chmod(path, 0o600)


def open_private_db(path: Path, *, synchronous: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with rows by name, WAL and `synchronous`
    (FULL where a committed row must survive power loss). Raises sqlite3.DatabaseError for a file that is not a
    usable database; the caller says what that file is."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 10000")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal":
        conn.close()
        raise sqlite3.DatabaseError(f"could not switch to WAL (got {mode})")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    for suffix in ("-wal", "-shm"):
        side = Path(f"{path}{suffix}")
        if side.exists():
            os.chmod(side, 0o600)
    return conn
