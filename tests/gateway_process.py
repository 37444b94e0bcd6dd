"""`codex-trio run` as a subprocess, for tests that measure the process itself (RSS, descriptors)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import httpx

from codex_trio.config.writer import update_local_file
from tests.foundation.test_serving import _free_port


@contextmanager
def gateway_process(data_dir: Path, key: str, *, local: Mapping[str, Any] | None = None, stop_timeout: float = 20,
                    **popen: Any) -> Iterator[tuple[subprocess.Popen, int]]:
    """(process, port): the gateway on a free port with admin key `key` (and the settings `local`), answering
    /health when yielded; stopped with SIGTERM (then killed) on the way out. `popen` goes to subprocess.Popen
    (stderr, preexec_fn, ...)."""
    data_dir.mkdir(mode=0o700, exist_ok=True)
    update_local_file(data_dir / "local.yaml", {"server": {"proxy_api_key": key}})
    if local:
        update_local_file(data_dir / "local.yaml", local)
    port = _free_port()
    env = {**os.environ, "CODEX_TRIO_DATA_DIR": str(data_dir), "PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "codex_trio.cli", "run"], env=env, **popen)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, "gateway did not start"
                time.sleep(0.1)
        yield proc, port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=stop_timeout)
        finally:
            proc.kill()


def rss_mib(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")
