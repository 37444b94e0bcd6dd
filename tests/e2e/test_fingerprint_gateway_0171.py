"""The gateway presenting Codex CLI 0.171.0 (the default release), compared with the 0.171.0 captures request by
request as test_fingerprint_gateway.py does for 0.169.0: the WebSocket turn, the SSE turn after a 426, the
classic model, the models / accounts-check calls and the refreshes — and a tool round trip on a responses-lite
model through every client protocol, in the captured lite shape (tools in the `functions` namespace of one
leading `additional_tools` item, the lite header or flag, no top-level `tools`)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from codex_trio.routing.catalog import refresh_catalog
from codex_trio.upstream.identity import load_fingerprint
from tests.accounts.helpers import fixture_identity
from tests.conftest import FIXTURES

from .dispatch_helpers import gateway_and_sim
from .test_fingerprint_gateway import CLASSIC_TOOL, assert_same_body, masked_headers
from .test_ollama_client import WEATHER_TOOL, ollama_bridge, upstream_bodies
from tests.upstream.golden import diff_headers

RELEASE = "0.171.0"
CAPTURES = FIXTURES / load_fingerprint().releases[RELEASE].fixtures
MODEL = "gpt-6.2-sol"  # 0.171.0's default model (responses-lite, code mode)


def load(name: str) -> dict[str, Any]:
    return json.loads((CAPTURES / name).read_text(encoding="utf-8"))


def assert_same_headers(recorded, fixture: dict[str, Any]) -> None:
    problems = diff_headers(masked_headers(recorded.headers), [list(h) for h in masked_headers(fixture["headers"])],
                            content_length_growth=None)
    assert not problems, "\n".join(problems)


def present_0171(gateway) -> None:
    connector = gateway.services.connector
    connector.identity = fixture_identity(RELEASE)  # the captures' client: codex exec on Debian 12, xterm
    assert connector.identity.version == gateway.config.settings.client.version == RELEASE  # the default


def responses_request(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "instructions": "You are a helpful assistant.", "input": "Say hello.",
            "reasoning": {"effort": "low"}, **extra}


async def test_websocket_turn_matches_the_capture(data_dir):
    async with gateway_and_sim(data_dir, accounts=1, real_hosts=True) as (sim, gateway, client):
        present_0171(gateway)
        response = await client.post("/v1/responses", json=responses_request())
        assert response.status_code == 200, response.text
        upgrade = sim.requests_to("/codex/responses", "GET")[-1]
        assert upgrade.status == 101
        assert_same_headers(upgrade, load("exec-ws/01-ws-upgrade.json"))  # no accept-encoding on the upgrade
        prewarm, turn = upgrade.ws_messages
        assert_same_body(prewarm, load("exec-ws/02-frame1-response-create-prewarm.json")["message"])
        assert_same_body(turn, load("exec-ws/03-frame2-response-create-turn.json")["message"])


async def test_sse_fallback_turn_and_bootstrap_calls_match_the_capture(data_dir):
    async with gateway_and_sim(data_dir, accounts=1, websocket=False, real_hosts=True) as (sim, gateway, client):
        present_0171(gateway)
        response = await client.post("/v1/responses", json=responses_request())
        assert response.status_code == 200, response.text
        assert_same_headers(sim.requests_to("/codex/responses", "GET")[-1], load("exec-sse/06-ws-upgrade.json"))
        post = sim.requests_to("/codex/responses", "POST")[-1]
        fixture = load("exec-sse/08-codex-responses.json")
        assert (post.http_version, post.content_encoding) == ("1.1", "zstd")
        assert_same_headers(post, fixture)  # accept-encoding: zstd,gzip directly before host
        assert_same_body(post.body, fixture["body"])
        # the catalog fetch goes out with the running identity's clients: 0.171.0's accept-encoding there too
        await refresh_catalog(gateway.services, gateway.services.catalog)
        models = sim.requests_to("/codex/models", "GET")[-1]
        assert models.query == f"client_version={RELEASE}"
        assert_same_headers(models, load("exec-sse/02-codex-models.json"))


async def test_classic_model_sse_turn_matches_the_capture(data_dir):
    async with gateway_and_sim(data_dir, accounts=1, websocket=False, real_hosts=True) as (sim, gateway, client):
        present_0171(gateway)
        request = responses_request(model="gpt-5.5", tools=[CLASSIC_TOOL], reasoning={"effort": "medium"})
        response = await client.post("/v1/responses", json=request)
        assert response.status_code == 200, response.text
        post = sim.requests_to("/codex/responses", "POST")[-1]
        fixture = load("exec-gpt55-sse-tool/01-codex-responses.json")
        assert_same_headers(post, fixture)
        assert_same_body(post.body, fixture["body"])
        assert post.body["tools"] == [CLASSIC_TOOL]  # classic: top-level tools, no additional_tools item
        assert all(item.get("type") != "additional_tools" for item in post.body["input"])


# ---- a lite-model tool round trip through every client protocol -----------------------------------------

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city.",
           "parameters": WEATHER_TOOL["function"]["parameters"]}
SCRIPT = [{"match": {"user_text": "weather", "model": MODEL}, "times": 1,
           "reply": {"function_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}},
          {"match": {"tool_output": "21"}, "reply": {"text": "It is 21 degrees in Paris."}}]


def assert_lite_shape(body: dict[str, Any]) -> dict[str, Any]:
    """The captured lite shape (exec-sse-tool/01): no top-level tools; the first input item is the
    `additional_tools` developer item whose `functions` namespace holds the client's tool."""
    websocket = body.get("type") == "response.create"
    captured = load("exec-ws/03-frame2-response-create-turn.json")["message"] if websocket else \
        load("exec-sse-tool/01-codex-responses.json")["body"]
    # the captured field order (fields the client did not ask for, like reasoning, may be absent)
    assert "tools" not in body and list(body) == [k for k in captured if k in body] and set(body) <= set(captured)
    item = body["input"][0]
    assert list(item) == list(captured["input"][0]) == ["type", "id", "role", "tools"]
    assert item["type"] == "additional_tools" and item["role"] == "developer" and item["id"].startswith("at_")
    namespace = item["tools"][0]
    assert list(namespace) == list(captured["input"][0]["tools"][0])
    assert (namespace["type"], namespace["name"], namespace["description"]) == ("namespace", "functions", "")
    [tool] = namespace["tools"]
    assert tool["type"] == "function" and tool["name"] == "get_weather"
    assert tool["parameters"]["properties"]["city"]["type"] == "string"
    return item


