"""One turn through the whole gateway, compared with what the real Codex CLI sent in the same scenario: every
request the simulator recorded (headers in wire order and case, decoded body) against the captures.

Differences allowed, each named: secrets (token, account id), ids and timestamps (thread/session/turn ids,
the WebSocket key, request start times), the content length, and what legitimately comes from the client's
request (input, tools, instructions, model, previous_response_id). Everything else must be equal. The gateway
reaches the simulator under the real host name (`tls.resolve`), so Host and the TLS server name are compared too."""

from __future__ import annotations

import json
from typing import Any

from tests.accounts.helpers import fixture_identity
from tests.upstream.golden import diff_headers, load

from .dispatch_helpers import gateway_and_sim, sni_of

MODEL = "gpt-6.1-sol"  # the captures' model (a responses-lite model of the catalog)
MASKED_HEADERS = {"sec-websocket-key", "authorization", "chatgpt-account-id", "x-client-request-id",
                  "session-id", "thread-id", "x-codex-window-id"}
METADATA_IDS = {"installation_id", "session_id", "thread_id", "turn_id", "window_id", "context_window_id",
                "root_turn_id", "turn_started_at_unix_ms"}
CLIENT_FIELDS = {"input", "tools", "instructions", "model", "previous_response_id"}
CLIENT_METADATA_IDS = {"session_id", "thread_id", "turn_id", "root_turn_id", "x-codex-installation-id",
                       "x-codex-window-id", "x-codex-ws-stream-request-start-ms"}


def masked_metadata(value: str) -> list[tuple[str, Any]]:
    """x-codex-turn-metadata with its ids and timestamps masked, keys kept in their order."""
    return [(k, "<id>" if k in METADATA_IDS else v) for k, v in json.loads(value).items()]


def masked_headers(headers) -> list[tuple[str, str]]:
    out = []
    for name, value in headers:
        if name.lower() in MASKED_HEADERS:
            value = "<masked>"
        elif name.lower() == "x-codex-turn-metadata":
            value = json.dumps(masked_metadata(value))
        out.append((name, value))
    return out


def assert_same_headers(recorded, fixture: dict[str, Any]) -> None:
    # content-length: the bodies differ by the client's input (checked to be a number)
    assert sni_of(recorded) == "chatgpt.com"
    problems = diff_headers(masked_headers(recorded.headers), [list(h) for h in masked_headers(fixture["headers"])],
                            content_length_growth=None)
    assert not problems, "\n".join(problems)
    ids = {n.lower(): v for n, v in recorded.headers}
    if "session-id" in ids:  # the masked ids still hang together as the real client's do
        assert ids["thread-id"] == ids["session-id"] == ids["x-client-request-id"]
        assert ids["x-codex-window-id"] == ids["session-id"] + ":0"


def assert_same_body(body: dict[str, Any], captured: dict[str, Any]) -> None:
    assert list(body) == list(captured), f"top-level keys: {list(body)} != {list(captured)}"
    for key, expected in captured.items():
        if key in CLIENT_FIELDS or key == "prompt_cache_key":
            continue
        if key == "client_metadata":
            ours = body[key]
            assert set(ours) == set(expected), sorted(set(ours) ^ set(expected))  # a hash map: order varies
            for name, value in expected.items():
                if name == "x-codex-turn-metadata":
                    assert masked_metadata(ours[name]) == masked_metadata(value)
                elif name not in CLIENT_METADATA_IDS:
                    assert ours[name] == value, (name, ours[name], value)
            continue
        if key == "reasoning":
            # the gateway asks for reasoning summaries (`summary: "auto"`, set by the model router so clients
            # can be shown reasoning); codex 0.169 omits `summary` (catalog default_reasoning_summary "none")
            assert body[key].pop("summary", "auto") == "auto"
        assert body[key] == expected, (key, body[key], expected)
    assert body["prompt_cache_key"] == body["client_metadata"]["session_id"]


def responses_request(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "instructions": "You are a helpful assistant.", "input": "Say hello.",
            "reasoning": {"effort": "low"}, **extra}


