"""The `codex-trio` executable on a user's mistakes: one line that says what to fix and a non-zero exit, never a
traceback; a mistyped data dir is refused, never silently created (subprocesses, 127.0.0.1 only)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXECUTABLE = Path(sys.executable).with_name("codex-trio")


def codex_trio(*args: str, env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CODEX_TRIO", "OLLAMA_BRIDGE"))
               and k not in ("PORT", "HTTPS_PROXY")}
    environ.update(env or {})
    return subprocess.run([str(EXECUTABLE), *args], capture_output=True, text=True, timeout=60, env=environ,
                          input=stdin)


def assert_one_line_error(result: subprocess.CompletedProcess, *expected: str) -> str:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("codex-trio:")]
    assert len(errors) == 1, result.stderr
    for text in expected:
        assert text in errors[0], result.stderr
    return errors[0]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def gone_ca(data_dir: Path, tmp_path: Path) -> Path:
    """A data dir whose local.yaml names a CA file that no longer exists (a demo's, after the demo ended)."""
    missing = tmp_path / "sim-ca.pem"
    (data_dir / "local.yaml").write_text(f"tls:\n  ca_file: {missing}\n")
    return missing


@pytest.mark.parametrize("command", [["run", "--port", "0"], ["accounts", "list", "--fresh"],
                                     ["accounts", "import", "-"], ["accounts", "refresh"], ["login", "--device"]])
def test_a_ca_file_that_is_gone_stops_upstream_commands_with_one_line(command, data_dir, gone_ca):
    result = codex_trio(*command, "--data-dir", str(data_dir), stdin="rt_token\n")
    assert_one_line_error(result, "tls.ca_file", str(gone_ca), "does not exist", "local.yaml:2")


def test_config_check_and_doctor_catch_a_missing_ca_file_and_a_bad_or_dead_proxy(data_dir, gone_ca):
    check = codex_trio("config", "check", "--data-dir", str(data_dir))
    # A CA file that does not exist makes the configuration invalid: exit 2, as for any invalid setting
    assert check.returncode == 2 and "configuration is valid" not in check.stderr
    assert_one_line_error(check, "tls.ca_file", "does not exist")
    doctor = codex_trio("doctor", "--data-dir", str(data_dir))
    assert_one_line_error(doctor, "tls.ca_file", f"{gone_ca} does not exist", "local.yaml:2")

    (data_dir / "local.yaml").write_text("")
    bad = codex_trio("config", "check", "--data-dir", str(data_dir), env={"HTTPS_PROXY": "proxy.example:3128"})
    assert_one_line_error(bad, "proxy.example:3128", "environment variable HTTPS_PROXY")
    dead = codex_trio("doctor", "--data-dir", str(data_dir), env={"HTTPS_PROXY": "http://127.0.0.1:9"})
    assert dead.returncode == 1 and "[PROBLEM] egress proxy http://127.0.0.1:9 does not answer" in dead.stdout


def test_device_login_with_the_issuer_unreachable_is_one_line(data_dir):
    result = codex_trio("login", "--device", "--data-dir", str(data_dir), "--issuer", "https://127.0.0.1:9")
    assert_one_line_error(result, "127.0.0.1:9", "--issuer")


@pytest.mark.parametrize("command", [["accounts", "list"], ["accounts", "export"], ["accounts", "import", "-"],
                                     ["accounts", "remove", "x"], ["accounts", "refresh"], ["config", "check"]])
def test_a_data_dir_that_does_not_exist_is_refused_and_not_created(command, tmp_path):
    typo = tmp_path / "dta"
    result = codex_trio(*command, "--data-dir", str(typo), stdin="rt_token\n")
    assert_one_line_error(result, f"data dir {typo} does not exist", "--data-dir")
    assert not typo.exists()
    from_env = codex_trio(*command, env={"CODEX_TRIO_DATA_DIR": str(typo)}, stdin="rt_token\n")
    assert_one_line_error(from_env, "CODEX_TRIO_DATA_DIR")


def test_doctor_reports_a_missing_data_dir_instead_of_calling_it_writable(tmp_path):
    typo = tmp_path / "dta"
    result = codex_trio("doctor", "--data-dir", str(typo))
    assert result.returncode == 1
    assert f"[PROBLEM] data dir {typo} does not exist" in result.stdout and "writable" not in result.stdout
    assert not typo.exists()


def test_account_commands_name_their_data_dir(data_dir):
    result = codex_trio("accounts", "list", "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    assert f"data dir: {data_dir}" in result.stderr


def test_run_on_a_port_in_use_is_one_line(data_dir):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = codex_trio("run", "--port", str(port), "--data-dir", str(data_dir))
    assert_one_line_error(result, f"port {port}", "already in use")


def test_export_to_a_path_that_cannot_be_written_is_one_line(data_dir, tmp_path):
    target = tmp_path / "no-such-dir" / "backup.json"
    result = codex_trio("accounts", "export", "-o", str(target), "--data-dir", str(data_dir))
    assert_one_line_error(result, f"cannot write {target}", "-o")
