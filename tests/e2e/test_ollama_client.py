"""The Ollama listener end to end: the official `ollama` Python client against the bridge and the simulator.

The client validates every reply with its own pydantic models, so a reply shape it does not accept fails here."""

from __future__ import annotations

import base64
import json
from contextlib import asynccontextmanager
from pathlib import Path

import ollama
import pytest
import trio

from codex_trio.sim import running_sim
from tests.conftest import gateway_on_sim

MODEL = "gpt-5.5"
# A 1x1 PNG: the bridge must forward it as an input_image upstream.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city.",
    "parameters": {"type": "object", "required": ["city"],
                   "properties": {"city": {"type": "string", "description": "the city name"}}}}}


@asynccontextmanager
async def ollama_bridge(data_dir: Path, local: dict | None = None):
    """(sim, gateway, ollama URL, AsyncClient) with the Ollama listener on 127.0.0.1:0."""
    settings = {"ollama": {"enabled": True, "port": 0, **(local or {}).get("ollama", {})}}
    settings.update({k: v for k, v in (local or {}).items() if k != "ollama"})
    async with running_sim(accounts=1) as sim:
        async with gateway_on_sim(data_dir, sim, local=settings) as (gateway, _):
            url = gateway.ollama.listener.status.url
            assert url, gateway.ollama.status()
            yield sim, gateway, url, ollama.AsyncClient(host=url, timeout=30)


def upstream_bodies(sim) -> list[dict]:
    """Every turn the gateway sent upstream: WebSocket `response.create` messages and HTTP POST bodies."""
    bodies = []
    for recorded in sim.requests_to("/codex/responses"):
        if recorded.method == "POST":
            bodies.append(recorded.body)
        bodies += [m for m in recorded.ws_messages or [] if m.get("type") == "response.create"
                   and m.get("generate") is not False]
    return bodies


def last_upstream(sim) -> dict:
    bodies = upstream_bodies(sim)
    assert bodies, "no request reached the backend"
    return bodies[-1]


async def test_chat_plain_and_stream(data_dir):
    async with ollama_bridge(data_dir) as (sim, _, _, client):
        sim.script({"match": {"user_text": "Hello"}, "reply": {"text": "Hi from the sim."}})
        reply = await client.chat(model=MODEL, messages=[{"role": "user", "content": "Hello"}], stream=False)
        assert reply.message.role == "assistant"
        assert reply.message.content == "Hi from the sim."
        assert reply.done is True and reply.done_reason == "stop"
        assert reply.model == MODEL
        assert reply.prompt_eval_count and reply.eval_count

        chunks = [chunk async for chunk in await client.chat(
            model=MODEL, messages=[{"role": "user", "content": "Hello"}], stream=True)]
        assert len(chunks) > 2
        assert all(not c.done for c in chunks[:-1]) and chunks[-1].done
        assert "".join(c.message.content or "" for c in chunks) == "Hi from the sim."
        assert chunks[-1].done_reason == "stop"
        assert last_upstream(sim)["model"] == MODEL


