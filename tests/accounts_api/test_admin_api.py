"""The /auth/* admin API against a real gateway and the simulator's issuer and backend."""

from __future__ import annotations

import httpx
import orjson

from .conftest import admin_client, assert_error, browser, wait_for_login


async def test_every_route_requires_the_gateway_key(data_dir, sim):
    async with admin_client(data_dir, sim) as (_gateway, client):
        for method, path in (("GET", "/auth/accounts"), ("POST", "/auth/login"), ("GET", "/auth/accounts/export"),
                             ("GET", "/auth/quota/warnings"), ("DELETE", "/auth/accounts/x")):
            response = await client.request(method, path, headers={"authorization": "Bearer wrong"})
            assert_error(response, 401, "Invalid API key")


async def test_browser_login_finishes_on_the_local_callback_server(data_dir, sim):
    async with admin_client(data_dir, sim) as (_gateway, client):
        started = await client.post("/auth/login", json={"label": "work"})
        assert started.status_code == 201
        login = started.json()
        assert login["status"] == "pending" and login["callback_server"] is True
        assert login["url"].startswith(sim.urls.auth_base + "/oauth/authorize?")
        async with browser(sim) as user:
            page = await user.get(login["url"], follow_redirects=True)
        assert page.status_code == 200 and "Signed in" in page.text
        done = await wait_for_login(client, login["login_id"])
        assert done["status"] == "succeeded", done
        assert done["account"]["account_id"] == sim.accounts[0].account_id and done["account"]["label"] == "work"
        listing = await client.get("/auth/accounts")
        assert [a["account_id"] for a in listing.json()["accounts"]] == [sim.accounts[0].account_id]
        stored = (await client.get("/auth/accounts/export")).json()["accounts"][0]["tokens"]
        for secret in stored.values():
            assert secret not in listing.text and secret not in str(done)


async def test_paste_login_completes_with_the_pasted_callback_url(data_dir, sim):
    sim.login_as(sim.accounts[1].account_id)
    async with admin_client(data_dir, sim) as (gateway, client):
        gateway.services.logins.callback_ports = ()  # no local server: only the paste can finish it
        login = (await client.post("/auth/login", json={"mode": "paste"})).json()
        assert login["callback_server"] is False
        assert login["redirect_uri"] == "http://127.0.0.1:1455/auth/callback"
        async with browser(sim) as user:
            callback = (await user.get(login["url"])).headers["location"]
        wrong_state = callback.replace("state=", "state=x")
        assert_error(await client.post(f"/auth/login/{login['login_id']}/callback", json={"url": wrong_state}),
                     400, "state does not match")
        assert (await client.get(f"/auth/login/{login['login_id']}")).json()["status"] == "pending"
        done = await client.post(f"/auth/login/{login['login_id']}/callback", json={"url": callback})
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "succeeded"
        assert done.json()["account"]["account_id"] == sim.accounts[1].account_id
        assert_error(await client.post(f"/auth/login/{login['login_id']}/callback", json={"url": callback}),
                     409, "already succeeded")
        assert_error(await client.post(f"/auth/login/{login['login_id']}/callback", content=b"{"), 400, "JSON")
        assert_error(await client.get("/auth/login/nope"), 404, "no login")


async def test_device_login_polls_until_the_code_is_approved(data_dir, sim):
    async with admin_client(data_dir, sim) as (_gateway, client):
        started = await client.post("/auth/login/device", json={"label": "tv"})
        assert started.status_code == 201, started.text
        login = started.json()
        assert login["kind"] == "device" and login["user_code"]
        assert login["verification_url"] == sim.urls.auth_base + "/codex/device"
        assert sim.approve_device(login["user_code"], sim.accounts[2].account_id)
        done = await wait_for_login(client, login["login_id"])
        assert done["status"] == "succeeded", done
        assert done["account"]["account_id"] == sim.accounts[2].account_id and done["account"]["label"] == "tv"


