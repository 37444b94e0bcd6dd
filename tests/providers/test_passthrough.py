"""Same protocol on both sides: the client's request reaches the provider with only auth and model changed, and
the provider's answer reaches the client byte for byte — through the official SDKs, streamed and not, tools
included."""

from __future__ import annotations

import anthropic
import httpx
import openai
import trio
from google import genai
from google.genai import types as genai_types

from .fakes import ANTHROPIC_KEY, ARGS, GEMINI_KEY, OPENAI_KEY
from .helpers import provider_stack

WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                                  "parameters": {"type": "object",
                                                                 "properties": {"city": {"type": "string"}},
                                                                 "required": ["city"]}}}


async def test_openai_chat_stream_passes_through_byte_for_byte(data_dir):
    async with provider_stack(data_dir) as stack:
        body = {"model": "fakeai/fake-gpt", "stream": True, "temperature": 0.5,
                "messages": [{"role": "user", "content": "hi"}]}
        async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
            response = await client.post("/v1/chat/completions", json=body,
                                          headers={"authorization": f"Bearer {stack.key}"})
        assert response.status_code == 200, response.text
        assert response.content == stack.fakes.sent[-1]
        assert response.headers["x-codex-trio-provider"] == "fakeai"
        received = stack.fakes.last("/chat/completions")
        assert received.headers["authorization"] == f"Bearer {OPENAI_KEY}"  # the provider's key, not the gateway's
        assert received.body == {**body, "model": "fake-gpt"}  # only the model changed


async def test_openai_sdk_chat_to_chat_provider_streamed_and_not_with_tools(data_dir):
    async with provider_stack(data_dir) as stack:
        client = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=stack.key, max_retries=0)
        reply = await client.chat.completions.create(model="fake-gpt", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "Hello from fake-openai!"
        assert stack.fakes.last("/chat/completions").body["model"] == "fake-gpt"
        stream = await client.chat.completions.create(
            model="fake-gpt", messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER_TOOL], stream=True)
        calls = {}
        async for chunk in stream:
            for call in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
                entry = calls.setdefault(call.index, {"name": "", "arguments": ""})
                entry["name"] += call.function.name or ""
                entry["arguments"] += call.function.arguments or ""
        assert calls == {0: {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
        assert stack.fakes.last("/chat/completions").body["tools"] == [WEATHER_TOOL]


async def test_openai_sdk_responses_to_responses_provider_passes_through(data_dir):
    async with provider_stack(data_dir) as stack:
        client = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=stack.key, max_retries=0)
        reply = await client.responses.create(model="fake-resp", input="hi")
        assert reply.output_text == "Hello from fake-responses!"
        assert stack.fakes.last("/responses").headers["authorization"] == f"Bearer {OPENAI_KEY}"
        async with httpx.AsyncClient(base_url=stack.url, timeout=30) as raw:
            response = await raw.post("/v1/responses", json={"model": "fake-resp", "input": "hi", "stream": True},
                                      headers={"authorization": f"Bearer {stack.key}"})
        assert response.content == stack.fakes.sent[-1]


async def test_anthropic_sdk_to_anthropic_provider_streamed_and_not_with_tools(data_dir):
    async with provider_stack(data_dir) as stack:
        client = anthropic.AsyncAnthropic(base_url=stack.url, api_key=stack.key, max_retries=0)
        message = await client.messages.create(model="claude-fake-1", max_tokens=100,
                                               messages=[{"role": "user", "content": "hi"}])
        assert message.content[0].text == "Hello from fake-anthropic!"
        received = stack.fakes.last("/v1/messages")
        assert received.headers["x-api-key"] == ANTHROPIC_KEY and received.headers["anthropic-version"]
        tool = {"name": "get_weather", "description": "Weather", "input_schema": {
            "type": "object", "properties": {"city": {"type": "string"}}}}
        async with client.messages.stream(model="fakeclaude/claude-fake-1", max_tokens=100, tools=[tool],
                                          messages=[{"role": "user", "content": "weather?"}]) as stream:
            final = await stream.get_final_message()
        assert final.content[0].type == "tool_use" and final.content[0].input == ARGS
        assert stack.fakes.last("/v1/messages").body["model"] == "claude-fake-1"
        async with httpx.AsyncClient(base_url=stack.url, timeout=30) as raw:
            response = await raw.post("/v1/messages", json={"model": "claude-fake-1", "max_tokens": 50, "stream": True,
                                                            "messages": [{"role": "user", "content": "hi"}]},
                                      headers={"x-api-key": stack.key, "anthropic-version": "2023-06-01"})
        assert response.content == stack.fakes.sent[-1]


def gemini_client(url: str, key: str) -> genai.Client:
    """The sync SDK client (its async view needs asyncio; calls run in a worker thread while trio serves)."""
    return genai.Client(api_key=key, http_options=genai_types.HttpOptions(base_url=url + "/", api_version="v1beta"))


async def test_gemini_sdk_to_gemini_provider_streamed_and_not_with_tools(data_dir):
    async with provider_stack(data_dir) as stack:
        client = gemini_client(stack.url, stack.key)
        reply = await trio.to_thread.run_sync(lambda: client.models.generate_content(model="gemini-fake",
                                                                                     contents="hi"))
        assert reply.text == "Hello from fake-gemini!"
        received = stack.fakes.last("gemini-fake:generateContent")
        assert received.headers["x-goog-api-key"] == GEMINI_KEY
        texts = await trio.to_thread.run_sync(lambda: [c.text for c in client.models.generate_content_stream(
            model="gemini-fake", contents="hi")])
        assert "".join(texts) == "Hello from fake-gemini!"
        tool = genai_types.Tool(function_declarations=[genai_types.FunctionDeclaration(
            name="get_weather", description="Weather", parameters={"type": "OBJECT", "properties": {
                "city": {"type": "STRING"}}})])
        config = genai_types.GenerateContentConfig(
            tools=[tool], automatic_function_calling=genai_types.AutomaticFunctionCallingConfig(disable=True))
        reply = await trio.to_thread.run_sync(lambda: client.models.generate_content(
            model="fakegem/gemini-fake", contents="weather?", config=config))
        assert reply.function_calls[0].name == "get_weather" and reply.function_calls[0].args == ARGS
        assert stack.fakes.received[-1].path.startswith("/v1beta/models/gemini-fake:generateContent")
        async with httpx.AsyncClient(base_url=stack.url, timeout=30) as raw:
            response = await raw.post("/v1beta/models/gemini-fake:streamGenerateContent?alt=sse",
                                      json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
                                      headers={"x-goog-api-key": stack.key})
        assert response.content == stack.fakes.sent[-1]
        client.close()


async def test_the_providers_models_are_listed_with_their_label(data_dir):
    async with provider_stack(data_dir) as stack:
        client = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=stack.key, max_retries=0)
        ids = [m.id async for m in client.models.list()]
        assert {"fakeai/fake-gpt", "fakeresp/fake-resp", "fakeclaude/claude-fake-1", "fakegem/gemini-fake"} <= set(ids)


async def test_compaction_of_a_provider_model_is_a_400_that_says_why(data_dir):
    async with provider_stack(data_dir) as stack:
        response = await stack.admin.post("/v1/responses/compact", json={"model": "fake-gpt", "input": "x"})
        assert response.status_code == 400 and response.json()["error"]["code"] == "compaction_unsupported"
