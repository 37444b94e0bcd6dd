"""Providers live in the operator store: several gateways on one PostgreSQL serve a provider added through one
instance's admin API within a second (with the same `providers.key`), `store copy` carries them, and the
`providers.sqlite3` of earlier releases is imported once at start and kept as a backup."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import trio

from codex_trio.providers.secrets import SecretBox
from codex_trio.sim import running_sim
from tests.accounts_api.conftest import Cli
from tests.providers.fakes import OPENAI_KEY, running_fakes
from tests.store.test_shared_state import _stop

CHAT = {"model": "fakeai/fake-gpt", "messages": [{"role": "user", "content": "hi"}]}


async def test_a_provider_added_on_one_instance_is_served_by_another_within_a_second(tmp_path, pg_url):
    async with running_sim(accounts=1) as sim, running_fakes() as fakes:
        clis = [Cli(tmp_path / f"data{n}", sim) for n in range(2)]
        for cli in clis:
            cli.env["CODEX_TRIO__STORE__URL"] = pg_url
        body = orjson.dumps({"accounts": [{"token": a.access_token, "refreshToken": a.refresh_token}
                                          for a in sim.accounts]})
        assert (await clis[0].run("accounts", "import", "-", stdin=body)).returncode == 0
        first = await clis[0].serve()
        shutil.copy(tmp_path / "data0" / "providers.key", tmp_path / "data1" / "providers.key")
        second = await clis[1].serve()
        try:
            async with first.client() as a, second.client() as b:
                assert (await b.post("/v1/chat/completions", json=CHAT)).status_code == 404
                added = await a.post("/auth/api-keys", json={"provider": "custom", "label": "fakeai",
                                                             "baseUrl": f"{fakes.url}/v1", "apiKey": OPENAI_KEY,
                                                             "models": ["fake-gpt"]})
                assert added.status_code == 201, added.text
                started = time.monotonic()
                with trio.fail_after(5):
                    while (reply := await b.post("/v1/chat/completions", json=CHAT)).status_code != 200:
                        await trio.sleep(0.05)
                seen = time.monotonic() - started
                assert reply.json()["choices"][0]["message"]["content"] == "Hello from fake-openai!"
                provider_id = added.json()["provider"]["id"]
                assert (await a.delete(f"/auth/api-keys/{provider_id}")).status_code == 200
                started = time.monotonic()
                with trio.fail_after(5):
                    while (await b.post("/v1/chat/completions", json=CHAT)).status_code != 404:
                        await trio.sleep(0.05)
                gone = time.monotonic() - started
        finally:
            await _stop([first, second])
    assert max(seen, gone) < 1.0, (seen, gone)


def _providers(data: Path, *env: str) -> subprocess.CompletedProcess:
    import os

    environ = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_TRIO")}
    environ.update(e.split("=", 1) for e in env)
    return subprocess.run([sys.executable, "-m", "codex_trio.cli", "providers", "list", "--json", "--data-dir",
                           str(data)], capture_output=True, text=True, env=environ, timeout=60)


def _legacy_providers_file(data: Path) -> None:
    """A `providers.sqlite3` as the release before this one wrote it (its own table, keys sealed as BLOB)."""
    box = SecretBox(data / "providers.key")
    conn = sqlite3.connect(data / "providers.sqlite3")
    conn.execute("""CREATE TABLE providers (id TEXT PRIMARY KEY, label TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
        wire TEXT NOT NULL, base_url TEXT NOT NULL, sealed_keys BLOB NOT NULL, models TEXT NOT NULL,
        enabled INTEGER NOT NULL, priority INTEGER NOT NULL, proxy TEXT, created_at REAL NOT NULL,
        updated_at REAL NOT NULL)""")
    conn.execute("INSERT INTO providers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 ("p1", "legacy", "custom", "chat", "http://127.0.0.1:9/v1", box.seal(orjson.dumps([OPENAI_KEY])),
                  '["old-model"]', 1, 0, None, 1.0, 1.0))
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def test_an_old_providers_file_is_imported_once_and_store_copy_carries_providers(tmp_path, pg_url):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    _legacy_providers_file(data)
    listed = _providers(data)
    assert listed.returncode == 0, listed.stderr
    assert [(p["label"], p["models"]) for p in orjson.loads(listed.stdout)["providers"]] == [
        ("legacy", ["old-model"])]
    assert not (data / "providers.sqlite3").exists() and (data / "providers.sqlite3.imported").exists()
    assert "imported 1 provider(s)" in listed.stderr
    assert orjson.loads(_providers(data).stdout) == orjson.loads(listed.stdout)  # once: nothing imported twice

    copied = subprocess.run([sys.executable, "-m", "codex_trio.cli", "store", "copy", "--data-dir", str(data),
                             "--to", pg_url], capture_output=True, text=True, timeout=120)
    assert copied.returncode == 0, copied.stderr
    assert "operator.providers: 1 rows" in copied.stdout
    on_pg = _providers(data, f"CODEX_TRIO__STORE__URL={pg_url}")
    assert on_pg.returncode == 0, on_pg.stderr
    assert orjson.loads(on_pg.stdout) == orjson.loads(listed.stdout)


def test_store_copy_of_a_data_dir_never_opened_since_the_upgrade_carries_its_old_providers(tmp_path, pg_url):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    _legacy_providers_file(data)
    copied = subprocess.run([sys.executable, "-m", "codex_trio.cli", "store", "copy", "--data-dir", str(data),
                             "--to", pg_url], capture_output=True, text=True, timeout=120)
    assert copied.returncode == 0, copied.stderr
    assert "operator.providers: 1 rows" in copied.stdout
    on_pg = _providers(data, f"CODEX_TRIO__STORE__URL={pg_url}")
    assert [p["label"] for p in orjson.loads(on_pg.stdout)["providers"]] == ["legacy"]
