"""Private files in the data directory: created 0600 (directories 0700) and replaced atomically."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def ensure_private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def tighten_to_owner(path: Path) -> int | None:
    """Make an existing directory 0700 when group or others have any access to it (mkdir's mode only applies
    to a directory it creates). Returns the previous permission bits when it changed them, else None."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & 0o077:
        return None
    path.chmod(0o700)
    return mode


def write_private_atomic(path: Path, data: bytes | str) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: readers see the old or the new file, never half."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # The rename is durable only once the directory entry is on disk too.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
