"""The Responses API through the official openai SDK (HTTP and the WebSocket form), against gateway + sim."""

from __future__ import annotations

import json

import httpx
import pytest


def real_turns(stack) -> list[dict]:
    return [t for t in stack.upstream_turns() if t.get("generate") is not False]


async def test_responses_plain(stack):
    reply = await stack.client.responses.create(model="gpt-5.5", input="Tell me something")
    assert reply.status == "completed"
    assert "Tell me something" in reply.output_text
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    assert real_turns(stack)[-1]["input"][-1]["content"][0]["text"] == "Tell me something"


async def test_responses_stream(stack):
    stream = await stack.client.responses.create(model="gpt-5.5", input="Stream me", stream=True)
    events = [event async for event in stream]
    types = [event.type for event in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "Stream me" in "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert events[-1].response.usage.total_tokens > 0
    assert "codex.rate_limits" not in types


async def test_responses_stream_false_explicit(stack):
    response = await stack.client.post("/responses", cast_to=httpx.Response,
                                       body={"model": "gpt-5.5", "input": "Explicitly collected", "stream": False})
    body = response.json()
    assert response.headers["content-type"].startswith("application/json")
    assert body["object"] == "response" and body["status"] == "completed"
    text = "".join(part["text"] for item in body["output"] if item["type"] == "message" for part in item["content"])
    assert "Explicitly collected" in text


async def test_responses_tools_round_trip(stack):
    stack.sim.script({"match": {"user_text": "weather"},
                      "reply": {"function_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}]}})
    stack.sim.script({"match": {"tool_output": "30C"}, "reply": {"text": "Rome is hot: 30 degrees."}})
    tools = [{"type": "function", "name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
    first = await stack.client.responses.create(model="gpt-5.5", input="weather in Rome?", tools=tools)
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Rome"}
    second = await stack.client.responses.create(
        model="gpt-5.5", tools=tools,
        input=[{"role": "user", "content": "weather in Rome?"}, call.model_dump(exclude_none=True),
               {"type": "function_call_output", "call_id": call.call_id, "output": "30C"}])
    assert second.output_text == "Rome is hot: 30 degrees."
    sent = real_turns(stack)[-1]
    assert any(i.get("type") == "function_call_output" and i["output"] == "30C" for i in sent["input"])


async def test_responses_chained_previous_response_id(stack):
    first = await stack.client.responses.create(model="gpt-5.5", input="First question")
    second = await stack.client.responses.create(model="gpt-5.5", input="Second question",
                                                 previous_response_id=first.id)
    assert "Second question" in second.output_text
    sockets = stack.sockets()
    assert len(sockets) == 1, "the chained turn must reuse the conversation's upstream socket"
    frames = [m for m in sockets[0].ws_messages if isinstance(m, dict) and m.get("generate") is not False]
    assert len(frames) == 2
    # (the first turn chains on the socket's prewarm response, as codex does)
    assert frames[1]["previous_response_id"] == first.id != frames[0]["previous_response_id"]
    # Only the new input goes up on the chained turn.
    texts = [part["text"] for item in frames[1]["input"] if item.get("role") == "user" for part in item["content"]]
    assert texts == ["Second question"]


async def test_responses_unknown_previous_response_id(stack):
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        await stack.client.responses.create(model="gpt-5.5", input="x", previous_response_id="resp_nope")
    assert caught.value.body["code"] == "previous_response_not_found"


async def test_responses_compact(stack):
    first = await stack.client.responses.create(model="gpt-5.5", input="A long conversation to compact")
    response = await stack.client.post("/responses/compact", cast_to=httpx.Response, body={
        "model": "gpt-5.5", "input": [{"role": "user", "content": "A long conversation to compact"},
                                      *[item.model_dump(exclude_none=True) for item in first.output]]})
    body = response.json()
    assert response.status_code == 200
    assert any(item.get("type") in ("compaction", "compaction_summary") for item in body["output"]), body
    assert stack.sim.requests_to("/codex/responses/compact", "POST")


async def test_responses_compact_through_the_sdk(stack):
    compacted = await stack.client.responses.compact(model="gpt-5.5", input=[
        {"role": "user", "content": "Summarise our long chat"},
        {"role": "assistant", "content": "We talked about many things."}])
    types = [item.type for item in compacted.output]
    assert "compaction" in types or "compaction_summary" in types, types
    (call,) = stack.sim.requests_to("/codex/responses/compact", "POST")
    assert call.body["model"] == "gpt-5.5"
    assert [item.get("role") for item in call.body["input"] if item.get("type", "message") == "message"][-2:] == [
        "user", "assistant"]
