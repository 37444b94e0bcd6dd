"""A Codex CLI auth.json imported into the gateway stays usable by the Codex CLI (issue 22.1): the import links
the file, and every refresh the gateway makes is written back to it (atomically, 0600, in the CLI's format).
Through the real `codex-trio` executable and the admin HTTP route, against the simulator's issuer."""

from __future__ import annotations

import stat
from pathlib import Path

import orjson

from .conftest import Cli, admin_client


def write_codex_login(path: Path, account) -> Path:
    """The file `codex login` writes (spec/upstream.md §2.6)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps({
        "auth_mode": "chatgpt", "OPENAI_API_KEY": None,
        "tokens": {"id_token": account.id_token, "access_token": account.access_token,
                   "refresh_token": account.refresh_token, "account_id": account.account_id},
        "last_refresh": "2026-01-01T00:00:00.000Z"}, option=orjson.OPT_INDENT_2))
    path.chmod(0o600)
    return path


def assert_holds_current_login(path: Path, account) -> None:
    """The file holds the issuer's current tokens for `account` (so `codex` can still refresh), in the CLI's
    shape, private."""
    data = orjson.loads(path.read_bytes())
    assert set(data) == {"auth_mode", "OPENAI_API_KEY", "tokens", "last_refresh"}
    assert (data["auth_mode"], data["OPENAI_API_KEY"]) == ("chatgpt", None)
    assert data["tokens"] == {"id_token": account.id_token, "access_token": account.access_token,
                              "refresh_token": account.refresh_token, "account_id": account.account_id}
    assert data["last_refresh"] != "2026-01-01T00:00:00.000Z"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".auth.json.")]  # no temp file left


async def test_cli_import_links_the_file_and_a_refresh_writes_it_back(tmp_path, sim):
    account = sim.accounts[0]
    auth = write_codex_login(tmp_path / "codex" / "auth.json", account)
    cli = Cli(tmp_path / "data", sim)
    imported = await cli.run("accounts", "import", str(auth))
    assert imported.returncode == 0, imported.stderr
    assert b"added 1" in imported.stdout and f"linked to {auth.resolve()}".encode() in imported.stdout
    [listed] = orjson.loads((await cli.run("accounts", "list", "--json")).stdout)["accounts"]
    assert listed["auth_json_path"] == str(auth.resolve())
    assert f"linked: {auth.resolve()}".encode() in (await cli.run("accounts", "list")).stdout
    before = account.refresh_token
    refreshed = await cli.run("accounts", "refresh")
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    assert account.refresh_token != before  # the issuer rotated it...
    assert_holds_current_login(auth, account)  # ...and the Codex CLI has the successor

    # --no-link: the account is not tied to the file, which keeps what the CLI wrote
    other = write_codex_login(tmp_path / "codex2" / "auth.json", sim.accounts[1])
    original = other.read_bytes()
    unlinked = await cli.run("accounts", "import", "--no-link", str(other))
    assert unlinked.returncode == 0 and b"linked to" not in unlinked.stdout, unlinked.stderr
    listing = orjson.loads((await cli.run("accounts", "list", "--json")).stdout)["accounts"]
    assert {a["account_id"]: a["auth_json_path"] for a in listing}[sim.accounts[1].account_id] is None
    assert (await cli.run("accounts", "refresh")).returncode == 0
    assert other.read_bytes() == original


async def test_admin_import_by_path_or_upload_links_and_refresh_writes_back(data_dir, tmp_path, sim, monkeypatch):
    by_path = write_codex_login(tmp_path / "elsewhere" / "auth.json", sim.accounts[0])
    # an uploaded copy is linked to this machine's $CODEX_HOME/auth.json when that holds the same login
    home = tmp_path / "home" / ".codex"
    uploaded = write_codex_login(home / "auth.json", sim.accounts[1])
    monkeypatch.setenv("CODEX_HOME", str(home))
    async with admin_client(data_dir, sim) as (_gateway, client):
        answer = (await client.post("/auth/accounts/import", json={"path": str(by_path)})).json()
        assert answer["added"] == 1 and answer["linked"][0]["auth_json_path"] == str(by_path.resolve()), answer
        first = answer["linked"][0]["id"]
        answer = (await client.post("/auth/accounts/import",
                                    files={"file": ("auth.json", uploaded.read_bytes())})).json()
        assert answer["added"] == 1 and answer["linked"][0]["auth_json_path"] == str(uploaded.resolve()), answer
        second = answer["linked"][0]["id"]
        assert (await client.get(f"/auth/accounts/{first}")).json()["auth_json_path"] == str(by_path.resolve())
        for account_id in (first, second):
            assert (await client.post(f"/auth/accounts/{account_id}/refresh")).json()["success"] is True
        assert_holds_current_login(by_path, sim.accounts[0])
        assert_holds_current_login(uploaded, sim.accounts[1])

        # opting out: JSON field, multipart field or query parameter
        unlinked = write_codex_login(tmp_path / "third" / "auth.json", sim.accounts[2])
        original = unlinked.read_bytes()
        answer = (await client.post("/auth/accounts/import", json={"path": str(unlinked), "link": False})).json()
        assert answer["added"] == 1 and answer["linked"] == [], answer
        answer = (await client.post("/auth/accounts/import", data={"link": "false"},
                                    files={"file": ("auth.json", uploaded.read_bytes())})).json()
        assert answer["linked"] == [], answer
        third = next(a for a in (await client.get("/auth/accounts")).json()["accounts"]
                     if a["account_id"] == sim.accounts[2].account_id)
        assert third["auth_json_path"] is None
        assert (await client.post(f"/auth/accounts/{third['id']}/refresh")).json()["success"] is True
        assert unlinked.read_bytes() == original
