"""What `codex-trio run` loads at start-up: nothing only another command or a later feature needs (issue #20,
idle RSS). The simulator (trustme, cryptography, Pillow), httpx (pygments, rich) and cryptography's Rust
bindings together cost about 14 MiB of resident memory that a serving gateway never uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# The same imports `codex-trio run` performs before it serves: the parser with every subcommand, then the
# gateway with every surface, its account store and proxy pool opened.
PROBE = """
import json, sys, tempfile
from pathlib import Path
from codex_trio import cli
from codex_trio.commands.run import build_gateway
cli.build_parser()
from codex_trio.config.store import ConfigStore
from codex_trio.accounts.proxies import SecretBox
store = ConfigStore(Path(tempfile.mkdtemp()) / "data", environ={})
store.ensure_first_start()
build_gateway(store)
SecretBox.in_dir(store.data_dir)
print(json.dumps(sorted(sys.modules)))
"""

NOT_AT_START_UP = ["codex_trio.sim.simulator", "trustme", "PIL", "httpx", "cryptography", "pygments"]


def test_run_does_not_import_the_simulator_httpx_or_cryptography(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120, check=True)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert [name for name in NOT_AT_START_UP if name in loaded] == []
