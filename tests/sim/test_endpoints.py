"""The backend-api endpoints other than the turn itself, over HTTP/1.1 and HTTP/2."""

from __future__ import annotations

import httpx

from codex_trio.sim import Simulator

from .helpers import auth_headers


async def test_accounts_check_names_the_account(sim: Simulator, client: httpx.AsyncClient) -> None:
    account = sim.accounts[0]
    r = await client.get("/wham/accounts/check", headers=auth_headers(account))
    assert r.status_code == 200
    entry = r.json()["accounts"][0]
    assert entry["id"] == account.account_id
    assert entry["workspace_backend_origin"] == "NO_CONSTRAINT"
    assert entry["account_routing_override"] == "NO_CONSTRAINT"
    assert r.json()["default_account_id"] == account.account_id


async def test_models_catalog_per_plan_with_etag(sim: Simulator, client: httpx.AsyncClient) -> None:
    plus, free, pro = sim.accounts
    seen = {}
    for account in (plus, free, pro):
        r = await client.get("/codex/models", params={"client_version": "0.169.0"}, headers=auth_headers(account))
        assert r.status_code == 200
        slugs = [m["slug"] for m in r.json()["models"]]
        seen[account.plan] = slugs
        assert r.headers["etag"]
        again = await client.get("/codex/models", params={"client_version": "0.169.0"},
                                 headers={**auth_headers(account), "if-none-match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
    assert "gpt-6-astra" in seen["pro"] and "gpt-6-astra" not in seen["plus"]
    assert set(seen["free"]) < set(seen["plus"]) < set(seen["pro"])
    old = await client.get("/codex/models", params={"client_version": "0.130.0"}, headers=auth_headers(plus))
    assert sorted(m["slug"] for m in old.json()["models"]) == ["codex-auto-review", "gpt-5.5"]
    missing = await client.get("/codex/models", headers=auth_headers(plus))
    assert missing.status_code == 400
    entry = r.json()["models"][0]
    assert list(entry)[:3] == ["slug", "prefer_websockets", "support_verbosity"]


async def test_usage_and_rate_limit_headers_follow_accounting(sim: Simulator, client: httpx.AsyncClient) -> None:
    account = sim.accounts[0]
    r = await client.get("/wham/usage", headers=auth_headers(account))
    body = r.json()
    assert body["plan_type"] == "plus"
    assert body["rate_limit"]["primary_window"]["limit_window_seconds"] == 18000
    assert body["rate_limit"]["secondary_window"]["limit_window_seconds"] == 604800
    assert body["rate_limit"]["primary_window"]["used_percent"] == 0
    assert r.headers["x-codex-primary-window-minutes"] == "300"
    assert r.headers["x-codex-secondary-window-minutes"] == "10080"
    account.quota.record("gpt-5.5", 250_000, sim.clock.now())
    r = await client.get("/wham/usage", headers=auth_headers(account))
    assert r.json()["rate_limit"]["primary_window"]["used_percent"] == 25.0
    assert r.headers["x-codex-primary-used-percent"] == "25.0"
    assert r.headers["x-codex-secondary-used-percent"] == "5.0"
    assert r.headers["x-codex-bengalfox-limit-name"] == "GPT-6-Luna"


async def test_reset_credits_list_and_consume(sim: Simulator, client: httpx.AsyncClient) -> None:
    account = sim.accounts[0]
    sim.exhaust(account.account_id)
    listed = (await client.get("/wham/rate-limit-reset-credits", headers=auth_headers(account))).json()
    assert listed["available_count"] == 1 and listed["credits"][0]["status"] == "available"
    r = await client.post("/wham/rate-limit-reset-credits/consume", json={"redeem_request_id": "r-1"},
                          headers=auth_headers(account))
    assert r.status_code == 200 and r.json()["available_count"] == 0
    usage = (await client.get("/wham/usage", headers=auth_headers(account))).json()
    assert usage["rate_limit"]["limit_reached"] is False
    again = await client.post("/wham/rate-limit-reset-credits/consume", json={"redeem_request_id": "r-2"},
                              headers=auth_headers(account))
    assert again.status_code == 409


async def test_settings_security_and_ps_mcp(sim: Simulator, client: httpx.AsyncClient) -> None:
    account = sim.accounts[0]
    assert (await client.get("/wham/settings/user", headers=auth_headers(account))).json()["user_id"] == account.user_id
    assert (await client.get("/wham/security-setup", headers=auth_headers(account))).status_code == 200
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "codex-mcp-client", "version": "0.169.0"}}}
    r = await client.post("/ps/mcp", json=init, headers=auth_headers(account))
    assert r.json()["result"]["protocolVersion"] == "2025-06-18"
    note = await client.post("/ps/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                             headers=auth_headers(account))
    assert note.status_code == 202
    tools = await client.post("/ps/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                              headers=auth_headers(account))
    assert tools.json()["result"] == {"tools": []}


async def test_compact_returns_compaction_item(sim: Simulator, client: httpx.AsyncClient) -> None:
    account = sim.accounts[0]
    body = {"model": "gpt-5.5", "instructions": "x",
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
                      {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "yo"}]}]}
    r = await client.post("/codex/responses/compact", json=body, headers=auth_headers(account))
    assert r.status_code == 200
    output = r.json()["output"]
    assert output[0]["role"] == "user" and output[-1]["type"] == "compaction"
    assert output[-1]["encrypted_content"].startswith("gAAAA")
    bad = await client.post("/codex/responses/compact", json={**body, "stream": True}, headers=auth_headers(account))
    assert bad.status_code == 400 and bad.json() == {"detail": "Unsupported parameter: stream"}


