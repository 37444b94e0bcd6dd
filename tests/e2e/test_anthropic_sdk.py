"""The official `anthropic` SDK against the whole gateway on the simulator (issue #7)."""

from __future__ import annotations

import base64
import json
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import anthropic as anthropic_sdk
import httpx
import orjson
import pytest

from codex_trio.protocols import anthropic
from codex_trio.sim import running_sim
from codex_trio.sim.turns import _encrypted as minted_encrypted
from tests.conftest import api_key, gateway_on_sim
from tests.protocols.test_token_count import CLIENTS, anthropic_text, o200k  # noqa: F401 (o200k is a fixture)

PNG_1x1 = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a5e3bd6f0000000049454e44ae426082")).decode()


def upstream_turns(sim) -> list[dict[str, Any]]:
    """Every Codex turn the sim received (HTTP bodies and WebSocket response.create frames), in order."""
    turns = []
    for recorded in sim.requests:
        if not recorded.path.endswith("/codex/responses"):
            continue
        if recorded.method == "POST" and isinstance(recorded.body, dict):
            turns.append(recorded.body)
        turns += [m for m in recorded.ws_messages if isinstance(m, dict) and m.get("type") == "response.create"
                  and m.get("generate") is not False]
    return turns


@asynccontextmanager
async def claude(data_dir, *, accounts: int = 1, **client_options) -> AsyncIterator[tuple[Any, Any, str, str]]:
    """(AsyncAnthropic client, sim, gateway url, key)."""
    async with running_sim(accounts=accounts) as sim:
        async with gateway_on_sim(data_dir, sim) as (gateway, url):
            key = api_key(gateway)
            client = anthropic_sdk.AsyncAnthropic(api_key=key, base_url=url, max_retries=0, **client_options)
            try:
                yield client, sim, url, key
            finally:
                await client.close()


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


async def test_plain_message(data_dir):
    async with claude(data_dir) as (client, sim, _, _):
        message = await client.messages.create(model="claude-sonnet-4-6", max_tokens=200, messages=[user("Hello")])
    assert message.type == "message" and message.role == "assistant" and message.stop_reason == "end_turn"
    assert [b.type for b in message.content] == ["text"] and message.content[0].text == "Echo: Hello"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert upstream_turns(sim)[-1]["model"] == "gpt-5.5"


async def test_stream_text(data_dir):
    async with claude(data_dir) as (client, sim, _, _):
        sim.script({"match": {"user_text": "story"}, "reply": {"text": "Once upon a time, there was a gateway."}})
        async with client.messages.stream(model="claude-sonnet-4-6", max_tokens=200,
                                          messages=[user("Tell a story")]) as stream:
            pieces = [piece async for piece in stream.text_stream]
            final = await stream.get_final_message()
    assert len(pieces) > 1 and "".join(pieces) == "Once upon a time, there was a gateway."
    assert final.stop_reason == "end_turn" and final.content[0].text == "".join(pieces)


WEATHER_TOOL = {"name": "get_weather", "description": "Weather of a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


async def test_tool_round_trip(data_dir):
    async with claude(data_dir) as (client, sim, _, _):
        sim.script({"match": {"user_text": "weather", "tool_output": "sunny"}, "reply": {"text": "It is sunny."}})
        sim.script({"match": {"user_text": "weather"},
                    "reply": {"function_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}, "times": 1})
        history = [user("What is the weather in Paris?")]
        first = await client.messages.create(model="claude-sonnet-4-6", max_tokens=200, messages=history,
                                             tools=[WEATHER_TOOL])
        assert first.stop_reason == "tool_use"
        call = next(b for b in first.content if b.type == "tool_use")
        assert call.name == "get_weather" and call.input == {"city": "Paris"} and call.id
        history += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                                  "content": "sunny, 24C"}]}]
        final = await client.messages.create(model="claude-sonnet-4-6", max_tokens=200, messages=history,
                                             tools=[WEATHER_TOOL])
    assert final.stop_reason == "end_turn" and final.content[0].text == "It is sunny."
    sent = upstream_turns(sim)[-1]
    assert sent["tools"][0]["name"] == "get_weather"
    # the follow-up chains on the upstream socket: only the tool output goes up, answering the sim's own call id
    assert sent["previous_response_id"] and call.id.startswith("call_")
    assert sent["input"] == [{"type": "function_call_output", "call_id": call.id, "output": "sunny, 24C"}]


