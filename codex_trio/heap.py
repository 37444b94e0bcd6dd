"""Handing freed heap memory back to the system after a burst of short-lived objects (glibc only).

glibc keeps what the process frees for reuse and returns on its own only a free stretch at the very top of the
heap. Reading every account builds thousands of small objects (rows, strings, dicts) between the ones that stay,
so once they are dropped the pages in between stay resident although nothing uses them. `malloc_trim(0)` walks
the free chunks and gives every whole free page back (madvise); it costs well under a millisecond at idle.

Called where such a burst ends: once the gateway serves (start-up read and loaded every account) and after an
admin listing of all accounts. Measured with 5,000 accounts (`benches/account_pool.py`): see
docs/performance.md, "Start-up and memory with 5,000 accounts".
"""

from __future__ import annotations

import ctypes
import sys
from typing import Callable

_trim: Callable[[int], int] | None = None
_looked_up = False


def _malloc_trim() -> Callable[[int], int] | None:
    global _trim, _looked_up
    if not _looked_up:
        _looked_up = True
        if sys.platform.startswith("linux"):
            try:
                # the process's own symbols: the C library Python runs on (no library search, no ldconfig)
                _trim = ctypes.CDLL(None).malloc_trim
            except (OSError, AttributeError):  # not glibc (musl has no malloc_trim): nothing to give back this way
                _trim = None
    return _trim


def release_free_heap() -> bool:
    """Give the heap's free pages back to the system. False where the C library cannot (not glibc)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
