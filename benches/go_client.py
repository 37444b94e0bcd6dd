"""The Go load client (`benches/loadclient/`), built at run time, for benches whose client must not compete with
the server it measures: a Python client parsing a fast SSE stream on this 2-core machine takes a core of its own.

`build()` compiles it into a temporary directory (standard library only, so no module download) and returns the
executable, or None with the reason printed when `go` is not installed. `stream()` runs it for one request.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import orjson
import trio

SOURCE = Path(__file__).resolve().parent / "loadclient"


def build() -> Path | None:
    go = shutil.which("go")
    if go is None:
        print("the Go load client is skipped: `go` is not installed (falling back to the httpx client)")
        return None
    binary = Path(tempfile.mkdtemp(prefix="loadclient-")) / "loadclient"
    env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}  # the installed Go, nothing fetched
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=SOURCE, env=env, check=True)
    return binary


async def stream(binary: Path, url: str, headers: dict[str, str], body: bytes, *, marker: str = "",
                 ca_file: str | None = None) -> dict[str, Any]:
    """One request; the client's figures: status, ttfb_ms, marker_ms, events (`data:` lines), bytes, seconds."""
    command = [str(binary), "-url", url, "-body", "-", "-marker", marker]
    for name, value in headers.items():
        command += ["-header", f"{name}: {value}"]
    if ca_file:
        command += ["-cafile", ca_file]
    done = await trio.run_process(command, stdin=body, capture_stdout=True, check=False)
    result = orjson.loads(done.stdout)
    if done.returncode != 0 or result.get("error"):
        raise RuntimeError(f"load client: {result.get('error') or done.returncode}")
    return result
