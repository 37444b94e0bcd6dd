"""`codex-trio login` and `codex-trio accounts …` as subprocesses on a data dir, against the simulator."""

from __future__ import annotations

import re

import orjson

from .conftest import Cli, browser


async def listed(cli: Cli) -> list[dict]:
    result = await cli.run("accounts", "list", "--json")
    assert result.returncode == 0, result.stderr
    return orjson.loads(result.stdout)["accounts"]


async def test_login_browser_paste_and_device(tmp_path, sim):
    cli = Cli(tmp_path, sim)
    # browser: the CLI prints the URL and serves the callback
    proc = await cli.start("login", "--callback-port", "0", "--label", "laptop")
    url = re.search(rb"(https://\S+/oauth/authorize\?\S+)", await proc.read_until(b"/oauth/authorize")).group(1)
    async with browser(sim) as user:
        page = await user.get(url.decode(), follow_redirects=True)
    assert page.status_code == 200
    code, out, err = await proc.finish()
    assert code == 0, err
    assert f"Logged in as {sim.accounts[0].email}".encode() in out and b"added" in out
    # paste: the CLI reads the callback URL from stdin
    sim.login_as(sim.accounts[1].account_id)
    proc = await cli.start("login", "--paste")
    url = re.search(rb"(https://\S+/oauth/authorize\?\S+)", await proc.read_until(b"/oauth/authorize")).group(1)
    async with browser(sim) as user:
        callback = (await user.get(url.decode())).headers["location"]
    await proc.read_until(b"paste it here")
    await proc.proc.stdin.send_all(callback.encode() + b"\n")
    code, out, err = await proc.finish()
    assert code == 0, err
    assert sim.accounts[1].email.encode() in out
    # device: the CLI prints the code and polls
    proc = await cli.start("login", "--device")
    user_code = re.search(rb"enter this code:\s+(\S+)", await proc.read_until(b"enter this code:\n\n")).group(1)
    assert sim.approve_device(user_code.decode(), sim.accounts[2].account_id)
    code, out, err = await proc.finish()
    assert code == 0, err
    accounts = await listed(cli)
    assert sorted(a["account_id"] for a in accounts) == sorted(a.account_id for a in sim.accounts)
    assert {a["label"] for a in accounts} == {"laptop", None}
    # a bad paste fails with a message, not a traceback
    result = await cli.run("login", "--paste", stdin=b"http://127.0.0.1:1455/auth/callback?code=x&state=nope\n")
    assert result.returncode == 1 and b"state does not match" in result.stderr and b"Traceback" not in result.stderr


async def test_export_import_remove_refresh(tmp_path, sim):
    source, target = Cli(tmp_path / "a", sim), Cli(tmp_path / "b", sim)
    tokens = "".join(a.refresh_token + "\n" for a in sim.accounts[:2]).encode()
    imported = await source.run("accounts", "import", "-", stdin=tokens)
    assert imported.returncode == 0, imported.stderr
    assert b"added 2, updated 0, failed 0" in imported.stdout and b"importing 2/2" in imported.stderr
    backup = tmp_path / "backup.json"
    exported = await source.run("accounts", "export", "-o", str(backup))
    assert exported.returncode == 0, exported.stderr
    assert backup.stat().st_mode & 0o777 == 0o600
    restored = await target.run("accounts", "import", str(backup))
    assert restored.returncode == 0 and b"added 2" in restored.stdout, restored.stderr
    accounts = await listed(target)
    assert sorted(a["account_id"] for a in accounts) == sorted(a.account_id for a in sim.accounts[:2])
    assert sorted(a["id"] for a in accounts) == sorted(a["id"] for a in await listed(source))  # ids kept
    # usable in the new data dir: refresh every account (with progress) and probe the quota
    refreshed = await target.run("accounts", "refresh")
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    assert b"refreshing 1/2" in refreshed.stderr and b"refreshing 2/2" in refreshed.stderr
    assert refreshed.stdout.count(b": ok (quota: p ") == 2
    minimal = await target.run("accounts", "export", "--format", "minimal")
    assert {a["refreshToken"] for a in orjson.loads(minimal.stdout)["accounts"]} == {
        a.refresh_token for a in sim.accounts[:2]}  # the rotated tokens
    removed = await target.run("accounts", "remove", accounts[0]["id"], "nope")
    assert removed.returncode == 1 and b"no account with id 'nope'" in removed.stderr
    assert [a["id"] for a in await listed(target)] == [accounts[1]["id"]]
    missing = await target.run("accounts", "import", str(tmp_path / "missing.json"))
    assert missing.returncode == 1 and b"cannot read" in missing.stderr


async def test_doctor_reports_missing_accounts(tmp_path, sim):
    from codex_trio.commands.accounts import accounts_present_check
    from codex_trio.config.store import ConfigStore

    cli = Cli(tmp_path, sim)
    ok, what, fix = accounts_present_check(ConfigStore(tmp_path, environ={}))
    assert not ok and "no account store" in what and "codex-trio login" in fix
    await cli.run("accounts", "import", "-", stdin=sim.accounts[0].refresh_token.encode())
    ok, what, _ = accounts_present_check(ConfigStore(tmp_path, environ={}))
    assert ok and what == "1 enabled account(s) of 1"


async def test_list_fresh_shows_every_account_when_one_usage_check_fails(tmp_path, sim):
    cli = Cli(tmp_path, sim)
    unreachable = "socks5://127.0.0.1:9"  # nothing listens on the discard port: this account's check fails
    export = {"accounts": [{"token": sim.accounts[0].access_token, "refreshToken": sim.accounts[0].refresh_token},
                           {"token": sim.accounts[1].access_token, "refreshToken": sim.accounts[1].refresh_token,
                            "proxy": unreachable, "label": "behind-a-dead-proxy"}]}
    assert (await cli.run("accounts", "import", "-", stdin=orjson.dumps(export))).returncode == 0
    result = await cli.run("accounts", "list", "--fresh")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 2, result.stdout
    failed = next(line for line in lines if "behind-a-dead-proxy" in line)
    working = next(line for line in lines if "behind-a-dead-proxy" not in line)
    assert "quota: CHECK FAILED (" in failed and "usage check" in failed
    assert "quota: p " in working
    assert b"the usage check failed for" in result.stderr
    listing = orjson.loads((await cli.run("accounts", "list", "--fresh", "--json")).stdout)["accounts"]
    assert {a["label"]: bool(a.get("quota_error")) for a in listing} == {None: False, "behind-a-dead-proxy": True}