async def test_chat_tool_round_trip(data_dir):
    async with ollama_bridge(data_dir) as (sim, _, _, client):
        sim.script({"match": {"user_text": "weather"}, "reply": {
            "function_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}})
        sim.script({"match": {"tool_output": "21C"}, "reply": {"text": "It is 21C in Paris."}})
        messages = [{"role": "user", "content": "What is the weather in Paris?"}]
        first = await client.chat(model=MODEL, messages=messages, tools=[WEATHER_TOOL], stream=False)
        calls = first.message.tool_calls
        assert calls and calls[0].function.name == "get_weather"
        assert calls[0].function.arguments == {"city": "Paris"}  # an object, as Ollama sends it
        assert first.done_reason in ("stop", "tool_calls")
        upstream_tools = last_upstream(sim)["tools"]
        assert any(t.get("name") == "get_weather" for t in upstream_tools)

        messages += [first.message, {"role": "tool", "tool_name": "get_weather", "content": "21C"}]
        final = await client.chat(model=MODEL, messages=messages, tools=[WEATHER_TOOL], stream=False)
        assert final.message.content == "It is 21C in Paris."
        body = last_upstream(sim)
        output = next(i for i in body["input"] if i.get("type") == "function_call_output")
        assert output["output"] == "21C" and output["call_id"]
        calls = [i for i in body["input"] if i.get("type") == "function_call"]
        if calls:  # the full history was sent
            assert calls[0]["call_id"] == output["call_id"] and calls[0]["name"] == "get_weather"
            assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}
        else:  # chained on the upstream socket: only the new items follow the previous response
            assert body.get("previous_response_id")


async def test_chat_tool_call_streamed(data_dir):
    async with ollama_bridge(data_dir) as (sim, _, _, client):
        sim.script({"match": {"user_text": "weather"}, "reply": {
            "function_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}})
        chunks = [c async for c in await client.chat(
            model=MODEL, messages=[{"role": "user", "content": "weather in Oslo"}], tools=[WEATHER_TOOL], stream=True)]
        calls = [call for c in chunks for call in (c.message.tool_calls or [])]
        assert [(c.function.name, c.function.arguments) for c in calls] == [("get_weather", {"city": "Oslo"})]
        assert chunks[-1].done


async def test_chat_images_reach_upstream_as_input_image(data_dir):
    async with ollama_bridge(data_dir) as (sim, _, _, client):
        reply = await client.chat(model=MODEL, stream=False, messages=[
            {"role": "user", "content": "What is in this picture?", "images": [PNG]}])
        assert reply.done
        user = [i for i in last_upstream(sim)["input"] if i.get("role") == "user"][-1]
        images = [p for p in user["content"] if p.get("type") == "input_image"]
        assert len(images) == 1
        assert images[0]["image_url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
        assert any(p.get("type") == "input_text" and "picture" in p["text"] for p in user["content"])


@pytest.mark.parametrize("think, effort", [(True, None), ("low", "low"), ("medium", "medium"),
                                           ("high", "high"), ("xhigh", "xhigh")])
async def test_chat_think_sets_effort_and_shows_thinking(data_dir, think, effort):
    async with ollama_bridge(data_dir) as (sim, gateway, _, client):
        if effort is None:  # `think: true` asks for the model's default effort
            effort = gateway.services.catalog.entry(MODEL)["default_reasoning_level"]
        sim.script({"match": {"user_text": "ponder"}, "reply": {"reasoning": "Weighing the options",
                                                                 "text": "Done."}})
        reply = await client.chat(model=MODEL, messages=[{"role": "user", "content": "ponder this"}],
                                  think=think, stream=False)
        assert reply.message.content == "Done."
        assert reply.message.thinking == "Weighing the options"
        assert last_upstream(sim)["reasoning"] == {"effort": effort, "summary": "auto"}

        chunks = [c async for c in await client.chat(
            model=MODEL, messages=[{"role": "user", "content": "ponder this"}], think=think, stream=True)]
        assert "".join(c.message.thinking or "" for c in chunks) == "Weighing the options"
        assert "".join(c.message.content or "" for c in chunks) == "Done."


async def test_chat_think_false_hides_thinking(data_dir):
    async with ollama_bridge(data_dir) as (sim, _, _, client):
        sim.script({"match": {"user_text": "ponder"}, "reply": {"reasoning": "Weighing the options",
                                                                 "text": "Done."}})
        reply = await client.chat(model=MODEL, messages=[{"role": "user", "content": "ponder this"}],
                                  think=False, stream=False)
        assert reply.message.content == "Done."
        assert not reply.message.thinking
        # As little reasoning as the model allows (gpt-5.5 offers low..xhigh).
        assert last_upstream(sim)["reasoning"]["effort"] == "low"
        chunks = [c async for c in await client.chat(
            model=MODEL, messages=[{"role": "user", "content": "ponder this"}], think=False, stream=True)]
        assert not any(c.message.thinking for c in chunks)
        assert "".join(c.message.content or "" for c in chunks) == "Done."

        # An effort in the model name wins over think:false.
        await client.chat(model=f"{MODEL}-xhigh", messages=[{"role": "user", "content": "ponder this"}],
                          think=False, stream=False)
        assert last_upstream(sim)["reasoning"]["effort"] == "xhigh"


async def test_chat_format_json_and_schema(data_dir):
    async with ollama_bridge(data_dir) as (sim, _, _, client):
        reply = await client.chat(model=MODEL, messages=[{"role": "user", "content": "a JSON object please"}],
                                  format="json", stream=False)
        assert isinstance(json.loads(reply.message.content), dict)
        assert last_upstream(sim)["text"]["format"]["type"] == "json_object"

        schema = {"type": "object", "properties": {"city": {"type": "string"}, "temp": {"type": "number"}},
                  "required": ["city", "temp"]}
        reply = await client.chat(model=MODEL, messages=[{"role": "user", "content": "weather as JSON"}],
                                  format=schema, stream=False)
        data = json.loads(reply.message.content)
        assert isinstance(data["city"], str) and isinstance(data["temp"], (int, float))
        fmt = last_upstream(sim)["text"]["format"]
        assert fmt["type"] == "json_schema" and fmt["schema"]["required"] == ["city", "temp"]


async def test_generate_plain_and_stream(data_dir):
    async with ollama_bridge(data_dir) as (sim, _, _, client):
        sim.script({"match": {"user_text": "haiku"}, "reply": {"text": "Old pond, frog jumps in."}})
        reply = await client.generate(model=MODEL, prompt="Write a haiku", system="Be brief.", stream=False)
        assert reply.response == "Old pond, frog jumps in."
        assert reply.done and reply.model == MODEL
        # The system prompt travels with the turn (on a chained socket, in the frame that opened the chain).
        assert "Be brief." in json.dumps(sim.requests_to("/codex/responses")[-1].ws_messages or last_upstream(sim))

        chunks = [c async for c in await client.generate(model=MODEL, prompt="Write a haiku", stream=True)]
        assert "".join(c.response for c in chunks) == "Old pond, frog jumps in."
        assert chunks[-1].done and not any(c.done for c in chunks[:-1])


async def test_tags_show_ps_pull(data_dir):
    async with ollama_bridge(data_dir) as (_, gateway, _, client):
        tags = await client.list()
        names = [m.model for m in tags.models]
        assert MODEL in names
        assert set(gateway.services.catalog.model_ids()) <= set(names)

        shown = await client.show(MODEL)
        assert "completion" in shown.capabilities and "tools" in shown.capabilities
        assert "vision" in shown.capabilities
        assert shown.modelinfo  # model_info parsed by the client
        assert any(key.endswith(".context_length") for key in shown.modelinfo)

        running = await client.ps()
        assert MODEL in [m.model for m in running.models]

        progress = await client.pull(MODEL, stream=False)
        assert progress.status == "success"
        statuses = [p.status async for p in await client.pull(MODEL, stream=True)]
        assert statuses[-1] == "success"

        with pytest.raises(ollama.ResponseError) as missing:
            await client.pull("qwen3:8b", stream=False)
        assert missing.value.status_code == 404 and "qwen3:8b" in missing.value.error

        with pytest.raises(ollama.ResponseError) as unknown:
            await client.show("no-such-model:7b")
        assert unknown.value.status_code == 404


async def test_show_without_vision_when_disabled(data_dir):
    async with ollama_bridge(data_dir, {"ollama": {"disable_vision": True}}) as (_, _, _, client):
        shown = await client.show(MODEL)
        assert "vision" not in shown.capabilities
        assert "completion" in shown.capabilities


async def test_sync_client_in_a_thread(data_dir):
    async with ollama_bridge(data_dir) as (sim, _, url, _):
        sim.script({"match": {"user_text": "sync"}, "reply": {"text": "from a thread"}})

        def run() -> str:
            client = ollama.Client(host=url, timeout=30)
            return client.chat(model=MODEL, messages=[{"role": "user", "content": "sync call"}]).message.content

        assert await trio.to_thread.run_sync(run) == "from a thread"


async def test_client_errors(data_dir):
    async with ollama_bridge(data_dir) as (sim, _, _, client):
        with pytest.raises(ollama.ResponseError) as unknown:
            await client.chat(model="llama9:70b", messages=[{"role": "user", "content": "hi"}], stream=False)
        assert unknown.value.status_code == 404 and "llama9:70b" in unknown.value.error

        sim.script({"match": {"user_text": "busy"}, "reply": {"rate_limit": {"resets_in_seconds": 120}}})
        with pytest.raises(ollama.ResponseError) as limited:
            await client.chat(model=MODEL, messages=[{"role": "user", "content": "busy now"}], stream=False)
        assert limited.value.status_code == 429
        assert limited.value.error


async def test_aliases_are_listed_and_served(data_dir):
    async with ollama_bridge(data_dir, {"model": {"aliases": {"smart": MODEL}}}) as (sim, _, _, client):
        assert "smart" in [m.model for m in (await client.list()).models]
        shown = await client.show("smart")
        assert "thinking" in shown.capabilities  # the target's catalog entry describes the alias
        reply = await client.chat(model="smart", messages=[{"role": "user", "content": "hi"}], stream=False)
        assert reply.model == "smart"
        assert last_upstream(sim)["model"] == MODEL


async def test_load_requests_answer_without_a_turn(data_dir):
    """An empty chat / generate is how Ollama clients preload a model: answered at once, nothing upstream."""
    async with ollama_bridge(data_dir) as (sim, _, _, client):
        loaded = await client.chat(model=MODEL, messages=[])
        assert loaded.done and loaded.done_reason == "load"
        generated = await client.generate(model=MODEL, prompt="")
        assert generated.done and generated.response == ""
        assert upstream_bodies(sim) == []


async def test_truncated_and_failed_turns(data_dir):
    async with ollama_bridge(data_dir) as (sim, _, _, client):
        sim.script({"match": {"user_text": "long"}, "reply": {"text": "cut short", "incomplete": "max_output_tokens"}})
        reply = await client.chat(model=MODEL, messages=[{"role": "user", "content": "long story"}], stream=False)
        assert reply.done_reason == "length" and reply.message.content == "cut short"

        # The backend drops the connection after text was sent: the NDJSON stream ends with an error line,
        # which the client raises.
        sim.script({"match": {"user_text": "drop"}, "reply": {"text": "partial text here", "disconnect_after": 5}})
        seen = []
        with pytest.raises(ollama.ResponseError):
            async for chunk in await client.chat(model=MODEL, messages=[{"role": "user", "content": "drop"}],
                                                 stream=True):
                seen.append(chunk.message.content)
        assert seen and not any(s is None for s in seen)


async def test_latest_tag_is_implicit(data_dir):
    async with ollama_bridge(data_dir) as (sim, _, _, client):
        reply = await client.chat(model=f"{MODEL}:latest", messages=[{"role": "user", "content": "hi"}],
                                  stream=False)
        assert reply.model == f"{MODEL}:latest"  # as the client wrote it
        assert last_upstream(sim)["model"] == MODEL
        generated = await client.generate(model=f"{MODEL}:latest", prompt="hi", stream=False)
        assert generated.done
        assert "completion" in (await client.show(f"{MODEL}:latest")).capabilities
        with pytest.raises(ollama.ResponseError) as unknown:
            await client.chat(model="llama3.2:latest", messages=[{"role": "user", "content": "hi"}], stream=False)
        assert unknown.value.status_code == 404 and "llama3.2" in unknown.value.error


async def test_stop_option_cuts_the_answer(data_dir):
    async with ollama_bridge(data_dir) as (sim, _, _, client):
        sim.script({"match": {"user_text": "count"}, "reply": {"text": "one, two, STOP three, four"}})
        reply = await client.chat(model=MODEL, messages=[{"role": "user", "content": "count"}],
                                  options={"stop": ["STOP"], "temperature": 0.1, "num_ctx": 8192}, stream=False)
        assert reply.message.content == "one, two, " and reply.done_reason == "stop"
        chunks = [c async for c in await client.generate(model=MODEL, prompt="count", options={"stop": ["STOP"]},
                                                         stream=True)]
        assert "".join(c.response for c in chunks) == "one, two, "
        assert chunks[-1].done and chunks[-1].done_reason == "stop"
