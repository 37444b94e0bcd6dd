"""How the gateway's C heap gives memory back to the system (glibc only; elsewhere these do nothing).

glibc keeps what the process frees for reuse and returns on its own only a free stretch at the very top of the
heap. Reading every account builds thousands of small objects (rows, strings, dicts) between the ones that stay,
so once they are dropped the pages in between stay resident although nothing uses them:

* `release_free_heap` (`malloc_trim(0)`) walks the free chunks and gives every whole free page back; well under
  a millisecond at idle. Called where such a burst ends: after an account listing (start-up now reads the
  accounts once and keeps them, so a trim once serving gave nothing back: 95 MiB with 5,000 accounts either way).
* `keep_large_blocks_apart` fixes glibc's mmap threshold at its initial 128 KiB. By default the threshold grows
  to the largest block freed so far (up to 32 MiB), after which large temporary buffers — a 3 MB account listing
  as JSON, the store's fetch of every row — are carved from the heap and leave it fragmented; kept at 128 KiB
  they are mapped on their own and unmapped when freed.

Measured with 5,000 accounts (`benches/account_pool.py`): docs/performance.md, "Start-up and memory with 5,000
accounts".
"""

from __future__ import annotations

import ctypes
import sys
from functools import cache
from typing import Any

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own initial value


@cache
def _glibc() -> Any | None:
    """The C library Python runs on, when it is glibc (looked up among the process's own symbols: no library
    search, no ldconfig)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None)
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None  # musl has neither


def release_free_heap() -> bool:
    """Give the heap's free pages back to the system. False where the C library cannot (not glibc)."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def keep_large_blocks_apart() -> bool:
    """Blocks of 128 KiB and more get a mapping of their own from now on (process-wide, the native module's
    threads included). False where the C library has no such setting."""
    libc = _glibc()
    return libc is not None and libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
