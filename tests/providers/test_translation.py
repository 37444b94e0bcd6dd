"""A client whose protocol is not the provider's: its request is translated through the canonical turn and the
provider's stream comes back as the client's protocol, through the official SDKs, streamed and not, tools and
tool results included."""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import trio

from tests.e2e.test_ollama_client import ollama_bridge
from tests.foundation.ws_client import GatewaySocket

from .fakes import ARGS, running_fakes
from .helpers import add_providers, provider_bodies, provider_stack
from .test_passthrough import WEATHER_TOOL, gemini_client

ANTHROPIC_TOOL = {"name": "get_weather", "description": "Weather of a city",
                  "input_schema": WEATHER_TOOL["function"]["parameters"]}


async def openai_tool_round(client: openai.AsyncOpenAI, model: str, *, stream: bool) -> tuple[str, str]:
    """Ask with a tool, answer its call, return (the call's arguments, the final text)."""
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "weather?"}]
    if stream:
        chunks = [c async for c in await client.chat.completions.create(model=model, messages=messages,
                                                                          tools=[WEATHER_TOOL], stream=True)]
        calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
        call_id, name = calls[0].id, calls[0].function.name
        arguments = "".join(tc.function.arguments or "" for tc in calls)
    else:
        reply = await client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])
        call = reply.choices[0].message.tool_calls[0]
        call_id, name, arguments = call.id, call.function.name, call.function.arguments
        assert reply.choices[0].finish_reason == "tool_calls"
    assert name == "get_weather"
    messages += [{"role": "assistant", "content": None, "tool_calls": [
                     {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]},
                 {"role": "tool", "tool_call_id": call_id, "content": "sunny"}]
    if stream:
        chunks = [c async for c in await client.chat.completions.create(model=model, messages=messages,
                                                                          tools=[WEATHER_TOOL], stream=True)]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        text = (await client.chat.completions.create(model=model, messages=messages,
                                                     tools=[WEATHER_TOOL])).choices[0].message.content
    return arguments, text


async def test_openai_sdk_to_anthropic_provider(data_dir):
    async with provider_stack(data_dir) as stack:
        client = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=stack.key, max_retries=0)
        for stream in (False, True):
            arguments, text = await openai_tool_round(client, "claude-fake-1", stream=stream)
            assert json.loads(arguments) == ARGS and text == "The tool said: sunny"
        sent = stack.fakes.last("/v1/messages").body
        assert sent["system"] == "Be brief." and sent["max_tokens"] > 0 and sent["stream"] is True
        assert sent["tools"] == [ANTHROPIC_TOOL]
        assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
        assert sent["messages"][1]["content"][0] == {"type": "tool_use", "id": sent["messages"][2]["content"][0][
            "tool_use_id"], "name": "get_weather", "input": ARGS}


async def test_openai_sdk_to_gemini_provider(data_dir):
    async with provider_stack(data_dir) as stack:
        client = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=stack.key, max_retries=0)
        for stream in (False, True):
            arguments, text = await openai_tool_round(client, "fakegem/gemini-fake", stream=stream)
            assert json.loads(arguments) == ARGS and text == "The tool said: sunny"
        sent = stack.fakes.last("gemini-fake:streamGenerateContent")
        assert "alt=sse" in sent.path
        assert sent.body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
        assert sent.body["contents"][-1]["parts"][0]["functionResponse"]["name"] == "get_weather"


async def test_anthropic_sdk_to_openai_chat_provider(data_dir):
    async with provider_stack(data_dir) as stack:
        client = anthropic.AsyncAnthropic(base_url=stack.url, api_key=stack.key, max_retries=0)
        message = await client.messages.create(model="fake-gpt", max_tokens=100, system="Be brief.",
                                               messages=[{"role": "user", "content": "hi"}])
        assert message.content[0].text == "Hello from fake-openai!"
        assert message.usage.input_tokens == 11 and message.usage.output_tokens == 7
        async with client.messages.stream(model="fake-gpt", max_tokens=100, tools=[ANTHROPIC_TOOL],
                                          messages=[{"role": "user", "content": "weather?"}]) as stream:
            final = await stream.get_final_message()
        use = final.content[-1]
        assert use.type == "tool_use" and use.input == ARGS and final.stop_reason == "tool_use"
        reply = await client.messages.create(model="fake-gpt", max_tokens=100, tools=[ANTHROPIC_TOOL], messages=[
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": use.id, "name": use.name, "input": use.input}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "rainy"}]}])
        assert reply.content[0].text == "The tool said: rainy"
        sent = stack.fakes.last("/chat/completions").body
        call = sent["messages"][-2]["tool_calls"][0]["function"]
        assert call["name"] == "get_weather" and json.loads(call["arguments"]) == ARGS
        assert sent["messages"][-1] == {"role": "tool", "tool_call_id": use.id, "content": "rainy"}


async def test_openai_responses_sdk_to_chat_provider(data_dir):
    async with provider_stack(data_dir) as stack:
        client = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=stack.key, max_retries=0)
        reply = await client.responses.create(model="fake-gpt", input="hi")
        assert reply.output_text == "Hello from fake-openai!"
        stream = await client.responses.create(model="fake-gpt", input="weather?", stream=True, tools=[
            {"type": "function", "name": "get_weather", "parameters": WEATHER_TOOL["function"]["parameters"]}])
        events = [e async for e in stream]
        done = [e for e in events if e.type == "response.output_item.done"]
        assert done[0].item.type == "function_call" and json.loads(done[0].item.arguments) == ARGS
        assert events[-1].type == "response.completed"


async def test_gemini_sdk_to_anthropic_provider(data_dir):
    async with provider_stack(data_dir) as stack:
        client = gemini_client(stack.url, stack.key)
        reply = await trio.to_thread.run_sync(lambda: client.models.generate_content(model="claude-fake-1",
                                                                                     contents="hi"))
        assert reply.text == "Hello from fake-anthropic!"
        texts = await trio.to_thread.run_sync(lambda: [c.text for c in client.models.generate_content_stream(
            model="claude-fake-1", contents="hi") if c.text])
        assert "".join(texts) == "Hello from fake-anthropic!"
        client.close()


async def test_the_responses_websocket_reaches_a_provider(data_dir):
    async with provider_stack(data_dir) as stack:
        socket = await GatewaySocket.connect(stack.url, stack.key)
        await socket.send({"type": "response.create", "model": "claude-fake-1", "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]})
        events = []
        with trio.fail_after(20):
            while not events or events[-1]["type"] not in ("response.completed", "response.failed", "error"):
                events.append(await socket.receive())
        assert events[-1]["type"] == "response.completed", events[-1]
        assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == \
            "Hello from fake-anthropic!"
        await socket.aclose()


async def test_the_ollama_client_reaches_a_provider(data_dir):
    async with running_fakes() as fakes:
        async with ollama_bridge(data_dir) as (_, gateway, url, client):
            admin_url = gateway.main_listener.status.url
            async with httpx.AsyncClient(base_url=admin_url, headers={
                    "authorization": f"Bearer {gateway.config.settings.server.proxy_api_key}"}) as admin:
                await add_providers(admin, provider_bodies(fakes))
            reply = await client.chat(model="claude-fake-1:latest", messages=[{"role": "user", "content": "hi"}])
            assert reply.message.content == "Hello from fake-anthropic!"
            parts = [part.message.content async for part in await client.chat(
                model="fakegem/gemini-fake", messages=[{"role": "user", "content": "hi"}], stream=True)]
            assert "".join(parts) == "Hello from fake-gemini!"
