"""The sans-IO parts of `codex-trio identity check` (the check itself needs a real codex binary and is run by
scripts/identity-check, not by the suite): JA4 from the captured hellos, and the comparison rules."""

from __future__ import annotations

import json

import pytest

from codex_trio.identity_check.compare import Call, compare
from codex_trio.identity_check.tls_fingerprint import fingerprint
from tests.conftest import FIXTURES


@pytest.mark.parametrize("folder", ["chatgpt-mode/tls", "chatgpt-mode-0.171.0/tls"])
def test_ja4_of_every_captured_hello(folder: str) -> None:
    directory = FIXTURES / folder
    prints = json.loads((directory / "fingerprints.json").read_text())
    checked = 0
    for name, info in prints.items():
        if "ja4" not in info or not (directory / name).exists():
            continue
        hello = bytes.fromhex("".join((directory / name).read_text().split()))
        assert fingerprint(hello)["ja4"] == info["ja4"], name
        checked += 1
    assert checked >= 4


def call(key: str, **changes) -> Call:
    base = {"ja4": "t13d301100_1d37bd780c83_8e6e362c5eac", "header_names": ("version", "accept", "host"),
            "fields": ("model", "stream"), "metadata_keys": frozenset({"session_id"})}
    return Call(key, **{**base, **changes})


def test_equal_calls_and_calls_only_one_side_made() -> None:
    report = compare([call("GET /m"), call("POST /mcp")], [call("GET /m"), call("GET /usage")])
    assert report.equal and report.compared == ["GET /m"]
    assert report.only_codex == ["POST /mcp"] and report.only_gateway == ["GET /usage"]
    assert "no differences" in report.render()


@pytest.mark.parametrize("change", [
    {"ja4": "t13d101000_61a7ad8aa9b6_0d308c48d2a3"},
    {"header_names": ("version", "host", "accept")},
    {"header_names": ("Version", "accept", "host")},
    {"header_names": ("version", "accept", "accept-encoding", "host")},
    {"fields": ("stream", "model")},
    {"fields": ("model", "stream", "tools")},
    {"metadata_keys": frozenset({"session_id", "user"})},
])
def test_every_visible_difference_is_reported(change) -> None:
    report = compare([call("POST /r")], [call("POST /r", **change)])
    assert not report.equal and len(report.differences) == 1 and "POST /r" in report.differences[0]


def test_the_command_names_a_missing_binary(tmp_path) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "codex_trio.cli", "identity", "check", "--codex",
                             str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no codex executable at" in result.stderr and "Traceback" not in result.stderr
