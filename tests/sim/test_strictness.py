"""Rejections with the real status codes and bodies."""

from __future__ import annotations

import httpx
import orjson
import zstandard

from codex_trio.sim import Simulator

from .helpers import auth_headers, parse_sse, turn_body, types


async def post(client: httpx.AsyncClient, account, body, **headers) -> httpx.Response:
    return await client.post("/codex/responses", json=body, headers={**auth_headers(account), **headers})


async def test_bearer_token_rules(sim: Simulator, client: httpx.AsyncClient) -> None:
    account = sim.accounts[0]
    r = await client.post("/codex/responses", json=turn_body(), headers={"chatgpt-account-id": account.account_id})
    assert r.status_code == 401
    r = await post(client, account, turn_body(), authorization="Bearer not-a-token")
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_invalid"
    sim.clock.advance(3601)  # the fixture's tokens live one hour
    r = await post(client, account, turn_body())
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_expired"


async def test_account_id_must_match_token(sim: Simulator, client: httpx.AsyncClient) -> None:
    plus, free, _ = sim.accounts
    r = await post(client, plus, turn_body(), **{"chatgpt-account-id": free.account_id})
    assert r.status_code == 401 and r.json()["error"]["code"] == "account_mismatch"


async def test_body_rules(sim: Simulator, client: httpx.AsyncClient) -> None:
    account = sim.accounts[0]
    cases = [
        ({**turn_body(), "store": True}, {"detail": "Store must be set to false"}),
        ({**turn_body(), "stream": False}, {"detail": "Stream must be set to true"}),
        ({**turn_body(), "max_output_tokens": 10}, {"detail": "Unsupported parameter: max_output_tokens"}),
        ({**turn_body(), "previous_response_id": "resp_1"}, {"detail": "Unsupported parameter: previous_response_id"}),
        ({**turn_body(), "temperature": 0.2}, {"detail": "Unsupported parameter: temperature"}),
        ({**turn_body(), "truncation_policy": {}}, {"detail": "Unsupported parameter: truncation_policy"}),
        ({**turn_body(), "model": "gpt-4o"},
         {"detail": "The 'gpt-4o' model is not supported when using Codex with a ChatGPT account."}),
    ]
    for body, expected in cases:
        r = await post(client, account, body)
        assert (r.status_code, r.json()) == (400, expected)
    r = await client.post("/codex/responses", content=b"{nope", headers={**auth_headers(account),
                                                                         "content-type": "application/json"})
    assert r.status_code == 400


async def test_model_outside_plan(sim: Simulator, client: httpx.AsyncClient) -> None:
    plus, free, pro = sim.accounts
    r = await post(client, free, turn_body(model="gpt-6.1-terra"))
    assert r.status_code == 400 and "not supported" in r.json()["detail"]
    assert (await post(client, plus, turn_body(model="gpt-6-astra"))).status_code == 400
    assert (await post(client, pro, turn_body(model="gpt-6-astra"))).status_code == 200


async def test_tool_calls_need_outputs(sim: Simulator, client: httpx.AsyncClient) -> None:
    account = sim.accounts[0]
    body = turn_body()
    body["input"].append({"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"})
    r = await post(client, account, body)
    assert r.status_code == 400 and r.json()["error"]["message"] == "No tool output found for function call call_1."
    body["input"].append({"type": "function_call_output", "call_id": "call_1", "output": "ok"})
    assert (await post(client, account, body)).status_code == 200
    orphan = turn_body()
    orphan["input"].append({"type": "custom_tool_call_output", "call_id": "call_9", "output": "x"})
    assert (await post(client, account, orphan)).status_code == 400


async def test_banned_account_gets_403(sim: Simulator, client: httpx.AsyncClient) -> None:
    account = sim.accounts[0]
    sim.ban(account.account_id)
    r = await post(client, account, turn_body())
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_deactivated"
    assert (await client.get("/wham/usage", headers=auth_headers(account))).status_code == 403


