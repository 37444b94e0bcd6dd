"""The official `anthropic` SDK against the whole gateway on the simulator (issue #7)."""

from __future__ import annotations

import base64
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import anthropic as anthropic_sdk
import httpx
import pytest

from codex_trio.sim import running_sim
from codex_trio.sim.turns import _encrypted as minted_encrypted
from tests.conftest import api_key, gateway_on_sim

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
