"""`heap.py` reaches glibc (issue #20: what an account listing frees is given back to the system, and large
temporary buffers get mappings of their own instead of fragmenting the heap)."""

from __future__ import annotations

import platform

import pytest

from codex_trio.heap import keep_large_blocks_apart, release_free_heap

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim and mallopt are glibc's")


@glibc_only
def test_freed_heap_is_handed_back_on_glibc() -> None:
    assert release_free_heap() is True


@glibc_only
def test_the_mmap_threshold_is_accepted_by_glibc() -> None:
    assert keep_large_blocks_apart() is True