@pytest.mark.parametrize("thinking", [{"type": "enabled", "budget_tokens": 4000}, {"type": "adaptive"}])
async def test_thinking_round_trip_carries_encrypted_reasoning(data_dir, thinking):
    async with claude(data_dir) as (client, sim, _, _):
        sim.script({"match": {"user_text": "puzzle"}, "reply": {"reasoning": "Count the legs first.", "text": "Six."}})
        history = [user("Solve the puzzle")]
        async with client.messages.stream(model="claude-opus-4-7", max_tokens=8000, thinking=thinking,
                                          messages=history) as stream:
            first = await stream.get_final_message()
        assert [b.type for b in first.content] == ["thinking", "text"]
        block = first.content[0]
        assert block.thinking == "Count the legs first." and block.signature
        history += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                    user("And the next one?")]
        # A new tool set is a new upstream socket (the backend's chain assumes tools unchanged), so the whole
        # history goes up again and the model's reasoning can only come from the thinking block's signature.
        second = await client.messages.create(model="claude-opus-4-7", max_tokens=8000, thinking=thinking,
                                              messages=history, tools=[WEATHER_TOOL])
    assert second.content[-1].type == "text"
    sent = upstream_turns(sim)
    assert sent[0]["include"] == ["reasoning.encrypted_content"] and sent[0]["reasoning"]["summary"] == "auto"
    assert sent[0]["model"] == "gpt-5.5" and sent[0]["reasoning"]["effort"] in ("medium", "high")
    assert [(i["type"], i.get("role")) for i in sent[1]["input"]] == [
        ("message", "user"), ("reasoning", None), ("message", "assistant"), ("message", "user")]
    replayed = [i for i in sent[1]["input"] if i.get("type") == "reasoning"]
    assert len(replayed) == 1 and replayed[0]["id"].startswith("rs_")
    # the sim minted that encrypted_content from the item id and the summary: it came back unchanged
    assert replayed[0]["encrypted_content"] == minted_encrypted(replayed[0]["id"] + "Count the legs first.")


async def test_vision_reaches_upstream_as_input_image(data_dir):
    async with claude(data_dir) as (client, sim, _, _):
        message = await client.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=[{
            "role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_1x1}},
                {"type": "text", "text": "What is in this picture?"}]}])
    assert message.content[0].type == "text"
    content = upstream_turns(sim)[-1]["input"][-1]["content"]
    assert content[0] == {"type": "input_image", "image_url": f"data:image/png;base64,{PNG_1x1}"}
    assert content[1] == {"type": "input_text", "text": "What is in this picture?"}


@pytest.mark.parametrize("model, effort", [("claude-opus-4-7", "high"), ("claude-sonnet-4-6", None),
                                           ("claude-haiku-4-5", "low")])
async def test_claude_names_resolve_through_the_shipped_aliases(data_dir, model, effort):
    async with claude(data_dir) as (client, sim, _, _):
        message = await client.messages.create(model=model, max_tokens=50, messages=[user("Hi")])
    sent = upstream_turns(sim)[-1]
    assert sent["model"] == "gpt-5.5" and message.model.startswith("gpt-5.5")
    assert (sent.get("reasoning") or {}).get("effort") == effort


async def test_stop_sequences_enforced(data_dir):
    async with claude(data_dir) as (client, sim, _, _):
        sim.script({"match": {"user_text": "count"}, "reply": {"text": "one, two, three, STOP four five"}})
        message = await client.messages.create(model="claude-sonnet-4-6", max_tokens=50, stop_sequences=["STOP"],
                                               messages=[user("count")])
        async with client.messages.stream(model="claude-sonnet-4-6", max_tokens=50, stop_sequences=["STOP", "four"],
                                          messages=[user("count")]) as stream:
            streamed = "".join([piece async for piece in stream.text_stream])
            final = await stream.get_final_message()
    assert message.content[0].text == "one, two, three, " and message.stop_reason == "stop_sequence"
    assert message.stop_sequence == "STOP"
    assert streamed == "one, two, three, " and final.stop_reason == "stop_sequence" and final.stop_sequence == "STOP"