async def test_a_login_can_be_cancelled(data_dir, sim):
    async with admin_client(data_dir, sim) as (_gateway, client):
        login = (await client.post("/auth/login", json={"mode": "device"})).json()
        cancelled = await client.delete(f"/auth/login/{login['login_id']}")
        assert cancelled.json()["status"] == "cancelled"
        sim.approve_device(login["user_code"])
        assert (await client.get(f"/auth/login/{login['login_id']}")).json()["status"] == "cancelled"
        assert (await client.get("/auth/accounts")).json()["accounts"] == []
        assert_error(await client.post("/auth/login", json={"mode": "fax"}), 400, "`mode`")


async def test_adding_by_token_or_refresh_token_and_bad_input(data_dir, sim):
    async with admin_client(data_dir, sim) as (_gateway, client):
        by_token = await client.post("/auth/accounts", json={"token": sim.accounts[0].access_token, "label": "a"})
        assert by_token.status_code == 201 and by_token.json()["account"]["label"] == "a"
        again = await client.post("/auth/accounts", json={"token": sim.accounts[0].access_token})
        assert again.status_code == 200 and again.json()["created"] is False
        spent = sim.accounts[1].refresh_token
        by_refresh = await client.post("/auth/accounts", json={"refreshToken": spent})
        assert by_refresh.status_code == 201, by_refresh.text
        assert by_refresh.json()["account"]["account_id"] == sim.accounts[1].account_id
        assert len((await client.get("/auth/accounts")).json()["accounts"]) == 2
        assert_error(await client.post("/auth/accounts", json={}), 400, "refreshToken")
        assert_error(await client.post("/auth/accounts", json={"token": "not-a-jwt"}), 400, "")
        assert_error(await client.post("/auth/accounts", json={"refreshToken": spent}), 400, "rejected")  # single-use: it was redeemed above
        assert_error(await client.post("/auth/accounts", content=b"[1]"), 400, "JSON object")
        assert_error(await client.get("/auth/accounts?quota=maybe"), 400, "quota")


async def add_two(client: httpx.AsyncClient, sim) -> list[str]:
    ids = []
    for account in sim.accounts[:2]:
        response = await client.post("/auth/accounts", json={"token": account.access_token,
                                                             "refreshToken": account.refresh_token})
        ids.append(response.json()["account"]["id"])
    return ids


async def test_export_then_import_into_another_gateway(tmp_path, sim):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with admin_client(tmp_path / "a", sim) as (_gateway, client):
        ids = await add_two(client, sim)
        await client.patch(f"/auth/accounts/{ids[0]}", json={"label": "first", "proxy": None})
        full = await client.get("/auth/accounts/export")
        assert full.status_code == 200 and "attachment" in full.headers["content-disposition"]
        assert full.json()["accounts"][0]["tokens"]["refresh_token"] in (sim.accounts[0].refresh_token,
                                                                          sim.accounts[1].refresh_token)
        minimal = (await client.get("/auth/accounts/export?format=minimal")).json()
        assert sorted(minimal["accounts"], key=lambda a: a["label"] or "") == sorted(
            [{"refreshToken": sim.accounts[0].refresh_token, "label": "first"},
             {"refreshToken": sim.accounts[1].refresh_token, "label": None}], key=lambda a: a["label"] or "")
        tokens = await client.get("/auth/accounts/export?format=tokens")
        assert tokens.headers["content-type"].startswith("text/plain")
        assert sorted(tokens.text.split()) == sorted(a.refresh_token for a in sim.accounts[:2])
        assert_error(await client.get("/auth/accounts/export?format=xml"), 400, "format")
    async with admin_client(tmp_path / "b", sim) as (_gateway, client):
        imported = await client.post("/auth/accounts/import", content=full.content)
        assert imported.json() == {"added": 2, "updated": 0, "failed": 0, "errors": [], "linked": []}
        listing = (await client.get("/auth/accounts")).json()["accounts"]
        assert sorted(a["account_id"] for a in listing) == sorted(a.account_id for a in sim.accounts[:2])
        assert sorted(a["id"] for a in listing) == sorted(ids)  # the ids the export carried, free here
        assert {a["label"] for a in listing} == {"first", None}
        # usable: the imported refresh token is redeemed and the backend answers the quota probe
        first = next(a for a in listing if a["label"] == "first")
        refreshed = (await client.post(f"/auth/accounts/{first['id']}/refresh")).json()
        assert refreshed["success"] is True, refreshed
        assert refreshed["quota"]["primary"] is not None
        # an auth.json upload (multipart) and the reference format
        auth_json = ('{"tokens": {"access_token": "%s", "refresh_token": "%s", "id_token": "%s"}}'
                     % (sim.accounts[2].access_token, sim.accounts[2].refresh_token, sim.accounts[2].id_token))
        uploaded = await client.post("/auth/accounts/import", files={"file": ("auth.json", auth_json)})
        assert uploaded.json()["added"] == 1, uploaded.text
        reference = await client.post("/auth/accounts/import", json={"accounts": [
            {"token": sim.accounts[2].access_token}, {"label": "nothing"}]})
        assert reference.json()["updated"] == 1 and reference.json()["failed"] == 1
        assert_error(await client.post("/auth/accounts/import", content=b"{nope"), 400, "cannot import")


