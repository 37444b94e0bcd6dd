"""Replay the requests the real Codex CLI 0.169.0 sent (fixtures/chatgpt-mode) against the simulator.

Tokens and the account id are swapped for simulator-issued ones; everything else (header order and case,
bodies, zstd compression) is sent as captured. Each must be accepted: 200 and, for turns, a full stream.
"""

from __future__ import annotations

import json

import httpx
import orjson
import pytest
import zstandard

from codex_trio.sim import Simulator

from .helpers import WSClient, parse_sse, types
from tests.conftest import FIXTURES

FIXTURES = FIXTURES / "chatgpt-mode"
FAKE_ACCOUNT = "11111111-2222-4333-8444-555555555555"
HTTP_FIXTURES = sorted(
    str(p.relative_to(FIXTURES)) for folder in ("exec-sse", "exec-sse-tool", "exec-gpt55-sse-tool", "tui",
                                                "app-server", "customca-h2")
    for p in (FIXTURES / folder).glob("*.json")
    if "ws-upgrade" not in p.name) if FIXTURES.is_dir() else []



def test_the_captured_fixtures_are_present():
    # Without them the replay tests below would silently collect nothing.
    assert HTTP_FIXTURES, f"no captured requests under {FIXTURES}"


def swap(text: str, sim: Simulator) -> str:
    account = sim.accounts[0]
    return text.replace("<ACCESS_TOKEN>", account.access_token).replace(FAKE_ACCOUNT, account.account_id)


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def build_request(fixture: dict, sim: Simulator) -> tuple[list[tuple[str, str]], bytes]:
    headers = [(k, swap(v, sim)) for k, v in fixture["headers"] if k.lower() not in ("host", "content-length")]
    if "body" in fixture and fixture["body"] is not None:
        raw = swap(json.dumps(fixture["body"], separators=(",", ":"), ensure_ascii=False), sim).encode()
        if (fixture.get("body_wire") or {}).get("content_encoding") == "zstd":
            raw = zstandard.ZstdCompressor(level=3, write_content_size=False).compress(raw)
        return headers, raw
    return headers, b""


@pytest.mark.parametrize("name", HTTP_FIXTURES)
async def test_captured_http_request_is_accepted(sim: Simulator, name: str) -> None:
    assert sim.urls is not None
    fixture = load(name)
    headers, body = build_request(fixture, sim)
    url = sim.urls.base + fixture["path"]
    if fixture.get("query"):
        url += "?" + "&".join(f"{k}={v}" for k, v in fixture["query"])
    http2 = fixture["transport"]["http_version"] == "HTTP/2"
    async with httpx.AsyncClient(verify=sim.ssl_context(), http2=http2, timeout=10) as client:
        r = await client.request(fixture["method"], url, headers=headers, content=body or None)
    assert r.status_code in (200, 202), r.text
    if fixture["path"].endswith("/codex/responses"):
        events = parse_sse(r.text)
        assert types(events)[0] == "response.created" and types(events)[-1] == "response.completed"
    recorded = sim.requests[-1]
    sent = [k for k, _ in headers]
    assert [k for k in recorded.header_names() if k in sent][:len(sent)] == sent
    if fixture.get("body") is not None:
        assert recorded.body == orjson.loads(swap(json.dumps(fixture["body"]), sim))


async def test_captured_websocket_session_is_accepted(sim: Simulator) -> None:
    upgrade = load("exec-ws/01-ws-upgrade.json")
    sim.script({"match": {"model": "gpt-6.1-sol", "user_text": "Say"}, "times": 1,
                "reply": {"custom_tool_calls": [{"name": "exec", "input": 'text("MOCK_TOOL_RAN")'}]}})
    ws = await WSClient.connect(sim, [(k, swap(v, sim)) for k, v in upgrade["headers"]])
    assert ws.status == 101 and ws.headers.get("sec-websocket-extensions", "").startswith("permessage-deflate")
    recorded = sim.requests_to("/codex/responses", "GET")[-1]
    assert recorded.headers == [(k, swap(v, sim)) for k, v in upgrade["headers"]]

    prewarm = load("exec-ws/02-frame1-response-create-prewarm.json")["message"]
    events = await ws.turn(orjson.loads(swap(json.dumps(prewarm), sim)))
    assert types(events)[-1] == "response.completed"
    turn = load("exec-ws/03-frame2-response-create-turn.json")["message"]
    turn["previous_response_id"] = events[-1]["response"]["id"]
    events = await ws.turn(orjson.loads(swap(json.dumps(turn), sim)))
    assert types(events)[-1] == "response.completed"
    call = events[-1]["response"]["output"][-1]
    assert call["type"] == "custom_tool_call"
    follow = load("exec-ws/04-frame3-response-create-custom-tool-output.json")["message"]
    follow["previous_response_id"] = events[-1]["response"]["id"]
    follow["input"][0]["call_id"] = call["call_id"]
    events = await ws.turn(orjson.loads(swap(json.dumps(follow), sim)))
    assert types(events)[-1] == "response.completed"
    await ws.aclose()


async def test_captured_gpt55_websocket_tool_round_trip(sim: Simulator) -> None:
    upgrade = load("exec-ws/01-ws-upgrade.json")
    sim.script({"match": {"model": "gpt-5.5"}, "times": 1,
                "reply": {"function_calls": [{"name": "exec_command", "arguments": {"cmd": "echo MOCK_TOOL_RAN"}}]}})
    ws = await WSClient.connect(sim, [(k, swap(v, sim)) for k, v in upgrade["headers"]], deflate=False)
    frames = [load(f"exec-gpt55-ws-tool/0{n}-frame{n}-response-create.json")["message"] for n in (1, 2, 3)]
    events = await ws.turn(orjson.loads(swap(json.dumps(frames[0]), sim)))
    assert types(events)[-1] == "response.completed"
    frames[1]["previous_response_id"] = events[-1]["response"]["id"]
    events = await ws.turn(orjson.loads(swap(json.dumps(frames[1]), sim)))
    call = events[-1]["response"]["output"][-1]
    assert call["type"] == "function_call" and call["name"] == "exec_command"
    frames[2]["previous_response_id"] = events[-1]["response"]["id"]
    frames[2]["input"][0]["call_id"] = call["call_id"]
    events = await ws.turn(orjson.loads(swap(json.dumps(frames[2]), sim)))
    assert types(events)[-1] == "response.completed"
    await ws.aclose()


async def test_captured_oauth_requests_shape(sim: Simulator, auth_client: httpx.AsyncClient) -> None:
    refresh = load("oauth/refresh-proactive-expiry.json")
    body = dict(refresh["body"], refresh_token=sim.accounts[0].refresh_token)
    headers = [(k, v) for k, v in refresh["headers"] if k.lower() not in ("host", "content-length")]
    r = await auth_client.post("/oauth/token", content=json.dumps(body, separators=(",", ":")), headers=headers)
    assert r.status_code == 200
    usercode = load("oauth/device-usercode.json")
    r = await auth_client.post("/api/accounts/deviceauth/usercode", json=usercode["body"])
    assert r.status_code == 200