async def test_unknown_path_is_404_and_requests_are_recorded_with_case(sim: Simulator,
                                                                       client: httpx.AsyncClient) -> None:
    account = sim.accounts[0]
    r = await client.get("/nope", headers=auth_headers(account))
    assert r.status_code == 404
    await client.get("/wham/usage", headers=[("X-Mixed-Case", "1"), ("Authorization", "Bearer " + account.access_token),
                                             ("ChatGPT-Account-Id", account.account_id)])
    recorded = sim.requests_to("/wham/usage")[-1]
    names = recorded.header_names()
    assert names.index("X-Mixed-Case") < names.index("Authorization") < names.index("ChatGPT-Account-Id")
    assert recorded.http_version == "1.1" and recorded.scheme == "https" and recorded.status == 200


async def test_http2_and_plain_http_on_the_same_port(sim: Simulator) -> None:
    assert sim.urls is not None
    account = sim.accounts[0]
    async with httpx.AsyncClient(verify=sim.ssl_context(), http2=True) as h2:
        r = await h2.get(sim.urls.backend_base + "/wham/usage", headers=auth_headers(account))
        assert r.http_version == "HTTP/2" and r.status_code == 200
    recorded = sim.requests[-1]
    assert recorded.http_version == "2"
    assert [n for n, _ in recorded.headers][:4] == [":method", ":authority", ":scheme", ":path"]
    async with httpx.AsyncClient() as plain:
        r = await plain.get(sim.urls.http_base + "/backend-api/wham/usage", headers=auth_headers(account))
        assert r.status_code == 200 and sim.requests[-1].scheme == "http"


async def test_control_api(sim: Simulator) -> None:
    assert sim.urls is not None
    account = sim.accounts[0]
    async with httpx.AsyncClient(base_url=sim.urls.base, verify=sim.ssl_context()) as c:
        accounts = (await c.get("/_sim/accounts")).json()
        assert [a["account_id"] for a in accounts] == [a.account_id for a in sim.accounts]
        before = sim.clock.now()
        await c.post("/_sim/clock/advance", json={"seconds": 100})
        assert sim.clock.now() - before >= 100
        await c.post(f"/_sim/accounts/{account.account_id}/ban")
        assert account.banned
        await c.post(f"/_sim/accounts/{account.account_id}/unban")
        await c.post("/_sim/script", json={"match": {"user_text": "ctl"}, "reply": {"text": "from control"}})
        bad = await c.post("/_sim/script", json={"reply": {"nonsense": 1}})
        assert bad.status_code == 400
        recorded = (await c.get("/_sim/requests")).json()
        assert all(not r["path"].startswith("/_sim") for r in recorded)


async def test_models_etag_matches_the_turn_header(sim: Simulator, client: httpx.AsyncClient) -> None:
    account = sim.accounts[0]
    models = await client.get("/codex/models", params={"client_version": "0.169.0"}, headers=auth_headers(account))
    body = {"model": "gpt-5.5", "stream": True, "store": False, "input": []}
    r = await client.post("/codex/responses", json=body, headers={**auth_headers(account), "version": "0.169.0"})
    assert r.headers["x-models-etag"] == models.headers["etag"]


async def test_connection_details_are_recorded(sim: Simulator) -> None:
    """ALPN, the TLS ClientHello (for JA4 checks) and the HTTP/2 connection start, per request."""
    assert sim.urls is not None
    account = sim.accounts[0]
    async with httpx.AsyncClient(verify=sim.ssl_context(), http2=True) as h2:
        await h2.get(sim.urls.backend_base + "/wham/usage", headers=auth_headers(account))
    recorded = sim.requests[-1]
    assert recorded.connection is not None and recorded.connection.alpn == "h2"
    hello = recorded.connection.client_hello
    assert hello is not None and hello[0] == 0x01  # handshake type client_hello
    assert int.from_bytes(hello[1:4], "big") == len(hello) - 4
    start = recorded.connection.h2_connection_start
    assert start[0]["type"] == "SETTINGS" and start[-1]["type"] == "HEADERS"
    assert all(isinstance(pair, list) and len(pair) == 2 for pair in start[0]["settings"])
    public = recorded.public()
    assert public["alpn"] == "h2" and bytes.fromhex(public["client_hello_hex"]) == hello
    async with httpx.AsyncClient() as plain:
        await plain.get(sim.urls.http_base + "/backend-api/wham/usage", headers=auth_headers(account))
    assert sim.requests[-1].connection.client_hello is None