async def test_batch_status_patch_and_delete(data_dir, sim):
    async with admin_client(data_dir, sim) as (_gateway, client):
        ids = await add_two(client, sim)
        disabled = await client.post("/auth/accounts/batch-status", json={"ids": ids, "status": "disabled"})
        assert disabled.json()["updated"] == 2
        assert {a["enabled"] for a in (await client.get("/auth/accounts")).json()["accounts"]} == {False}
        await client.post("/auth/accounts/batch-status", json={"ids": ids[:1], "enabled": True})
        assert (await client.get(f"/auth/accounts/{ids[0]}")).json()["enabled"] is True
        assert_error(await client.post("/auth/accounts/batch-status", json={"ids": ids, "status": "on"}),
                     400, "status")
        assert_error(await client.post("/auth/accounts/batch-delete", json={"ids": "all"}), 400, "ids")
        patched = await client.patch(f"/auth/accounts/{ids[1]}", json={"label": "b", "enabled": True,
                                                                       "proxy": "socks5://127.0.0.1:9"})
        assert patched.status_code == 200
        assert (patched.json()["label"], patched.json()["enabled"], patched.json()["proxy"]) == (
            "b", True, "socks5://127.0.0.1:9")
        assert_error(await client.patch(f"/auth/accounts/{ids[1]}", json={"proxy": "ftp://x"}), 400, "proxy")
        assert_error(await client.patch(f"/auth/accounts/{ids[1]}", json={"plan": "pro"}), 400, "unknown field")
        assert_error(await client.patch(f"/auth/accounts/{ids[1]}", json={"enabled": "yes"}), 400, "enabled")
        assert_error(await client.patch("/auth/accounts/nope", json={"label": "x"}), 404, "no account")
        deleted = await client.post("/auth/accounts/batch-delete", json={"ids": ids})
        assert deleted.json()["deleted"] == 2
        assert (await client.get("/auth/accounts")).json()["accounts"] == []
        assert_error(await client.delete(f"/auth/accounts/{ids[0]}"), 404, "no account")