async def test_exhausted_quota_gets_429_with_reset(sim: Simulator, client: httpx.AsyncClient) -> None:
    account = sim.accounts[0]
    sim.exhaust(account.account_id)
    r = await post(client, account, turn_body())
    assert r.status_code == 429
    error = r.json()["error"]
    assert error["type"] == "usage_limit_reached" and error["plan_type"] == "plus"
    assert 0 < error["resets_in_seconds"] <= 18000
    assert error["resets_at"] == int(r.headers["x-codex-primary-reset-at"])
    assert r.headers["x-codex-primary-used-percent"] == "100.0"
    sim.clock.advance(error["resets_in_seconds"] + 1)
    assert (await client.get("/wham/usage", headers=auth_headers(account))).status_code == 401  # token expired too
    sim.state.reissue(account)
    assert (await post(client, account, turn_body())).status_code == 200


async def test_per_model_limit_blocks_only_its_model(sim: Simulator, client: httpx.AsyncClient) -> None:
    account = sim.accounts[0]
    sim.exhaust(account.account_id, "codex_bengalfox")
    r = await post(client, account, turn_body(model="gpt-6-luna"))
    assert r.status_code == 429 and r.json()["error"]["metered_limit_name"] == "codex_bengalfox"
    assert (await post(client, account, turn_body(model="gpt-5.5"))).status_code == 200


async def test_quota_windows_move_with_the_clock(sim: Simulator, client: httpx.AsyncClient) -> None:
    account = sim.accounts[0]
    r = await post(client, account, turn_body("x" * 40000))
    assert r.status_code == 200
    usage = (await client.get("/wham/usage", headers=auth_headers(account))).json()["rate_limit"]
    used = usage["primary_window"]["used_percent"]
    assert used > 0 and usage["secondary_window"]["used_percent"] > 0
    sim.clock.advance(5 * 3600 + 1)
    sim.state.reissue(account)
    usage = (await client.get("/wham/usage", headers=auth_headers(account))).json()["rate_limit"]
    assert usage["primary_window"]["used_percent"] == 0
    assert usage["secondary_window"]["used_percent"] > 0  # the weekly window keeps counting
    sim.clock.advance(7 * 86400)
    sim.state.reissue(account)
    usage = (await client.get("/wham/usage", headers=auth_headers(account))).json()["rate_limit"]
    assert usage["secondary_window"]["used_percent"] == 0


async def test_zstd_bodies_are_accepted_and_recorded_decoded(sim: Simulator, client: httpx.AsyncClient) -> None:
    account = sim.accounts[0]
    raw = orjson.dumps(turn_body("compressed"))
    wire = zstandard.ZstdCompressor(level=3, write_content_size=False).compress(raw)
    r = await client.post("/codex/responses", content=wire, headers={
        **auth_headers(account), "content-type": "application/json", "content-encoding": "zstd"})
    assert r.status_code == 200
    assert types(parse_sse(r.text))[-1] == "response.completed"
    recorded = sim.requests_to("/codex/responses")[-1]
    assert recorded.body["input"][0]["content"][0]["text"] == "compressed"
    assert recorded.content_encoding == "zstd" and recorded.raw_body == wire
    bad = await client.post("/codex/responses", content=b"garbage", headers={
        **auth_headers(account), "content-type": "application/json", "content-encoding": "zstd"})
    assert bad.status_code == 400


async def test_enumerated_values(sim: Simulator, client: httpx.AsyncClient) -> None:
    account = sim.accounts[0]
    r = await post(client, account, turn_body(reasoning={"effort": "ultra"}))
    assert r.status_code == 400 and r.json()["error"]["param"] == "reasoning.effort"
    assert "'low', 'medium', 'high', and 'xhigh'" in r.json()["error"]["message"]
    assert (await post(client, account, turn_body(model="gpt-6.1-sol", reasoning={"effort": "ultra"}))).status_code == 200
    assert (await post(client, account, turn_body(reasoning={"effort": "minimal", "summary": "auto"}))).status_code == 200
    for extra, param in (({"text": {"verbosity": "loud"}}, "text.verbosity"),
                         ({"service_tier": "fast"}, "service_tier"),
                         ({"tool_choice": "always"}, "tool_choice")):
        r = await post(client, account, turn_body(**extra))
        assert r.status_code == 400 and r.json()["error"]["param"] == param, extra
    assert (await post(client, account, turn_body(service_tier="priority"))).status_code == 200
