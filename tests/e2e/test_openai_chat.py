"""Chat Completions through the official openai SDK, against the running gateway and simulator."""

from __future__ import annotations

import base64
import json
import re

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def real_turns(stack) -> list[dict]:
    """Upstream turns that asked for generation (the CLI's prewarm frames carry generate=false)."""
    return [t for t in stack.upstream_turns() if t.get("generate") is not False]


async def test_chat_plain(stack):
    reply = await stack.client.chat.completions.create(
        model="gpt-5.5", messages=[{"role": "user", "content": "Hello there"}])
    assert reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    assert reply.choices[0].message.role == "assistant"
    assert "Hello there" in reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.model == "gpt-5.5"
    assert real_turns(stack)[-1]["model"] == "gpt-5.5"


async def test_chat_stream_with_usage(stack):
    stream = await stack.client.chat.completions.create(
        model="gpt-5.5", messages=[{"role": "user", "content": "Stream this please"}], stream=True,
        stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Stream this please" in text
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert len({c.id for c in chunks}) == 1


async def test_chat_tool_round_trip(stack):
    stack.sim.script({"match": {"user_text": "weather"},
                      "reply": {"function_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}})
    stack.sim.script({"match": {"tool_output": "21C"}, "reply": {"text": "It is 21 degrees in Paris."}})
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = await stack.client.chat.completions.create(model="gpt-5.5", messages=messages, tools=tools)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "21C and sunny"}]
    second = await stack.client.chat.completions.create(model="gpt-5.5", messages=messages, tools=tools)
    assert second.choices[0].message.content == "It is 21 degrees in Paris."
    sent = real_turns(stack)[-1]
    # The history the client resent is already on the upstream socket: only the tool result goes up.
    assert sent.get("previous_response_id")
    outputs = [item for item in sent["input"] if item.get("type") == "function_call_output"]
    assert outputs and outputs[0]["call_id"] == call.id and "21C" in str(outputs[0]["output"])
    assert sent["tools"][0]["name"] == "get_weather"


async def test_chat_tool_call_stream(stack):
    stack.sim.script({"match": {"user_text": "weather"},
                      "reply": {"function_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}})
    tools = [{"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    stream = await stack.client.chat.completions.create(
        model="gpt-5.5", messages=[{"role": "user", "content": "weather in Oslo"}], tools=tools, stream=True)
    chunks = [chunk async for chunk in stream]
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].function.name == "get_weather" and deltas[0].id
    assert json.loads("".join(d.function.arguments or "" for d in deltas)) == {"city": "Oslo"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


async def test_chat_json_schema_structured_output(stack):
    schema = {"type": "object", "properties": {
        "name": {"type": "string"}, "age": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["name", "age", "tags"], "additionalProperties": False}
    reply = await stack.client.chat.completions.create(
        model="gpt-5.5", messages=[{"role": "user", "content": "Describe a person"}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}})
    parsed = json.loads(reply.choices[0].message.content)
    assert set(parsed) == {"name", "age", "tags"}
    assert isinstance(parsed["name"], str) and isinstance(parsed["age"], int)
    assert all(isinstance(tag, str) for tag in parsed["tags"])
    text_format = real_turns(stack)[-1]["text"]["format"]
    assert text_format["type"] == "json_schema" and text_format["name"] == "person"
    assert text_format["schema"] == schema and text_format["strict"] is True


async def test_chat_vision_image_reaches_upstream(stack):
    pixel = base64.b64encode(PNG_MAGIC + b"not-really-a-png").decode()
    uri = f"data:image/png;base64,{pixel}"
    reply = await stack.client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": uri, "detail": "high"}}]}])
    assert reply.choices[0].message.content
    user = [item for item in real_turns(stack)[-1]["input"] if item.get("role") == "user"][-1]
    images = [part for part in user["content"] if part["type"] == "input_image"]
    assert images and images[0]["image_url"] == uri
    assert [p["text"] for p in user["content"] if p["type"] == "input_text"] == ["What is in this image?"]


async def test_chat_image_generation_inline_markdown(stack):
    stack.sim.script({"match": {"user_text": "draw"}, "reply": {"image": {"format": "png"}, "text": "Here it is."}})
    reply = await stack.client.chat.completions.create(
        model="gpt-5.5", messages=[{"role": "user", "content": "draw a red fox"}],
        tools=[{"type": "image_generation", "output_format": "png"}])
    content = reply.choices[0].message.content
    found = re.search(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", content)
    assert found, content[:200]
    assert base64.b64decode(found.group(1)).startswith(PNG_MAGIC)
    assert real_turns(stack)[-1]["tools"] == [{"type": "image_generation", "output_format": "png"}]


async def test_images_generate_returns_png(stack):
    stack.sim.script({"match": {"user_text": "lighthouse"}, "reply": {"image": {}}})
    result = await stack.client.images.generate(model="gpt-image-1", prompt="a lighthouse at dusk", size="1024x1024")
    (image,) = result.data
    raw = base64.b64decode(image.b64_json)
    assert raw.startswith(PNG_MAGIC) and len(raw) > 100
    tools = real_turns(stack)[-1]["tools"]
    assert any(tool["type"] == "image_generation" for tool in tools)


async def test_chat_alias_resolves_to_catalog_model_and_effort(stack):
    reply = await stack.client.chat.completions.create(
        model="claude-opus-4-7", messages=[{"role": "user", "content": "Hello alias"}])
    assert "Hello alias" in reply.choices[0].message.content
    sent = real_turns(stack)[-1]
    assert sent["model"] == "gpt-5.5"
    assert sent["reasoning"]["effort"] == "high"
