"""`/admin/proxies*` on a real gateway (HTTP against its listener) and `codex-trio proxies` as a subprocess:
add, list, change, remove; credentials never leave masked; bad input is a 400 in the OpenAI envelope."""

from __future__ import annotations

import orjson

from ..accounts_api.conftest import admin_client, assert_error
from .conftest import ProxiesCli

SECRET = "hunter2-pw"


async def test_crud_through_the_admin_api_never_shows_credentials(data_dir, sim):
    async with admin_client(data_dir, sim) as (_gateway, client):
        added = await client.post("/admin/proxies", json={"url": f"socks5://carol:{SECRET}@127.0.0.1:1080",
                                                          "label": "home", "group": "eu"})
        assert added.status_code == 201, added.text
        proxy = added.json()
        assert proxy["url"] == "socks5://c***:***@127.0.0.1:1080"
        assert (proxy["label"], proxy["group"], proxy["enabled"], proxy["health"]) == ("home", "eu", True, "unchecked")

        listing = await client.get("/admin/proxies")
        assert [p["id"] for p in listing.json()["proxies"]] == [proxy["id"]] and SECRET not in listing.text

        patched = await client.patch(f"/admin/proxies/{proxy['id']}", json={"enabled": False, "label": "off"})
        assert (patched.json()["enabled"], patched.json()["label"]) == (False, "off")
        assert (await client.get(f"/admin/proxies/{proxy['id']}")).json()["enabled"] is False

        assert_error(await client.post("/admin/proxies", json={"url": f"socks5://carol:{SECRET}@127.0.0.1:1080"}),
                     409, "already")
        other = (await client.post("/admin/proxies", json={"url": "http://127.0.0.1:3128"})).json()
        assert_error(await client.patch(f"/admin/proxies/{other['id']}",
                                        json={"url": f"socks5://carol:{SECRET}@127.0.0.1:1080"}), 409, "already")
        assert (await client.delete(f"/admin/proxies/{other['id']}")).status_code == 200
        assert_error(await client.post("/admin/proxies", json={"url": "ftp://127.0.0.1:21"}), 400, "url")
        assert_error(await client.post("/admin/proxies", json={"label": "no url"}), 400, "url")
        assert_error(await client.post("/admin/proxies", json={"url": "http://127.0.0.1:1", "colour": "red"}), 400,
                     "colour")
        assert_error(await client.patch(f"/admin/proxies/{proxy['id']}", json={"enabled": "yes"}), 400, "enabled")
        assert_error(await client.get("/admin/proxies/px-nothere"), 404, "px-nothere")

        removed = await client.delete(f"/admin/proxies/{proxy['id']}")
        assert removed.status_code == 200 and removed.json()["removed"]["id"] == proxy["id"]
        assert (await client.get("/admin/proxies")).json()["proxies"] == []


async def test_the_cli_adds_lists_and_removes_with_credentials_masked(data_dir, sim):
    cli = ProxiesCli(data_dir, sim)
    added = await cli.run("add", f"http://dave:{SECRET}@127.0.0.1:3128", "--label", "office", "--group", "us",
                          "--json")
    assert added.returncode == 0, added.stderr.decode()
    proxy = orjson.loads(added.stdout)
    assert proxy["url"] == "http://d***:***@127.0.0.1:3128" and proxy["group"] == "us"

    listed = await cli.run("list")
    assert listed.returncode == 0 and proxy["id"] in listed.stdout.decode()
    assert SECRET.encode() not in listed.stdout + listed.stderr
    assert SECRET.encode() not in b"".join(p.read_bytes() for p in data_dir.glob("accounts.sqlite3*"))

    refused = await cli.run("add", "gopher://127.0.0.1:70")
    assert refused.returncode == 1 and b"url" in refused.stderr and b"Traceback" not in refused.stderr

    removed = await cli.run("remove", proxy["id"])
    assert removed.returncode == 0 and proxy["id"] in removed.stdout.decode()
    assert b"No proxies yet" in (await cli.run("list")).stdout