def assert_round_trip(sim) -> None:
    first, second = upstream_bodies(sim)[-2:]
    item = assert_lite_shape(first)
    # the follow-up repeats the same item (chain and prompt cache hold) and answers the call
    assert second["input"][0] == item or second.get("previous_response_id")
    kinds = [i.get("type") for i in second["input"]]
    assert "function_call_output" in kinds
    for recorded in sim.requests_to("/codex/responses"):
        if recorded.method == "POST":
            assert recorded.header("x-openai-internal-codex-responses-lite") == "true"
        for frame in recorded.ws_messages or []:
            assert frame["client_metadata"]["ws_request_header_x_openai_internal_codex_responses_lite"] == "true"


async def chat_round_trip(client: httpx.AsyncClient) -> str:
    tools = [WEATHER_TOOL]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = (await client.post("/v1/chat/completions", json={"model": MODEL, "messages": messages, "tools": tools}))
    assert first.status_code == 200, first.text
    call = first.json()["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather" and json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    messages += [first.json()["choices"][0]["message"], {"role": "tool", "tool_call_id": call["id"], "content": "21"}]
    second = await client.post("/v1/chat/completions", json={"model": MODEL, "messages": messages, "tools": tools})
    assert second.status_code == 200, second.text
    return second.json()["choices"][0]["message"]["content"]


async def responses_round_trip(client: httpx.AsyncClient) -> str:
    first = await client.post("/v1/responses", json={"model": MODEL, "input": "What is the weather in Paris?",
                                                     "tools": [WEATHER]})
    assert first.status_code == 200, first.text
    call = next(i for i in first.json()["output"] if i["type"] == "function_call")
    assert call["name"] == "get_weather"
    history = [{"role": "user", "content": "What is the weather in Paris?"}, call,
               {"type": "function_call_output", "call_id": call["call_id"], "output": "21"}]
    second = await client.post("/v1/responses", json={"model": MODEL, "input": history, "tools": [WEATHER]})
    assert second.status_code == 200, second.text
    return second.json()["output"][-1]["content"][0]["text"]


async def anthropic_round_trip(client: httpx.AsyncClient) -> str:
    tool = {"name": "get_weather", "description": "Weather for a city.",
            "input_schema": WEATHER_TOOL["function"]["parameters"]}
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = await client.post("/v1/messages", json={"model": MODEL, "max_tokens": 200, "messages": messages,
                                                    "tools": [tool]})
    assert first.status_code == 200, first.text
    use = next(b for b in first.json()["content"] if b["type"] == "tool_use")
    assert use["name"] == "get_weather" and use["input"] == {"city": "Paris"}
    messages += [{"role": "assistant", "content": first.json()["content"]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use["id"], "content": "21"}]}]
    second = await client.post("/v1/messages", json={"model": MODEL, "max_tokens": 200, "messages": messages,
                                                     "tools": [tool]})
    assert second.status_code == 200, second.text
    return second.json()["content"][-1]["text"]


