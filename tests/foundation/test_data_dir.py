"""The data directory holds tokens and the API key: `codex-trio run` makes an existing loose one 0700 and says so
once."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

from tests.foundation.test_serving import _free_port
from tests.test_commands import _read_until

EXECUTABLE = Path(sys.executable).with_name("codex-trio")
TIGHTENED = "changed it to 0700"


def run_until_ready(data_dir: Path) -> str:
    """Start `codex-trio run`, wait until it listens, stop it with SIGTERM; returns its stderr."""
    env = {**os.environ, "PORT": str(_free_port())}
    proc = subprocess.Popen([str(EXECUTABLE), "run", "--data-dir", str(data_dir)], env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        output = _read_until(proc, r"listening on http://")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        return output + proc.stderr.read()
    finally:
        proc.kill()
        proc.stderr.close()


def test_a_world_readable_data_dir_is_made_0700_at_start_and_reported_once(tmp_path: Path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    (data_dir / "local.yaml").write_text("# mine\n")

    first = run_until_ready(data_dir)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert first.count(TIGHTENED) == 1 and "0755" in first, first
    assert "Traceback" not in first

    second = run_until_ready(data_dir)
    assert TIGHTENED not in second
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert (data_dir / "local.yaml").read_text().startswith("# mine\n")