async def test_the_cli_checks_proxies_and_assigns_accounts(data_dir, sim):
    from ..accounts_api.conftest import Cli
    from .local_proxies import local_proxy

    imported = await Cli(data_dir, sim).run("accounts", "import", "-",
                                            stdin=f"{sim.accounts[0].refresh_token}\n".encode())
    assert imported.returncode == 0, imported.stderr.decode()
    cli = ProxiesCli(data_dir, sim)
    async with local_proxy("socks5", "127.0.0.5") as proxy:
        proxy_id = orjson.loads((await cli.run("add", proxy.url, "--json")).stdout)["id"]
        checked = await cli.run("check")
        assert checked.returncode == 0, checked.stderr.decode()
        assert "healthy" in checked.stdout.decode() and "exit_ip=127.0.0.5" in checked.stdout.decode()

        account_id = orjson.loads((await Cli(data_dir, sim).run("accounts", "list", "--json")).stdout)[
            "accounts"][0]["id"]
        assigned = await cli.run("assign", "auto", account_id)
        assert assigned.returncode == 0 and f"{account_id}  auto  → {proxy_id}" in assigned.stdout.decode()
        unknown = await cli.run("assign", "direct", "acct-nope")
        assert unknown.returncode == 1 and b"acct-nope" in unknown.stderr

        proxy.down = True
        failing = await cli.run("check", proxy_id)
        assert failing.returncode == 1 and "last error" in failing.stdout.decode()


async def test_bulk_and_rule_based_assignment(data_dir, sim):
    async with admin_client(data_dir, sim) as (_gateway, client):
        ids = []
        for account, label in zip(sim.accounts, ("team-a", "team-b", "solo")):
            added = await client.post("/auth/accounts", json={"token": account.access_token, "label": label})
            ids.append(added.json()["account"]["id"])
        proxy = (await client.post("/admin/proxies", json={"url": "socks5h://u:p@127.0.0.1:1080"})).json()

        by_rule = await client.post("/admin/proxies/assign", json={"match": {"label": "TEAM-*"}, "proxy": "auto"})
        assert by_rule.status_code == 200, by_rule.text
        assert sorted(a["account_id"] for a in by_rule.json()["assignments"]) == sorted(ids[:2])
        assert {a["proxy_id"] for a in by_rule.json()["assignments"]} == {proxy["id"]}

        pinned = await client.post("/admin/proxies/assign", json={"account_id": ids[2], "proxy": proxy["id"]})
        assert pinned.json()["assignments"][0]["mode"] == "specific"
        assert (await client.get(f"/admin/proxies/{proxy['id']}")).json()["accounts"] == 3

        bulk = await client.post("/admin/proxies/assign", json={"account_ids": ids, "proxy": "direct"})
        assert bulk.json()["assigned"] == 3
        assert {r["mode"] for r in (await client.get("/admin/proxies/assignments")).json()["assignments"]} == {"direct"}
        assert (await client.get(f"/auth/accounts/{ids[0]}")).json()["proxy"] == "direct"

        # through the account's own PATCH too; a URL with credentials is shown masked
        patched = await client.patch(f"/auth/accounts/{ids[2]}", json={"proxy": "http://me:secret@127.0.0.1:3128"})
        assert patched.json()["proxy"] == "http://m***:***@127.0.0.1:3128"

        assert_error(await client.post("/admin/proxies/assign", json={"account_ids": [ids[0], "acct-nope"],
                                                                      "proxy": "auto"}), 404, "acct-nope")
        assert (await client.get(f"/auth/accounts/{ids[0]}")).json()["proxy"] == "direct"  # nothing changed
        assert_error(await client.post("/admin/proxies/assign", json={"match": {"label": "nobody*"},
                                                                      "proxy": "auto"}), 404, "no account matches")
        assert_error(await client.post("/admin/proxies/assign", json={"match": {"colour": "red"}, "proxy": "auto"}),
                     400, "match")
        assert_error(await client.post("/admin/proxies/assign", json={"account_ids": ids, "proxy": "px-missing"}),
                     404, "px-missing")
        assert_error(await client.post("/admin/proxies/assign", json={"account_ids": ids, "proxy": "ftp://x"}),
                     400, "proxy")
        assert_error(await client.post("/admin/proxies/assign", json={"account_ids": ids}), 400, "proxy")
        assert_error(await client.post("/admin/proxies/assign", json={"account_ids": [], "proxy": "auto"}), 400,
                     "account_ids")


