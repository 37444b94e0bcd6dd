"""One version everywhere: rust/Cargo.toml's, which maturin writes into the package metadata and compiles into the
native module, and which `codex-trio --version` and `/health` report."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import httpx

from codex_trio import _native

from tests.conftest import running_gateway

CRATE_VERSION = tomllib.loads((Path(__file__).resolve().parents[1] / "rust/Cargo.toml").read_text())["package"]["version"]


def test_package_and_native_module_carry_the_crate_version() -> None:
    # A mismatch here means the installed metadata is stale: reinstall (`pip install -e .` or `maturin develop`).
    assert version("codex-trio") == _native.version() == CRATE_VERSION


def test_cli_reports_it(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "codex_trio.cli", "--version"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == f"codex-trio {CRATE_VERSION}"


async def test_health_reports_it(data_dir: Path) -> None:
    async with running_gateway(data_dir) as (_, url):
        async with httpx.AsyncClient() as client:
            health = (await client.get(f"{url}/health")).json()
    assert health["version"] == CRATE_VERSION


def test_changelog_starts_with_it() -> None:
    changelog = (Path(__file__).resolve().parents[1] / "CHANGELOG.md").read_text()
    first_release = next(line for line in changelog.splitlines() if line.startswith("## "))
    assert first_release.startswith(f"## {CRATE_VERSION} ")