async def test_auth_by_x_api_key_and_bearer_beta_query_and_head_root(data_dir):
    async with claude(data_dir) as (client, sim, url, key):
        body = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [user("Hi")]}
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            by_key = await http.post("/v1/messages?beta=true", json=body,
                                     headers={"x-api-key": key, "anthropic-version": "2023-06-01"})
            by_bearer = await http.post("/v1/messages", json=body, headers={"authorization": f"Bearer {key}"})
            wrong = await http.post("/v1/messages", json=body, headers={"x-api-key": "sk-wrong"})
            head = await http.head("/")
        bearer_client = anthropic_sdk.AsyncAnthropic(auth_token=key, base_url=url, max_retries=0)
        try:
            via_sdk = await bearer_client.beta.messages.create(model="claude-sonnet-4-6", max_tokens=20,
                                                               messages=[user("Hi")], betas=["tools-2024-05-16"])
        finally:
            await bearer_client.close()
    assert by_key.status_code == 200 and by_key.json()["content"][0]["text"] == "Echo: Hi"
    assert by_bearer.status_code == 200 and by_bearer.json()["type"] == "message"
    assert wrong.status_code == 401 and wrong.json()["type"] == "error"
    assert wrong.json()["error"]["type"] == "authentication_error"
    assert head.status_code == 200 and head.content == b""
    assert via_sdk.content[0].text == "Echo: Hi"


async def test_count_tokens_uses_o200k(data_dir, o200k):
    """A real Claude Code request (system, 24 tools, messages) counted by the gateway's native o200k tokenizer:
    exactly what the same formula gives with tiktoken's o200k_base, and within 2 % of the raw text's tokens."""
    fixture = json.loads((CLIENTS / "claude-code.messages.json").read_bytes())
    wanted = {k: fixture[k] for k in ("model", "system", "messages", "tools")}
    async with claude(data_dir) as (client, sim, _, _):
        counted = await client.messages.count_tokens(**wanted)
        small = await client.messages.count_tokens(model="claude-haiku-4-5", messages=[user("hello world")])
    assert counted.input_tokens == anthropic.count_tokens(orjson.dumps(wanted), o200k)["input_tokens"]
    reference = sum(o200k(p) for p in anthropic_text(wanted))
    assert reference > 10000 and abs(counted.input_tokens - reference) <= 0.02 * reference
    assert small.input_tokens == anthropic.count_tokens(orjson.dumps(
        {"model": "m", "messages": [user("hello world")]}), o200k)["input_tokens"]
    assert not upstream_turns(sim)  # counted locally


def sse_frames(raw: str) -> list[tuple[str, dict[str, Any]]]:
    frames = []
    for block in raw.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        frames.append((fields["event"], json.loads(fields["data"])))
    return frames


@pytest.mark.parametrize("reply, status, error_type, sdk_error", [
    ({"rate_limit": {"resets_in_seconds": 600}}, 429, "rate_limit_error", anthropic_sdk.RateLimitError),
    ({"http_status": 500}, 500, "api_error", anthropic_sdk.InternalServerError),
    ({"http_status": 503}, 529, "overloaded_error", anthropic_sdk.InternalServerError),
    ({"fail": {"code": "context_length_exceeded", "message": "Your input exceeds the context window."}},
     400, "invalid_request_error", anthropic_sdk.BadRequestError),
])
async def test_upstream_errors_before_output_use_anthropic_envelope(data_dir, reply, status, error_type, sdk_error):
    async with claude(data_dir) as (client, sim, url, key):
        sim.script({"match": {"user_text": "go"}, "reply": reply})
        with pytest.raises(sdk_error) as caught:
            await client.messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=[user("go")])
        async with httpx.AsyncClient(base_url=url, headers={"x-api-key": key}, timeout=30) as http:
            streamed = await http.post("/v1/messages", json={"model": "claude-sonnet-4-6", "max_tokens": 50,
                                                             "stream": True, "messages": [user("go")]})
    assert caught.value.status_code == status
    assert caught.value.body["type"] == "error" and caught.value.body["error"]["type"] == error_type
    # nothing was streamed yet, so the stream request gets a real HTTP error too
    assert streamed.status_code == status and streamed.json()["error"]["type"] == error_type
    if status == 429:
        assert 0 < int(caught.value.response.headers["retry-after"]) <= 600


