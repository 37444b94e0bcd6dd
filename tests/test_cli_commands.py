"""Documented commands that no other test ran through the executable: `config defaults`, `accounts list --quota`
and `--fresh`."""

from __future__ import annotations

from pathlib import Path

from tests.accounts_api.conftest import Cli, sim  # noqa: F401 - the simulator fixture
from tests.test_cli_errors import codex_trio

REPO = Path(__file__).resolve().parents[1]


def test_config_defaults_prints_the_shipped_default_yaml():
    result = codex_trio("config", "defaults")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (REPO / "config" / "default.yaml").read_text()


async def test_accounts_list_shows_the_cached_or_a_fresh_quota(tmp_path, sim):  # noqa: F811
    cli = Cli(tmp_path / "data", sim)
    imported = await cli.run("accounts", "import", "-", stdin=sim.accounts[0].refresh_token.encode())
    assert imported.returncode == 0, imported.stderr
    never_checked = await cli.run("accounts", "list", "--quota")
    assert never_checked.returncode == 0 and b"quota: -" in never_checked.stdout
    sim.account(sim.accounts[0].account_id).quota.record("gpt-5.5", 250_000, sim.clock.now())
    fresh = await cli.run("accounts", "list", "--fresh")
    assert fresh.returncode == 0, fresh.stderr
    assert b"quota: p 25%, s 5%" in fresh.stdout
    cached = await cli.run("accounts", "list", "--quota")  # what --fresh learnt was kept
    assert b"quota: p 25%, s 5%" in cached.stdout


def test_config_check_says_which_file_settings_the_environment_overrides(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "local.yaml").write_text("ollama:\n  port: 11500\nmodel:\n  default: gpt-5.4\n")
    result = codex_trio("config", "check", "--data-dir", str(data_dir), env={"OLLAMA_BRIDGE_PORT": "11600"})
    assert result.returncode == 0, result.stderr
    assert f"note: ollama.port in {data_dir / 'local.yaml'} does not apply: the environment variable " \
           "OLLAMA_BRIDGE_PORT overrides it" in result.stderr
    assert "model.default" not in result.stderr