async def test_export_and_import_carry_the_pool_to_another_data_dir(tmp_path, sim):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with admin_client(tmp_path / "a", sim) as (_gateway, client):
        await client.post("/admin/proxies", json={"url": f"socks5h://eve:{SECRET}@127.0.0.1:1080", "group": "eu"})
        await client.post("/admin/proxies", json={"url": "http://127.0.0.1:3128", "enabled": False, "label": "x"})
        exported = await client.get("/admin/proxies/export")
        assert exported.status_code == 200 and exported.headers["cache-control"] == "no-store"
        assert SECRET in exported.text  # restorable: the export is the one place credentials are given out
    cli = ProxiesCli(tmp_path / "b", sim)
    (tmp_path / "pool.yaml").write_text(exported.text)
    imported = await cli.run("import", str(tmp_path / "pool.yaml"))
    assert imported.returncode == 0 and "2 added, 0 updated" in imported.stdout.decode(), imported.stderr
    again = await cli.run("import", "-", stdin=b"- http://127.0.0.1:3128\n- url: socks5://127.0.0.1:9050\n")
    assert "1 added, 1 updated" in again.stdout.decode()
    written = await cli.run("export", "-o", str(tmp_path / "out.yaml"))
    assert written.returncode == 0 and (tmp_path / "out.yaml").stat().st_mode & 0o777 == 0o600
    text = (tmp_path / "out.yaml").read_text()
    assert f"socks5h://eve:{SECRET}@127.0.0.1:1080" in text and "group: eu" in text and "enabled: false" in text
    bad = await cli.run("import", "-", stdin=b"- http://127.0.0.1:1\n- ftp://nope\n")
    assert bad.returncode == 1 and b"proxy #2" in bad.stderr
    assert text.count("url:") == 3 and (await cli.run("export")).stdout.decode().count("url:") == 3  # nothing added
    async with admin_client(tmp_path / "b", sim) as (_gateway, client):
        assert_error(await client.post("/admin/proxies/import", content=b"proxies: {not: a list}"), 400, "list")
        assert_error(await client.post("/admin/proxies/import", content=b"- [unclosed"), 400, "YAML")


async def test_the_reference_gateways_api_proxies_paths_work_too(data_dir, sim):
    """Scripts written for the reference gateway's `/api/proxies*` endpoints keep working: its paths and verbs
    (PUT to update, check-all, assign-bulk, assign-rule) reach the same pool."""
    async with admin_client(data_dir, sim) as (_gateway, client):
        ids = []
        for account, label in zip(sim.accounts[:2], ("team-a", "solo")):
            added = await client.post("/auth/accounts", json={"token": account.access_token, "label": label})
            ids.append(added.json()["account"]["id"])
        proxy = (await client.post("/api/proxies", json={"url": f"http://erin:{SECRET}@127.0.0.1:9"})).json()
        assert proxy["url"] == "http://e***:***@127.0.0.1:9"
        assert [p["id"] for p in (await client.get("/api/proxies")).json()["proxies"]] == [proxy["id"]]
        updated = await client.put(f"/api/proxies/{proxy['id']}", json={"label": "office"})
        assert updated.status_code == 200 and updated.json()["label"] == "office"

        bulk = await client.post("/api/proxies/assign-bulk", json={"account_ids": ids, "proxy": proxy["id"]})
        assert bulk.status_code == 200 and bulk.json()["assigned"] == 2
        rule = await client.post("/api/proxies/assign-rule", json={"match": {"label": "team-*"}, "proxy": "direct"})
        assert [a["account_id"] for a in rule.json()["assignments"]] == [ids[0]]
        modes = {a["account_id"]: a["mode"] for a in (await client.get("/api/proxies/assignments")).json()["assignments"]}
        assert modes == {ids[0]: "direct", ids[1]: "specific"}

        checked = await client.post(f"/api/proxies/{proxy['id']}/check")  # port 9: nothing listens there
        assert checked.status_code == 200 and checked.json()["failures"] == 1 and checked.json()["last_error"]
        assert (await client.post("/api/proxies/check-all")).status_code == 200
        exported = await client.get("/api/proxies/export")
        assert exported.status_code == 200 and SECRET in exported.text  # the export carries the credentials
        assert (await client.post("/api/proxies/import", content=exported.content)).status_code == 200
        assert (await client.delete(f"/api/proxies/{proxy['id']}")).status_code == 200
        assert (await client.get("/api/proxies")).json()["proxies"] == []
