"""The official `google-genai` SDK (and raw HTTP for the JSON-array stream) against the whole gateway on the
simulator (issue #7)."""

from __future__ import annotations

import base64
import json
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import httpx
import orjson
import pytest
import trio
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from codex_trio.protocols import gemini as gemini_protocol
from codex_trio.sim import running_sim
from codex_trio.sim.turns import _encrypted as minted_encrypted
from tests.conftest import api_key, gateway_on_sim
from tests.e2e.test_anthropic_sdk import PNG_1x1, upstream_turns
from tests.protocols.test_token_count import CLIENTS, gemini_text, o200k  # noqa: F401 (o200k is a fixture)

MODEL = "gemini-2.5-pro"


@asynccontextmanager
async def gemini(data_dir, *, accounts: int = 1) -> AsyncIterator[tuple[Any, Any, str, str]]:
    """(genai Client, sim, gateway url, key). The Client stays referenced for the whole test (it closes its
    transport when collected). Its async view needs asyncio, so the sync client runs in a worker thread
    (`call`) while the gateway and the sim run on trio."""
    async with running_sim(accounts=accounts) as sim:
        async with gateway_on_sim(data_dir, sim) as (gateway, url):
            key = api_key(gateway)
            sent: list[httpx.Request] = []  # what the SDK put on the wire
            transport = httpx.Client(timeout=30, event_hooks={"request": [sent.append]})
            client = genai.Client(api_key=key, http_options=types.HttpOptions(
                base_url=url + "/", api_version="v1beta", httpx_client=transport))
            client.wire = sent
            try:
                yield client, sim, url, key
            finally:
                client.close()
                transport.close()


async def call(fn, *args, **kwargs):
    """Run a blocking SDK call in a thread; generators (streams) are drained there into a list."""
    def run():
        result = fn(*args, **kwargs)
        return list(result) if hasattr(result, "__next__") else result

    return await trio.to_thread.run_sync(run)


async def test_generate_content_plain(data_dir):
    async with gemini(data_dir) as (client, sim, _, key):
        response = await call(client.models.generate_content, model=MODEL, contents="Hello")
    assert response.text == "Echo: Hello"
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.usage_metadata.prompt_token_count > 0 and response.usage_metadata.total_token_count > 0
    sent = upstream_turns(sim)[-1]
    assert sent["model"] == "gpt-5.5"
    wire = client.wire[-1]
    assert wire.url.path == f"/v1beta/models/{MODEL}:generateContent"
    assert wire.headers["x-goog-api-key"] == key and "authorization" not in wire.headers


def said(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


async def test_generate_content_stream_sse(data_dir):
    async with gemini(data_dir) as (client, sim, url, key):
        sim.script({"match": {"user_text": "story"}, "reply": {"text": "Once upon a time, there was a gateway."}})
        chunks = await call(client.models.generate_content_stream, model=MODEL, contents="Tell a story")
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            raw = await http.post(f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse",
                                  headers={"x-goog-api-key": key}, json={"contents": [said("Tell a story").model_dump(
                                      exclude_none=True)]})
    assert len(chunks) > 2 and "".join(c.text or "" for c in chunks) == "Once upon a time, there was a gateway."
    assert [c.candidates[0].finish_reason for c in chunks][-1] == types.FinishReason.STOP
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])
    assert chunks[-1].usage_metadata.total_token_count > 0
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(block.removeprefix("data: ")) for block in raw.text.strip().split("\r\n\r\n")]
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_json_array_stream_without_alt_sse(data_dir):
    async with gemini(data_dir) as (_, sim, url, key):
        sim.script({"match": {"user_text": "story"}, "reply": {"text": "Once upon a time, there was a gateway."}})
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            raw = await http.post(f"/v1beta/models/{MODEL}:streamGenerateContent", headers={"x-goog-api-key": key},
                                  json={"contents": [{"role": "user", "parts": [{"text": "Tell a story"}]}]})
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("application/json")
    chunks = json.loads(raw.text)  # the whole body is one JSON array
    assert isinstance(chunks, list) and len(chunks) > 2
    text = "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"])
    assert text == "Once upon a time, there was a gateway."
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP" and chunks[-1]["usageMetadata"]["totalTokenCount"] > 0
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])


WEATHER = types.Tool(function_declarations=[types.FunctionDeclaration(
    name="get_weather", description="Weather of a city",
    parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})])