async def test_banned_account_then_no_account(data_dir):
    async with claude(data_dir) as (client, sim, _, _):
        sim.script({"match": {"user_text": "go"}, "reply": {"ban": True}})
        with pytest.raises(anthropic_sdk.AuthenticationError) as first:  # account_deactivated → 401
            await client.messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=[user("go")])
        with pytest.raises(anthropic_sdk.APIStatusError) as later:
            await client.messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=[user("hello")])
    assert first.value.body["error"]["type"] == "authentication_error"
    assert later.value.status_code == 529 and later.value.body["error"]["type"] == "overloaded_error"


async def test_ban_fails_over_to_another_account(data_dir):
    async with claude(data_dir, accounts=2) as (client, sim, _, _):
        sim.script({"match": {"user_text": "go"}, "reply": {"ban": True}, "times": 1})
        message = await client.messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=[user("go")])
    assert message.content[0].text == "Echo: go"
    assert sum(a.banned for a in sim.accounts) == 1


@pytest.mark.parametrize("reply, message", [
    ({"fail": {"code": "server_error", "message": "boom"}}, "boom"),
    ({"error_event": {"code": "server_error", "message": "event boom"}}, "event boom"),
    ({"disconnect_after": 7}, None),
])
async def test_mid_stream_failure_ends_with_error_event(data_dir, reply, message):
    async with claude(data_dir) as (client, sim, url, key):
        sim.script({"match": {"user_text": "go"}, "reply": {"text": "a partial answer that is long enough", **reply}})
        async with httpx.AsyncClient(base_url=url, headers={"x-api-key": key}, timeout=30) as http:
            streamed = await http.post("/v1/messages", json={"model": "claude-sonnet-4-6", "max_tokens": 50,
                                                             "stream": True, "messages": [user("go")]})
        with pytest.raises(anthropic_sdk.APIStatusError) as caught:
            async with client.messages.stream(model="claude-sonnet-4-6", max_tokens=50,
                                              messages=[user("go")]) as stream:
                async for _ in stream.text_stream:
                    pass
    assert streamed.status_code == 200
    frames = sse_frames(streamed.text)
    kinds = [kind for kind, _ in frames]
    assert kinds[0] == "message_start" and "content_block_delta" in kinds
    assert kinds[-1] == "error" and "message_stop" not in kinds
    error = frames[-1][1]["error"]
    assert error["type"] == "api_error" and (message is None or error["message"] == message)
    assert caught.value.body["error"]["type"] == "api_error"


async def test_streamed_tool_use_and_thinking_blocks(data_dir):
    async with claude(data_dir) as (client, sim, _, _):
        sim.script({"match": {"user_text": "weather"}, "reply": {
            "reasoning": "The user wants weather.", "function_calls": [{"name": "get_weather",
                                                                        "arguments": {"city": "Paris"}}]}})
        async with client.messages.stream(model="claude-sonnet-4-6", max_tokens=4000, tools=[WEATHER_TOOL],
                                          thinking={"type": "enabled", "budget_tokens": 1024},
                                          messages=[user("What is the weather in Paris?")]) as stream:
            events = [event async for event in stream]
            final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "tool_use"] and final.stop_reason == "tool_use"
    assert final.content[0].signature and final.content[1].input == {"city": "Paris"}
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and "input_json" in kinds
    assert upstream_turns(sim)[-1]["reasoning"]["effort"] == "low"


async def test_structured_output_with_a_tuple_comes_back_as_an_array(data_dir):
    schema = {"type": "object", "properties": {"point": {"type": "array", "prefixItems": [
        {"type": "number"}, {"type": "string"}]}}, "required": ["point"], "additionalProperties": False}
    async with claude(data_dir) as (client, sim, url, key):
        message = await client.messages.create(model="claude-sonnet-4-6", max_tokens=200, messages=[user("a point")],
                                               extra_body={"output_config": {"format": {"type": "json_schema",
                                                                                        "schema": schema}}})
        async with client.messages.stream(model="claude-sonnet-4-6", max_tokens=200, messages=[user("a point")],
                                          extra_body={"output_config": {"format": {"type": "json_schema",
                                                                                   "schema": schema}}}) as stream:
            streamed = "".join([piece async for piece in stream.text_stream])
    sent = upstream_turns(sim)[0]["text"]["format"]
    assert sent["schema"]["properties"]["point"]["type"] == "object" and sent["strict"] is True
    for text in (message.content[0].text, streamed):
        point = json.loads(text)["point"]
        assert isinstance(point, list) and len(point) == 2
        assert isinstance(point[0], (int, float)) and isinstance(point[1], str)