async def gemini_round_trip(client: httpx.AsyncClient) -> str:
    tools = [{"functionDeclarations": [{"name": "get_weather", "description": "Weather for a city.",
                                        "parameters": WEATHER_TOOL["function"]["parameters"]}]}]
    contents: list[dict[str, Any]] = [{"role": "user", "parts": [{"text": "What is the weather in Paris?"}]}]
    path = f"/v1beta/models/{MODEL}:generateContent"
    first = await client.post(path, json={"contents": contents, "tools": tools})
    assert first.status_code == 200, first.text
    part = first.json()["candidates"][0]["content"]["parts"][0]
    assert part["functionCall"]["name"] == "get_weather" and part["functionCall"]["args"] == {"city": "Paris"}
    contents += [{"role": "model", "parts": [part]},
                 {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": "21"}}}]}]
    second = await client.post(path, json={"contents": contents, "tools": tools})
    assert second.status_code == 200, second.text
    return second.json()["candidates"][0]["content"]["parts"][0]["text"]


@pytest.mark.parametrize("protocol", [chat_round_trip, responses_round_trip, anthropic_round_trip, gemini_round_trip],
                         ids=["chat", "responses", "anthropic", "gemini"])
@pytest.mark.parametrize("websocket", [True, False], ids=["ws", "sse"])
async def test_lite_model_tool_round_trip(data_dir, protocol, websocket):
    async with gateway_and_sim(data_dir, accounts=1, websocket=websocket) as (sim, gateway, client):
        for rule in SCRIPT:
            sim.script(rule)
        assert await protocol(client) == "It is 21 degrees in Paris."
        assert_round_trip(sim)


async def test_lite_model_tool_round_trip_through_ollama(data_dir):
    async with ollama_bridge(data_dir) as (sim, gateway, url, _):
        for rule in SCRIPT:
            sim.script(rule)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            messages: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris?"}]
            first = await http.post("/api/chat", json={"model": MODEL, "messages": messages, "tools": [WEATHER_TOOL],
                                                       "stream": False})
            assert first.status_code == 200, first.text
            call = first.json()["message"]["tool_calls"][0]
            assert call["function"]["name"] == "get_weather"
            messages += [first.json()["message"], {"role": "tool", "content": "21", "tool_name": "get_weather"}]
            second = await http.post("/api/chat", json={"model": MODEL, "messages": messages, "tools": [WEATHER_TOOL],
                                                        "stream": False})
            assert second.status_code == 200, second.text
            assert second.json()["message"]["content"] == "It is 21 degrees in Paris."
        assert_round_trip(sim)


# ---- smaller fidelity gaps ------------------------------------------------------------------------------------


async def test_a_429_on_the_websocket_upgrade_keeps_its_reset_time(data_dir):
    async with gateway_and_sim(data_dir, accounts=1, real_hosts=True) as (sim, gateway, client):
        sim.exhaust(sim.accounts[0].account_id)  # the upgrade itself is refused: 429 usage_limit_reached
        response = await client.post("/v1/responses", json=responses_request(model="gpt-5.5"))
        upgrade = sim.requests_to("/codex/responses", "GET")[-1]
        assert upgrade.status == 429
        assert response.status_code == 429, response.text
        reset_in = float(response.headers["retry-after"])
        [account] = gateway.services.pool.accounts()
        # the account cools down until the reset the body named, not the fallback backoff
        assert account.cooldown_until is not None
        assert abs(account.cooldown_until - sim.clock.now() - reset_in) <= 2
        assert reset_in > gateway.config.settings.auth.rate_limit_backoff_seconds


async def test_responses_client_metadata_is_merged_the_way_codex_holds_it(data_dir):
    async with gateway_and_sim(data_dir, accounts=1, websocket=False, real_hosts=True) as (sim, gateway, client):
        metadata = {"x-openai-subagent": "review", "user": "someone", "session_id": "not-ours", "n": 3}
        response = await client.post("/v1/responses", json=responses_request(client_metadata=metadata))
        assert response.status_code == 200, response.text
        sent = sim.requests_to("/codex/responses", "POST")[-1].body["client_metadata"]
        assert sent["x-openai-subagent"] == "review"  # what the real client adds for a sub-agent
        assert "user" not in sent and "n" not in sent  # keys no real client sends
        assert sent["session_id"] == sent["thread_id"] != "not-ours"  # codex's own keys win
        fixture = load("exec-sse/08-codex-responses.json")["body"]["client_metadata"]
        assert set(sent) == set(fixture) | {"x-openai-subagent"}


async def test_the_compact_call_carries_the_accounts_cookies(data_dir):
    async with gateway_and_sim(data_dir, accounts=1, websocket=False, real_hosts=True) as (sim, gateway, http):
        sim.script({"times": 1, "reply": {"set_cookies": True}})
        assert (await http.post("/v1/responses", json=responses_request(model="gpt-5.5"))).status_code == 200
        [account] = gateway.services.pool.accounts()
        stored = {c["name"]: c["value"] for c in account.cookies}
        assert sorted(stored) == ["__cf_bm", "cf_clearance"]
        compacted = await http.post("/v1/responses/compact", json={
            "model": "gpt-5.5", "input": [{"role": "user", "content": "Say hello."}]})
        assert compacted.status_code == 200, compacted.text
        [call] = sim.requests_to("/codex/responses/compact", "POST")
        sent = dict(part.split("=", 1) for part in call.header("cookie").split("; "))
        assert sent == stored
        # reqwest's order: its default accept, then its decompression layer, then its cookie layer, then hyper
        assert call.header_names()[-5:] == ["accept", "accept-encoding", "cookie", "host", "content-length"]