async def test_refresh_quota_health_check_and_warnings(data_dir, sim):
    async with admin_client(data_dir, sim) as (_gateway, client):
        ids = await add_two(client, sim)
        before = (await client.get("/auth/accounts/export")).json()
        refreshed = (await client.post(f"/auth/accounts/{ids[0]}/refresh")).json()
        assert refreshed["success"] is True
        after = (await client.get("/auth/accounts/export")).json()
        token = {a["id"]: a["tokens"]["refresh_token"] for a in after["accounts"]}
        assert token[ids[0]] != {a["id"]: a["tokens"]["refresh_token"] for a in before["accounts"]}[ids[0]]
        sim.exhaust(sim.accounts[1].account_id)
        quota = (await client.get(f"/auth/accounts/{ids[1]}/quota")).json()
        assert quota["quota"]["limit_reached"] is True or quota["quota"]["primary"]["used_percent"] >= 100
        listing = (await client.get("/auth/accounts?quota=true")).json()["accounts"]
        assert all("quota" in a for a in listing)
        health = (await client.post("/auth/accounts/health-check")).json()["results"]
        assert sorted(r["id"] for r in health) == sorted(ids) and all(r["ok"] for r in health)
        warnings = await client.get("/auth/quota/warnings")
        assert warnings.status_code == 200 and warnings.json()["thresholds"] == [80, 95]
        assert_error(await client.get("/auth/accounts/nope/quota"), 404, "no account")
        assert_error(await client.post("/auth/accounts/nope/refresh"), 404, "no account")


async def test_cookies(data_dir, sim):
    async with admin_client(data_dir, sim) as (_gateway, client):
        account_id = (await add_two(client, sim))[0]
        assert (await client.get(f"/auth/accounts/{account_id}/cookies")).json()["cookies"] == []
        await client.post(f"/auth/accounts/{account_id}/cookies", json={"cookies": {"cf_clearance": "abc"}})
        await client.post(f"/auth/accounts/{account_id}/cookies",
                          json={"cookies": [{"name": "__cf_bm", "value": "x"}, {"name": "cf_clearance", "value": "d"}]})
        cookies = (await client.get(f"/auth/accounts/{account_id}/cookies")).json()["cookies"]
        assert {c["name"]: c["value"] for c in cookies} == {"cf_clearance": "d", "__cf_bm": "x"}
        assert_error(await client.post(f"/auth/accounts/{account_id}/cookies", json={"cookies": [1]}), 400, "cookies")
        assert (await client.delete(f"/auth/accounts/{account_id}/cookies")).json()["cookies"] == []
        assert_error(await client.get("/auth/accounts/nope/cookies"), 404, "no account")


async def test_get_login_redirects_to_the_authorize_url(data_dir, sim):
    async with admin_client(data_dir, sim) as (_gateway, client):
        entry = await client.get("/auth/login?label=web")
        assert entry.status_code == 302
        assert entry.headers["location"].startswith(sim.urls.auth_base + "/oauth/authorize?")
        async with browser(sim) as user:
            assert (await user.get(entry.headers["location"], follow_redirects=True)).status_code == 200
        done = await wait_for_login(client, entry.headers["x-login-id"])
        assert done["status"] == "succeeded" and done["account"]["label"] == "web"


