"""Configuration: precedence, round-trip writes, hot reload, and errors that name key, file and line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from codex_trio.config.defaults import render_defaults
from codex_trio.config.loader import PACKAGED_DEFAULTS, ConfigError, load
from codex_trio.config.schema import Settings
from codex_trio.config.store import ConfigStore

REPO = Path(__file__).resolve().parents[2]


def test_default_yaml_is_generated_from_the_schema_and_documents_every_setting():
    text = (REPO / "config" / "default.yaml").read_text()
    assert text == render_defaults(), "config/default.yaml is stale: run `codex-trio config defaults`"
    assert PACKAGED_DEFAULTS.read_text() == text
    lines = text.splitlines()
    for section, section_field in Settings.model_fields.items():
        for key in section_field.annotation.model_fields:
            index = next(i for i, line in enumerate(lines) if line.startswith(f"  {key}:")
                         and any(l == f"{section}:" for l in lines[:i]))
            assert lines[index - 1].strip().startswith("#"), f"{section}.{key} has no comment"
    assert load(Path("/nonexistent-dir"), environ={}).settings == Settings()


def test_precedence_defaults_then_base_then_local_then_environment(tmp_path: Path):
    base = tmp_path / "base.yaml"
    base.write_text("server:\n  port: 9001\nmodel:\n  default: from-base\n  aliases:\n    mine: gpt-5.4\n")
    (tmp_path / "local.yaml").write_text("model:\n  default: from-local\n")
    env = {"PORT": "9100", "OLLAMA_BRIDGE_ENABLED": "true", "OLLAMA_BRIDGE_PORT": "11999",
           "HTTPS_PROXY": "socks5://127.0.0.1:1080", "CODEX_PLATFORM": "Darwin", "CODEX_ARCH": "arm64",
           "OLLAMA_BRIDGE_HOST": "127.0.0.2", "OLLAMA_BRIDGE_VERSION": "0.20.0",
           "OLLAMA_BRIDGE_DISABLE_VISION": "1", "CODEX_TRIO__QUOTA__SKIP_EXHAUSTED": "false"}
    loaded = load(tmp_path, base, env)
    s = loaded.settings
    assert s.server.port == 9100 and loaded.source_of(("server", "port")) == "environment variable PORT"
    assert s.model.default == "from-local" and loaded.source_of(("model", "default")).endswith("local.yaml:2")
    assert s.model.aliases["mine"] == "gpt-5.4"
    assert s.server.host == "127.0.0.1"  # schema default: no layer sets it
    assert (s.ollama.enabled, s.ollama.port, s.ollama.host, s.ollama.version, s.ollama.disable_vision) == (
        True, 11999, "127.0.0.2", "0.20.0", True)
    assert s.tls.proxy_url == "socks5://127.0.0.1:1080"
    assert (s.client.platform, s.client.arch) == ("Darwin", "arm64")
    assert s.quota.skip_exhausted is False
    # local.yaml adds an alias without losing the shipped claude-* ones
    (tmp_path / "local.yaml").write_text("model:\n  aliases:\n    extra: gpt-5.5\n")
    aliases = load(tmp_path, None, {}).settings.model.aliases
    assert aliases["extra"] == "gpt-5.5" and aliases["claude-sonnet-4-6"] == "gpt-5.5"


def test_round_trip_write_keeps_comments_order_and_formatting(tmp_path: Path):
    local = tmp_path / "local.yaml"
    original = ("# my gateway\n"
                "server:\n"
                "  port: 8081   # moved off 8080\n"
                "  proxy_api_key: secret-key-123\n"
                "# models I use\n"
                "model:\n"
                "  default_tools:\n"
                "    - web_search\n"
                "  aliases:\n"
                "    fast: gpt-5.4-mini  # cheap\n")
    local.write_text(original)
    store = ConfigStore(tmp_path, environ={})
    change = store.update({"model": {"aliases": {"big": "gpt-5.5"}}, "ollama": {"enabled": True}})
    text = local.read_text()
    assert text.startswith(original.rstrip("\n").rsplit("\n", 0)[0][:20])
    for kept in ("# my gateway", "port: 8081   # moved off 8080", "# models I use", "    - web_search",
                 "fast: gpt-5.4-mini  # cheap"):
        assert kept in text
    assert text.index("fast:") < text.index("big: gpt-5.5") < text.index("ollama:")
    assert store.settings.ollama.enabled and store.settings.model.aliases["big"] == "gpt-5.5"
    assert change.sections() == {"model", "ollama"}
    assert os.stat(local).st_mode & 0o777 == 0o600


def test_an_invalid_update_is_refused_and_the_file_left_alone(tmp_path: Path):
    local = tmp_path / "local.yaml"
    local.write_text("server:\n  port: 8081\n")
    store = ConfigStore(tmp_path, environ={})
    with pytest.raises(ConfigError, match=r"server\.port"):
        store.update({"server": {"port": "not-a-port"}})
    assert local.read_text() == "server:\n  port: 8081\n"
    assert store.settings.server.port == 8081


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("server:\n  host: 127.0.0.1\n  port: 99999\n", r"server\.port: .*65535.*local\.yaml:3"),
        ("model:\n  default: x\n  reasoning: high\n", r"model\.reasoning: unknown setting.*local\.yaml:3"),
        ("auth:\n  rotation_strategy: random\n", r"auth\.rotation_strategy: .*least_used.*local\.yaml:2"),
        ("server: [1, 2\n", r"local\.yaml:\d+: not valid YAML"),
    ],
)
def test_invalid_config_names_key_file_and_line(tmp_path: Path, text: str, expected: str):
    (tmp_path / "local.yaml").write_text(text)
    with pytest.raises(ConfigError, match=expected):
        load(tmp_path, None, {})


def test_invalid_environment_value_names_the_variable(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"server\.port: .* environment variable PORT"):
        load(tmp_path, None, {"PORT": "eighty"})


def test_cli_reports_invalid_config_without_traceback_and_fails(tmp_path: Path):
    (tmp_path / "local.yaml").write_text("server:\n  port: -1\n")
    env = {**os.environ, "CODEX_TRIO_DATA_DIR": str(tmp_path)}
    for argv in (["config", "check"], ["run"]):
        done = subprocess.run([sys.executable, "-m", "codex_trio.cli", *argv], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2
        assert "server.port" in done.stderr and f"{tmp_path}/local.yaml:2" in done.stderr
        assert "Traceback" not in done.stderr


def test_config_check_masks_the_api_key(tmp_path: Path):
    (tmp_path / "local.yaml").write_text("server:\n  proxy_api_key: ct-abcdefghijklmnopqrstuvwxyz\n")
    done = subprocess.run([sys.executable, "-m", "codex_trio.cli", "config", "check"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "CODEX_TRIO_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "abcdefghijklmnop" not in done.stdout and '"proxy_api_key": "ct-ab' in done.stdout


async def test_hot_reload_applies_local_yaml_edits_and_ignores_broken_ones(tmp_path: Path):
    local = tmp_path / "local.yaml"
    local.write_text("model:\n  default: first\n")
    store = ConfigStore(tmp_path, environ={})
    seen = []
    store.subscribe(lambda change: seen.append(change.new.model.default))
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: store.watch(interval=0.05, task_status=task_status))
        local.write_text("model:\n  default: second\n")
        with trio.fail_after(5):
            while store.settings.model.default != "second":
                await trio.sleep(0.02)
        local.write_text("model:\n  default: [broken\n")
        await trio.sleep(0.3)
        assert store.settings.model.default == "second"  # a broken edit keeps the last good settings
        nursery.cancel_scope.cancel()
    assert seen == ["second"]


def test_first_start_generates_a_private_key_once(tmp_path: Path):
    data = tmp_path / "fresh"
    store = ConfigStore(data, environ={})
    key = store.ensure_first_start()
    assert key and len(key) >= 40
    assert os.stat(data).st_mode & 0o777 == 0o700
    assert os.stat(data / "local.yaml").st_mode & 0o777 == 0o600
    assert key in (data / "local.yaml").read_text()
    again = ConfigStore(data, environ={})
    assert again.ensure_first_start() is None and again.settings.server.proxy_api_key == key