async def test_websocket_turn_matches_the_capture(data_dir):
    async with gateway_and_sim(data_dir, accounts=1, real_hosts=True) as (sim, gateway, client):
        gateway.services.connector.identity = fixture_identity()  # the captures' client: codex exec on Debian 12, xterm
        response = await client.post("/v1/responses", json=responses_request())
        assert response.status_code == 200, response.text

        upgrade = sim.requests_to("/codex/responses", "GET")[-1]
        assert upgrade.status == 101 and upgrade.http_version == "1.1"
        assert_same_headers(upgrade, load("exec-ws/01-ws-upgrade.json"))
        prewarm, turn = upgrade.ws_messages
        assert_same_body(prewarm, load("exec-ws/02-frame1-response-create-prewarm.json")["message"])
        assert prewarm["input"] == [] or all(i.get("role") in ("developer", "user") for i in prewarm["input"])
        assert_same_body(turn, load("exec-ws/03-frame2-response-create-turn.json")["message"])
        assert turn["model"] == MODEL and turn["previous_response_id"].startswith("resp_")


async def test_sse_fallback_turn_matches_the_capture(data_dir):
    # the sim refuses the upgrade with 426, as the backend did in the exec-sse capture: codex falls back to SSE
    async with gateway_and_sim(data_dir, accounts=1, websocket=False, real_hosts=True) as (sim, gateway, client):
        gateway.services.connector.identity = fixture_identity()
        response = await client.post("/v1/responses", json=responses_request())
        assert response.status_code == 200, response.text

        upgrade = sim.requests_to("/codex/responses", "GET")[-1]
        assert upgrade.status == 426
        assert_same_headers(upgrade, load("exec-sse/04-ws-upgrade.json"))
        post = sim.requests_to("/codex/responses", "POST")[-1]
        fixture = load("exec-sse/08-codex-responses.json")
        assert (post.method, post.http_version, post.content_encoding) == ("POST", "1.1", "zstd")
        assert_same_headers(post, fixture)
        assert_same_body(post.body, fixture["body"])
        # the conversation's second turn goes straight to SSE: its 426 is remembered
        answer = response.json()["output"][-1]["content"][0]["text"]
        history = [{"role": "user", "content": "Say hello."}, {"role": "assistant", "content": answer},
                   {"role": "user", "content": "Again."}]
        response = await client.post("/v1/responses", json=responses_request(input=history))
        assert response.status_code == 200
        assert len(sim.requests_to("/codex/responses", "GET")) == 1


CLASSIC_TOOL = {"type": "function", "name": "get_weather", "description": "Weather of a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


async def test_classic_model_websocket_turn_matches_the_capture(data_dir):
    # gpt-5.5 (classic): tools, parallel_tool_calls:true, reasoning without `context`
    async with gateway_and_sim(data_dir, accounts=1, real_hosts=True) as (sim, gateway, client):
        gateway.services.connector.identity = fixture_identity()
        request = responses_request(model="gpt-5.5", tools=[CLASSIC_TOOL], reasoning={"effort": "medium"})
        response = await client.post("/v1/responses", json=request)
        assert response.status_code == 200, response.text
        upgrade = sim.requests_to("/codex/responses", "GET")[-1]
        prewarm, turn = upgrade.ws_messages
        assert_same_body(prewarm, load("exec-gpt55-ws-tool/01-frame1-response-create.json")["message"])
        assert_same_body(turn, load("exec-gpt55-ws-tool/02-frame2-response-create.json")["message"])


async def test_classic_model_sse_turn_matches_the_capture(data_dir):
    async with gateway_and_sim(data_dir, accounts=1, websocket=False, real_hosts=True) as (sim, gateway, client):
        gateway.services.connector.identity = fixture_identity()
        request = responses_request(model="gpt-5.5", tools=[CLASSIC_TOOL], reasoning={"effort": "medium"})
        response = await client.post("/v1/responses", json=request)
        assert response.status_code == 200, response.text
        post = sim.requests_to("/codex/responses", "POST")[-1]
        fixture = load("exec-gpt55-sse-tool/01-codex-responses.json")
        assert_same_headers(post, fixture)
        assert_same_body(post.body, fixture["body"])
