"""`heap.release_free_heap` reaches glibc's malloc_trim (issue #20: what start-up and an account listing free is
given back to the system)."""

from __future__ import annotations

import platform

import pytest

from codex_trio.heap import release_free_heap


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_freed_heap_is_handed_back_on_glibc() -> None:
    assert release_free_heap() is True