async def test_function_calling_round_trip_with_ids(data_dir):
    async with gemini(data_dir) as (client, sim, _, _):
        sim.script({"match": {"user_text": "weather", "tool_output": "sunny"}, "reply": {"text": "It is sunny."}})
        sim.script({"match": {"user_text": "weather"},
                    "reply": {"function_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}, "times": 1})
        config = types.GenerateContentConfig(tools=[WEATHER])
        history = [said("What is the weather in Paris?")]
        first = await call(client.models.generate_content, model=MODEL, contents=history, config=config)
        assert first.function_calls and len(first.function_calls) == 1
        fc = first.function_calls[0]
        assert fc.name == "get_weather" and fc.args == {"city": "Paris"} and fc.id.startswith("call_")
        history += [first.candidates[0].content, types.Content(role="user", parts=[types.Part(
            function_response=types.FunctionResponse(id=fc.id, name="get_weather", response={"result": "sunny, 24C"}))])]
        final = await call(client.models.generate_content, model=MODEL, contents=history, config=config)
    assert final.text == "It is sunny." and final.candidates[0].finish_reason == types.FinishReason.STOP
    first_sent, last_sent = upstream_turns(sim)
    assert first_sent["tools"][0]["name"] == "get_weather"
    assert [i for i in last_sent["input"] if i.get("type") == "function_call_output"] == [
        {"type": "function_call_output", "call_id": fc.id, "output": '{"result":"sunny, 24C"}'}]


async def test_thinking_round_trip(data_dir):
    async with gemini(data_dir) as (client, sim, _, _):
        sim.script({"match": {"user_text": "puzzle"}, "reply": {"reasoning": "Count the legs first.", "text": "Six."}})
        thinking = types.ThinkingConfig(include_thoughts=True, thinking_budget=4000)
        history = [said("Solve the puzzle")]
        first = await call(client.models.generate_content, model=MODEL, contents=history,
                           config=types.GenerateContentConfig(thinking_config=thinking))
        parts = first.candidates[0].content.parts
        assert [(p.thought, p.text) for p in parts] == [(True, "Count the legs first."), (None, "Six.")]
        assert parts[1].thought_signature  # the encrypted reasoning rides on the answer part, as Gemini does
        assert first.usage_metadata.thoughts_token_count > 0
        history += [first.candidates[0].content, said("And the next one?")]
        # new tools: a new upstream socket, so the whole history (and its reasoning) goes up again
        await call(client.models.generate_content, model=MODEL, contents=history,
                   config=types.GenerateContentConfig(thinking_config=thinking, tools=[WEATHER]))
    first_sent, second_sent = upstream_turns(sim)
    assert first_sent["reasoning"]["effort"] == "medium" and first_sent["include"] == ["reasoning.encrypted_content"]
    replayed = [i for i in second_sent["input"] if i.get("type") == "reasoning"]
    assert len(replayed) == 1
    assert replayed[0]["encrypted_content"] == minted_encrypted(replayed[0]["id"] + "Count the legs first.")


async def test_vision_inline_data(data_dir):
    async with gemini(data_dir) as (client, sim, _, _):
        png = base64.b64decode(PNG_1x1)
        response = await call(client.models.generate_content, model=MODEL, contents=[
            types.Part.from_bytes(data=png, mime_type="image/png"), "What is in this picture?"])
    assert response.text
    content = upstream_turns(sim)[-1]["input"][-1]["content"]
    assert {"type": "input_image", "image_url": f"data:image/png;base64,{PNG_1x1}"} in content
    assert {"type": "input_text", "text": "What is in this picture?"} in content


async def test_structured_output(data_dir):
    import pydantic

    class Weather(pydantic.BaseModel):
        city: str
        temperature: float
        tags: list[str]

    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"]}
    async with gemini(data_dir) as (client, sim, _, _):
        by_json_schema = await call(client.models.generate_content, model=MODEL, contents="Describe someone",
                                    config=types.GenerateContentConfig(response_mime_type="application/json",
                                                                       response_json_schema=schema))
        by_schema = await call(client.models.generate_content, model=MODEL, contents="Weather?",
                               config=types.GenerateContentConfig(response_mime_type="application/json",
                                                                  response_schema=Weather))
        plain_json = await call(client.models.generate_content, model=MODEL, contents="Any JSON",
                                config=types.GenerateContentConfig(response_mime_type="application/json"))
    person = json.loads(by_json_schema.text)
    assert set(person) == {"name", "age"} and isinstance(person["name"], str) and isinstance(person["age"], int)
    assert isinstance(by_schema.parsed, Weather)
    assert isinstance(json.loads(plain_json.text), dict)
    sent = upstream_turns(sim)
    assert sent[0]["text"]["format"]["type"] == "json_schema" and sent[0]["text"]["format"]["strict"] is True
    assert sent[0]["text"]["format"]["schema"]["additionalProperties"] is False
    assert sent[1]["text"]["format"]["schema"]["required"] == ["city", "temperature", "tags"]
    assert sent[2]["text"]["format"] == {"type": "json_object"}


async def test_count_tokens(data_dir, o200k):
    """The gateway's native o200k count of a real Gemini CLI request equals the same formula with tiktoken's
    o200k_base, and is within 2 % of the raw text's tokens once the documented fixed overhead is off."""
    fixture = json.loads((CLIENTS / "gemini-cli.streamGenerateContent.json").read_bytes())
    contents = [types.Content.model_validate(c) for c in fixture["contents"]]
    async with gemini(data_dir) as (client, sim, url, key):
        counted = await call(client.models.count_tokens, model=MODEL, contents=contents)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            whole = await http.post(f"/v1beta/models/{MODEL}:countTokens", headers={"x-goog-api-key": key},
                                    json={"generateContentRequest": {"model": f"models/{MODEL}", **fixture}})
    sent_contents = {"contents": [c.model_dump(mode="json", exclude_none=True, by_alias=True) for c in contents]}
    assert counted.total_tokens == gemini_protocol.count_tokens(MODEL, orjson.dumps(sent_contents), o200k)["totalTokens"]
    assert whole.status_code == 200
    total = whole.json()["totalTokens"]
    assert total == gemini_protocol.count_tokens(MODEL, orjson.dumps(fixture), o200k)["totalTokens"]
    reference = sum(o200k(p) for p in gemini_text(fixture))
    request = gemini_protocol.parse_request(MODEL, orjson.dumps(fixture), False).request
    overhead = 3 + 3 + o200k("system") + sum(3 + o200k(i["role"]) for i in request["input"]) + (
        12 + 7 * len(request["tools"]))
    assert abs(total - overhead - reference) <= 0.02 * reference
    assert not upstream_turns(sim)


async def test_models_list_and_get(data_dir):
    async with gemini(data_dir) as (client, sim, _, _):
        models = await call(lambda: list(client.models.list()))
        one = await call(client.models.get, model="gpt-5.5")
        with pytest.raises(genai_errors.ClientError) as missing:
            await call(client.models.get, model="no-such-model")
    names = [m.name for m in models]
    assert "models/gpt-5.5" in names and all(n.startswith("models/") for n in names)
    assert one.name == "models/gpt-5.5" and "generateContent" in one.supported_actions
    assert one.input_token_limit and one.input_token_limit > 0
    assert missing.value.code == 404 and missing.value.status == "NOT_FOUND"


async def test_auth_header_query_key_and_wrong_key(data_dir):
    body = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}
    path = f"/v1beta/models/{MODEL}:generateContent"
    async with gemini(data_dir) as (_, sim, url, key):
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            by_header = await http.post(path, json=body, headers={"x-goog-api-key": key})
            by_query = await http.post(path, params={"key": key}, json=body)
            wrong = await http.post(path, json=body, headers={"x-goog-api-key": "wrong"})
            missing = await http.post(path, json=body)
    assert by_header.status_code == 200 and by_query.status_code == 200
    assert [p["text"] for p in by_header.json()["candidates"][0]["content"]["parts"]] == ["Echo: Hi"]
    for refused in (wrong, missing):
        assert refused.status_code == 401 and refused.json()["error"]["status"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("reply, code, status", [
    ({"rate_limit": {"resets_in_seconds": 600}}, 429, "RESOURCE_EXHAUSTED"),
    ({"http_status": 500}, 500, "INTERNAL"),
    ({"http_status": 503}, 503, "UNAVAILABLE"),
    ({"fail": {"code": "context_length_exceeded", "message": "Your input exceeds the context window."}},
     400, "INVALID_ARGUMENT"),
])
async def test_upstream_errors_before_output_use_google_envelope(data_dir, reply, code, status):
    async with gemini(data_dir) as (client, sim, url, key):
        sim.script({"match": {"user_text": "go"}, "reply": reply})
        with pytest.raises(genai_errors.APIError) as caught:
            await call(client.models.generate_content, model=MODEL, contents="go")
        async with httpx.AsyncClient(base_url=url, headers={"x-goog-api-key": key}, timeout=30) as http:
            streamed = await http.post(f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse",
                                       json={"contents": [{"role": "user", "parts": [{"text": "go"}]}]})
    assert (caught.value.code, caught.value.status) == (code, status)
    assert streamed.status_code == code and streamed.json()["error"]["status"] == status


async def test_banned_account_then_no_account(data_dir):
    async with gemini(data_dir) as (client, sim, _, _):
        sim.script({"match": {"user_text": "go"}, "reply": {"ban": True}})
        with pytest.raises(genai_errors.ClientError) as first:  # account_deactivated → 401
            await call(client.models.generate_content, model=MODEL, contents="go")
        with pytest.raises(genai_errors.ServerError) as later:
            await call(client.models.generate_content, model=MODEL, contents="hello")
    assert (first.value.code, first.value.status) == (401, "UNAUTHENTICATED")
    assert (later.value.code, later.value.status) == (503, "UNAVAILABLE")


@pytest.mark.parametrize("reply, message", [
    ({"fail": {"code": "server_error", "message": "boom"}}, "boom"),
    ({"error_event": {"code": "server_error", "message": "event boom"}}, "event boom"),
    ({"disconnect_after": 7}, None),
])
@pytest.mark.parametrize("sse", [True, False])
async def test_mid_stream_failure_ends_with_error_object(data_dir, reply, message, sse):
    async with gemini(data_dir) as (client, sim, url, key):
        sim.script({"match": {"user_text": "go"}, "reply": {"text": "a partial answer that is long enough", **reply}})
        async with httpx.AsyncClient(base_url=url, headers={"x-goog-api-key": key}, timeout=30) as http:
            streamed = await http.post(f"/v1beta/models/{MODEL}:streamGenerateContent" + ("?alt=sse" if sse else ""),
                                       json={"contents": [{"role": "user", "parts": [{"text": "go"}]}]})
        if sse:
            with pytest.raises(genai_errors.APIError) as caught:
                await call(client.models.generate_content_stream, model=MODEL, contents="go")
            assert caught.value.code >= 500
    assert streamed.status_code == 200
    if sse:
        chunks = [json.loads(b.removeprefix("data: ")) for b in streamed.text.strip().split("\r\n\r\n")]
    else:
        chunks = json.loads(streamed.text)  # still one well-formed JSON array
    assert "candidates" in chunks[0] and all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    error = chunks[-1]["error"]
    assert error["code"] >= 500 and error["status"] in ("INTERNAL", "UNAVAILABLE")
    assert message is None or error["message"] == message


async def test_streamed_thoughts_signature_and_function_call(data_dir):
    async with gemini(data_dir) as (client, sim, _, _):
        sim.script({"match": {"user_text": "weather"}, "reply": {
            "reasoning": "The user wants weather.", "function_calls": [{"name": "get_weather",
                                                                        "arguments": {"city": "Paris"}}]}})
        chunks = await call(client.models.generate_content_stream, model=MODEL,
                            contents="What is the weather in Paris?",
                            config=types.GenerateContentConfig(tools=[WEATHER], thinking_config=types.ThinkingConfig(
                                include_thoughts=True, thinking_level=types.ThinkingLevel.HIGH)))
    parts = [p for c in chunks for p in c.candidates[0].content.parts]
    assert "".join(p.text for p in parts if p.thought) == "The user wants weather."
    calls = [p for p in parts if p.function_call]
    assert len(calls) == 1 and calls[0].function_call.args == {"city": "Paris"} and calls[0].function_call.id
    assert calls[0].thought_signature  # the reasoning rides on the part that follows it
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert upstream_turns(sim)[-1]["reasoning"]["effort"] == "high"


@pytest.mark.parametrize("stream", [False, True])
async def test_structured_output_with_a_tuple_comes_back_as_an_array(data_dir, stream):
    schema = {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]}
    config = types.GenerateContentConfig(response_mime_type="application/json", response_json_schema=schema)
    async with gemini(data_dir) as (client, sim, _, _):
        if stream:
            chunks = await call(client.models.generate_content_stream, model=MODEL, contents="pair", config=config)
            text = "".join(c.text or "" for c in chunks)
        else:
            text = (await call(client.models.generate_content, model=MODEL, contents="pair", config=config)).text
    assert upstream_turns(sim)[0]["text"]["format"]["schema"]["type"] == "object"
    pair = json.loads(text)
    assert isinstance(pair, list) and isinstance(pair[0], str) and isinstance(pair[1], int)