# Malformed bodies on every accounts route: each a 4xx in the OpenAI envelope whose message names the field,
# never a 500 (issue 11.8). (method, path, body, status, fragment of the message)
MALFORMED = [
    ("POST", "/auth/accounts", {"token": 5}, 400, "`token` must be a string, not a number"),
    ("POST", "/auth/accounts", {"token": ["a"]}, 400, "`token` must be a string, not a list"),
    ("POST", "/auth/accounts", {"refreshToken": {"a": 1}}, 400, "`refreshToken` must be a string"),
    ("POST", "/auth/accounts", {"refresh_token": True}, 400, "`refresh_token` must be a string, not a boolean"),
    ("POST", "/auth/accounts", {"token": "x.y.z", "label": 7}, 400, "`label` must be a string"),
    ("POST", "/auth/accounts", b"{", 400, "not valid JSON"),
    ("POST", "/auth/accounts", b"\"token\"", 400, "JSON object"),
    ("POST", "/auth/accounts/import", {"path": 5}, 400, "`path`"),
    ("POST", "/auth/accounts/import", {"path": "/nonexistent/auth.json", "link": "maybe"}, 400, "`link`"),
    ("POST", "/auth/accounts/import?link=perhaps", b"rt_1\n", 400, "`link`"),
    ("POST", "/auth/accounts/import", {"path": "/nonexistent/export.json"}, 400, "cannot read"),
    ("POST", "/auth/accounts/import", {"accounts": 5}, 400, "cannot import"),
    ("POST", "/auth/accounts/batch-delete", {"ids": [1, 2]}, 400, "`ids`"),
    ("POST", "/auth/accounts/batch-status", {"ids": ["a"], "status": ["active"]}, 400, "status"),
    ("POST", "/auth/accounts/batch-status", {"ids": ["a"], "enabled": "yes"}, 400, "status"),
    ("POST", "/auth/accounts/health-check", {"ids": "all"}, 400, "`ids`"),
    ("POST", "/auth/accounts/health-check", b"[1]", 400, "JSON object"),
    ("PATCH", "/auth/accounts/{id}", {"label": 5}, 400, "`label`"),
    ("PATCH", "/auth/accounts/{id}", {"proxy": 8080}, 400, "`proxy`"),
    ("PATCH", "/auth/accounts/{id}", [], 400, "JSON object"),
    ("POST", "/auth/accounts/{id}/cookies", {"cookies": [{"name": 1, "value": "v"}]}, 400, "cookies"),
    ("POST", "/auth/accounts/{id}/cookies", {"cookies": "a=b"}, 400, "cookies"),
    ("POST", "/auth/login", {"mode": ["device"]}, 400, "`mode`"),
    ("POST", "/auth/login", {"label": 5}, 400, "`label`"),
    ("POST", "/auth/login/device", {"label": []}, 400, "`label`"),
    ("POST", "/auth/login/{login}/callback", {"url": 5}, 400, "url"),
]


async def test_malformed_bodies_on_every_accounts_route_are_400_with_a_message(data_dir, tmp_path, sim):
    async with admin_client(data_dir, sim) as (_gateway, client):
        [account_id] = (await add_two(client, sim))[:1]
        login_id = (await client.post("/auth/login", json={"mode": "paste"})).json()["login_id"]
        for method, path, body, status, fragment in MALFORMED:
            path = path.format(id=account_id, login=login_id)
            content = body if isinstance(body, bytes) else orjson.dumps(body)
            response = await client.request(method, path, content=content,
                                             headers={"content-type": "application/json"})
            assert response.status_code == status, (method, path, body, response.text)
            error = response.json()["error"]
            assert fragment in error["message"] and "Traceback" not in response.text, (method, path, body, error)
        # a path import reads only JSON: no other file of the machine goes to the issuer as refresh tokens
        notes = tmp_path / "notes.txt"
        notes.write_text("a line\nanother line\n")
        assert_error(await client.post("/auth/accounts/import", json={"path": str(notes)}), 400,
                     "not a JSON export or auth.json")
        # an import entry with an unusable proxy is refused by itself, before it can break that account's requests
        imported = await client.post("/auth/accounts/import", json={"accounts": [
            {"token": sim.accounts[2].access_token, "proxy": "not a proxy"}]})
        assert imported.json()["failed"] == 1 and "`proxy` must look like" in imported.json()["errors"][0]


async def test_health_check_names_unknown_ids(data_dir, sim):
    async with admin_client(data_dir, sim) as (_gateway, client):
        [known, _] = await add_two(client, sim)
        results = (await client.post("/auth/accounts/health-check", json={"ids": [known, "nope"]})).json()["results"]
        by_id = {r["id"]: r for r in results}
        assert set(by_id) == {known, "nope"}
        assert by_id[known]["ok"] is True
        assert by_id["nope"]["ok"] is False and "no account with id 'nope'" in by_id["nope"]["error"]
