"""deploy/codex-trio.service is a unit systemd accepts, with the data dir, restart policy and hardening docs/deploy.md
promises. Checked with `systemd-analyze` (Debian's systemd package; the test is skipped where it is missing)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "deploy/codex-trio.service"
INSTALLED_PATH = "/opt/codex-trio/bin/codex-trio"
ANALYZE = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed (apt-get install systemd)")


@pytest.fixture
def unit_here(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this environment's `codex-trio` (verify checks that it is executable)."""
    executable = Path(sys.executable).with_name("codex-trio")
    if not executable.exists():
        executable = Path(shutil.which("codex-trio") or pytest.fail("no codex-trio executable installed"))
    text = UNIT.read_text()
    assert INSTALLED_PATH in text
    path = tmp_path / UNIT.name
    path.write_text(text.replace(INSTALLED_PATH, str(executable)))
    return path


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def test_unit_keeps_its_data_dir_and_restarts() -> None:
    settings = unit_settings()
    assert settings["StateDirectory"] == ["codex-trio"] and settings["StateDirectoryMode"] == ["0700"]
    assert settings["Environment"] == ["CODEX_TRIO_DATA_DIR=/var/lib/codex-trio"]
    assert settings["ExecStart"] == [f"{INSTALLED_PATH} run"]
    assert settings["Restart"] == ["on-failure"]
    # The stop timeout leaves room for the default 10 s drain of open streams.
    assert int(settings["TimeoutStopSec"][0].rstrip("s")) > 10


@needs_systemd
def test_systemd_analyze_verify_accepts_the_unit(unit_here: Path) -> None:
    result = subprocess.run([ANALYZE, "verify", str(unit_here)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@needs_systemd
def test_hardening_rates_ok(unit_here: Path) -> None:
    result = subprocess.run([ANALYZE, "security", "--offline=true", str(unit_here)], capture_output=True, text=True,
                            timeout=60)
    if "--offline" in result.stderr:
        pytest.skip(f"this systemd-analyze has no offline security check: {result.stderr.strip()}")
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert level, result.stdout + result.stderr
    assert float(level.group(1)) <= 2.0  # systemd calls up to 3.9 "OK"; 1.7 when written
