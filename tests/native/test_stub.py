"""`codex_trio/_native.pyi` describes the built module: mypy's stubtest compares every name, argument and default
of the stub with the extension as loaded, so a change to rust/src/py.rs fails here until the stub follows; and
the trio facade (native.py) type-checks against the stub."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")

ROOT = Path(__file__).resolve().parents[2]


def mypy_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    # this checkout's package first (MYPYPATH for the stub, PYTHONPATH for the module stubtest imports), and a
    # config and cache (in the working directory) of our own, so no other checkout's codex_trio stands in
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\npython_version = 3.11\n")
    env = {**os.environ, "MYPYPATH": str(ROOT),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    option = "--mypy-config-file" if args[0] == "mypy.stubtest" else "--config-file"
    return subprocess.run([sys.executable, "-m", *args, option, str(config)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_the_stub_matches_the_built_module(tmp_path: Path) -> None:
    import codex_trio._native

    assert Path(codex_trio._native.__file__).parent == ROOT / "codex_trio", "another checkout's module was loaded"
    result = mypy_run(tmp_path, "mypy.stubtest", "codex_trio._native")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_facade_type_checks_against_the_stub(tmp_path: Path) -> None:
    result = mypy_run(tmp_path, "mypy", "--follow-imports=silent", str(ROOT / "codex_trio" / "native.py"))
    assert result.returncode == 0, result.stdout + result.stderr
