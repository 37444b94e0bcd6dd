"""The native I/O threads yield to the Python thread: waking one (a WebSocket frame handed over, a call started)
must not preempt the Python thread that woke it (`rust/src/runtime.rs`, `yield_on_wakeup`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from codex_trio.native import Client, ConnectError

SCHED_BATCH = 3


def io_thread_policies() -> list[int]:
    """The scheduling policy (field 41 of /proc/<tid>/stat) of each of this process's native I/O threads."""
    policies = []
    for task in Path("/proc/self/task").iterdir():
        if (task / "comm").read_text().strip() == "codex-trio-io":
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            policies.append(int(fields[41 - 3]))
    return policies


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="scheduling policies are Linux's")
async def test_the_io_threads_run_as_batch_threads_that_do_not_preempt_on_wakeup() -> None:
    with pytest.raises(ConnectError):  # any call starts the runtime; a closed port answers at once
        await Client("openssl", connect_timeout=2).request("GET", "http://127.0.0.1:9/", [])
    policies = io_thread_policies()
    assert policies, f"no codex-trio-io thread in pid {os.getpid()}"
    assert policies == [SCHED_BATCH] * len(policies)
