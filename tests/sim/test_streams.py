"""Scripted and default behaviours of POST /codex/responses (SSE)."""

from __future__ import annotations

import base64
import io
import time

import httpx
import orjson
import pytest
import trio
from PIL import Image

from codex_trio.sim import DEMO_SCENARIO, Simulator, running_sim

from .helpers import auth_headers, parse_sse, turn_body, types


async def run(client: httpx.AsyncClient, sim: Simulator, body: dict) -> tuple[httpx.Response, list[dict]]:
    r = await client.post("/codex/responses", json=body, headers=auth_headers(sim.accounts[0]))
    return r, parse_sse(r.text) if r.status_code == 200 else []


async def test_default_reply_is_a_deterministic_echo(sim: Simulator, client: httpx.AsyncClient) -> None:
    r, events = await run(client, sim, turn_body("Say hi"))
    assert r.headers["content-type"].startswith("text/event-stream")
    assert "x-codex-primary-used-percent" in r.headers
    assert types(events)[:2] == ["response.created", "response.in_progress"]
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(deltas) == "Echo: Say hi" and max(map(len, deltas)) <= 4
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    completed = events[-1]
    assert completed["type"] == "response.completed"
    reasoning = completed["response"]["output"][0]
    assert reasoning["type"] == "reasoning" and reasoning["encrypted_content"].startswith("gAAAA")
    usage = completed["response"]["usage"]
    size = len(sim.requests_to("/codex/responses")[-1].raw_body)
    assert usage["input_tokens"] == size // 4
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    _, again = await run(client, sim, turn_body("Say hi"))
    assert [e.get("delta") for e in again] == [e.get("delta") for e in events]


async def test_reasoning_summary_and_text(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.script({"match": {"user_text": "think"}, "reply": {"reasoning": "Weighing the options", "text": "Done."}})
    _, events = await run(client, sim, turn_body("please think"))
    summary = "".join(e["delta"] for e in events if e["type"] == "response.reasoning_summary_text.delta")
    assert summary == "Weighing the options"
    items = events[-1]["response"]["output"]
    assert items[0]["summary"] == [{"type": "summary_text", "text": "Weighing the options"}]
    assert items[1]["content"][0]["text"] == "Done."
    assert events[-1]["response"]["usage"]["output_tokens_details"]["reasoning_tokens"] > 0


async def test_parallel_function_calls_and_custom_tool_call(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.script({"match": {"user_text": "weather"}, "reply": {
        "function_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}},
                           {"name": "get_time", "arguments": "{\"tz\":\"CET\"}"}],
        "custom_tool_calls": [{"name": "apply_patch", "input": "*** Begin Patch\n*** End Patch"}]}})
    _, events = await run(client, sim, turn_body("weather please"))
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert [i["type"] for i in done] == ["function_call", "function_call", "custom_tool_call"]
    assert orjson.loads(done[0]["arguments"]) == {"city": "Paris"} and done[1]["arguments"] == '{"tz":"CET"}'
    assert len({i["call_id"] for i in done}) == 3
    args = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"
                   and e["item_id"] == done[0]["id"])
    assert args == done[0]["arguments"]
    custom = "".join(e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta")
    assert custom == done[2]["input"]
    # the follow-up with the outputs matches on tool output text
    sim.script({"match": {"tool_output": "21C"}, "reply": {"text": "It is 21C in Paris."}})
    body = turn_body("weather please")
    for item in done:
        body["input"].append({k: v for k, v in item.items() if k != "id"})
        kind = "function_call_output" if item["type"] == "function_call" else "custom_tool_call_output"
        body["input"].append({"type": kind, "call_id": item["call_id"], "output": "21C"})
    _, events = await run(client, sim, body)
    assert events[-1]["response"]["output"][-1]["content"][0]["text"] == "It is 21C in Paris."


@pytest.mark.parametrize("fmt,pil", [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
async def test_image_generation_returns_a_real_image(sim: Simulator, client: httpx.AsyncClient, fmt: str,
                                                      pil: str) -> None:
    sim.script({"match": {"user_text": "draw"}, "reply": {"image": {"partial_images": 1}}})
    body = turn_body("draw a cat", tools=[{"type": "image_generation", "output_format": fmt, "size": "32x48"}])
    _, events = await run(client, sim, body)
    assert "response.image_generation_call.partial_image" in types(events)
    item = events[-1]["response"]["output"][-1]
    assert item["type"] == "image_generation_call" and item["output_format"] == fmt
    image = Image.open(io.BytesIO(base64.b64decode(item["result"])))
    assert image.format == pil and image.size == (32, 48)
    assert events[-1]["response"]["tool_usage"]["image_gen"]["total_tokens"] > 0


async def test_web_search_call(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.script({"match": {"user_text": "news"}, "reply": {"web_search": {"query": "trio news"}}})
    _, events = await run(client, sim, turn_body("news?"))
    assert [t for t in types(events) if t.startswith("response.web_search_call")] == [
        "response.web_search_call.in_progress", "response.web_search_call.searching",
        "response.web_search_call.completed"]
    output = events[-1]["response"]["output"]
    assert output[0]["action"]["query"] == "trio news" and output[-1]["type"] == "message"


async def test_structured_output_satisfies_schema(sim: Simulator, client: httpx.AsyncClient) -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["name", "age", "tags", "kind", "when"],
              "properties": {"name": {"type": "string", "minLength": 12}, "age": {"type": "integer", "minimum": 18},
                             "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "minItems": 2},
                             "kind": {"enum": ["a", "b"]}, "when": {"type": ["string", "null"], "format": "date"}},
              "$defs": {"tag": {"type": "object", "properties": {"v": {"type": "number", "maximum": -1}}}}}
    body = turn_body("give json", text={"format": {"type": "json_schema", "name": "out", "strict": True,
                                                   "schema": schema}})
    _, events = await run(client, sim, body)
    value = orjson.loads(events[-1]["response"]["output"][-1]["content"][0]["text"])
    assert set(value) == {"name", "age", "tags", "kind", "when"}
    assert isinstance(value["name"], str) and len(value["name"]) >= 12
    assert isinstance(value["age"], int) and value["age"] >= 18
    assert len(value["tags"]) == 2 and all(t["v"] <= -1 for t in value["tags"])
    assert value["kind"] == "a" and value["when"] == "2026-01-01"


@pytest.mark.parametrize("reply,terminal", [
    ({"fail": {"code": "context_length_exceeded", "message": "too long"}}, "response.failed"),
    ({"error_event": {"code": "server_error", "message": "boom"}}, "error"),
    ({"incomplete": "max_output_tokens"}, "response.incomplete"),
])
async def test_terminal_variants(sim: Simulator, client: httpx.AsyncClient, reply: dict, terminal: str) -> None:
    sim.script({"reply": reply})
    _, events = await run(client, sim, turn_body())
    assert events[-1]["type"] == terminal
    if terminal == "response.failed":
        assert events[-1]["response"]["error"] == {"code": "context_length_exceeded", "message": "too long"}
    if terminal == "response.incomplete":
        assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


async def test_disconnect_mid_stream(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.script({"reply": {"disconnect_after": 5}})
    got = b""
    with pytest.raises(httpx.RemoteProtocolError):
        async with client.stream("POST", "/codex/responses", json=turn_body(),
                                 headers=auth_headers(sim.accounts[0])) as r:
            async for chunk in r.aiter_bytes():
                got += chunk
    assert len(parse_sse(got.decode())) == 5
    assert (await client.get("/wham/usage", headers=auth_headers(sim.accounts[0]))).status_code == 200


async def test_slow_first_byte_pacing_and_idle_gap(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.script({"match": {"user_text": "slow"}, "reply": {"first_byte_delay_ms": 300, "text": "abcdefgh"}})
    start = time.monotonic()
    r = await client.post("/codex/responses", json=turn_body("slow"), headers=auth_headers(sim.accounts[0]))
    assert r.status_code == 200 and time.monotonic() - start >= 0.3
    sim.script({"match": {"user_text": "gap"}, "reply": {"text": "abcdefgh", "pacing_ms": 20, "idle_gap_ms": 300,
                                                         "idle_gap_after": 3}})
    arrivals = []
    async with client.stream("POST", "/codex/responses", json=turn_body("gap"),
                             headers=auth_headers(sim.accounts[0])) as r:
        start = time.monotonic()
        async for chunk in r.aiter_bytes():
            arrivals.append((time.monotonic() - start, chunk.count(b"\n\n")))
    gaps = [b[0] - a[0] for a, b in zip(arrivals, arrivals[1:])]
    assert max(gaps) >= 0.28 and sum(n for _, n in arrivals) == 10
    assert len(arrivals) >= 8  # paced: events arrive separately


async def test_zero_pacing_writes_the_stream_at_once(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.script({"reply": {"text_length": 400}})
    chunks = []
    # raw chunks are compared, so no compression (httpx would accept zstd and gzip)
    async with client.stream("POST", "/codex/responses", json=turn_body(),
                             headers={**auth_headers(sim.accounts[0]), "accept-encoding": "identity"}) as r:
        async for chunk in r.aiter_raw():
            chunks.append(chunk)
    events = parse_sse(b"".join(chunks).decode())
    assert len(events) > 100 and len(chunks) < 10
    assert len(events[-1]["response"]["output"][0]["content"][0]["text"]) == 400


async def test_http_error_behaviours(sim: Simulator, client: httpx.AsyncClient) -> None:
    account = sim.accounts[0]
    sim.script({"match": {"user_text": "e503"}, "times": 1, "reply": {"http_status": 503}})
    r = await client.post("/codex/responses", json=turn_body("e503"), headers=auth_headers(account))
    assert r.status_code == 503 and r.json()["error"]["code"] == "server_is_overloaded"
    r = await client.post("/codex/responses", json=turn_body("e503"), headers=auth_headers(account))
    assert r.status_code == 200  # `times: 1` used up
    sim.script({"match": {"user_text": "r429"}, "reply": {"rate_limit": {"resets_in_seconds": 120}}})
    r = await client.post("/codex/responses", json=turn_body("r429"), headers=auth_headers(account))
    assert r.status_code == 429 and r.json()["error"]["resets_in_seconds"] == 120
    sim.script({"match": {"user_text": "cf404"}, "reply": {"cloudflare_404": True}})
    r = await client.post("/codex/responses", json=turn_body("cf404"), headers=auth_headers(account))
    assert r.status_code == 404 and r.content == b""
    sim.script({"match": {"user_text": "challenge"}, "times": 1, "reply": {"cloudflare_challenge": True}})
    r = await client.post("/codex/responses", json=turn_body("challenge"), headers=auth_headers(account))
    assert r.status_code == 403 and r.headers["cf-mitigated"] == "challenge" and b"Just a moment" in r.content
    sim.script({"match": {"user_text": "cookies"}, "reply": {"set_cookies": True}})
    r = await client.post("/codex/responses", json=turn_body("cookies"), headers=auth_headers(account))
    cookies = r.headers.get_list("set-cookie")
    assert [c.split("=")[0] for c in cookies] == ["__cf_bm", "cf_clearance"]
    sim.script({"match": {"user_text": "ban me"}, "reply": {"ban": True}})
    r = await client.post("/codex/responses", json=turn_body("ban me"), headers=auth_headers(account))
    assert r.status_code == 403
    r = await client.post("/codex/responses", json=turn_body("anything"), headers=auth_headers(account))
    assert r.status_code == 403 and account.banned


async def test_scenario_file_rules(tmp_path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(
        "rules:\n"
        "  - match: {model: gpt-6.1-sol}\n"
        "    reply: {text: from the file}\n"
        "  - match: {user_regex: '^fail'}\n"
        "    reply: {http_status: 500}\n")
    async with running_sim(scenario=str(path)) as sim:
        assert sim.urls is not None
        async with httpx.AsyncClient(base_url=sim.urls.backend_base, verify=sim.ssl_context()) as client:
            _, events = await run(client, sim, turn_body("x", model="gpt-6.1-sol"))
            assert events[-1]["response"]["output"][-1]["content"][0]["text"] == "from the file"
            r, _ = await run(client, sim, turn_body("fail now"))
            assert r.status_code == 500
            _, events = await run(client, sim, turn_body("ok"))
            assert events[-1]["response"]["output"][-1]["content"][0]["text"] == "Echo: ok"


async def test_http2_streaming(sim: Simulator) -> None:
    assert sim.urls is not None
    sim.script({"reply": {"text_length": 70000, "chunk_size": 5000}})
    async with httpx.AsyncClient(base_url=sim.urls.backend_base, verify=sim.ssl_context(), http2=True) as c:
        r = await c.post("/codex/responses", json=turn_body(), headers=auth_headers(sim.accounts[0]))
        assert r.http_version == "HTTP/2"
        events = parse_sse(r.text)
        assert events[-1]["type"] == "response.completed"
        with trio.fail_after(5):
            assert len(events[-1]["response"]["output"][-1]["content"][0]["text"]) == 70000


async def test_h2c_prior_knowledge_and_disconnect_over_http2() -> None:
    async with running_sim(https=False, record_requests=False) as sim:
        assert sim.urls is not None
        sim.script({"match": {"user_text": "drop"}, "reply": {"disconnect_after": 3}})
        async with httpx.AsyncClient(base_url=sim.urls.backend_base, http1=False, http2=True) as c:
            r = await c.post("/codex/responses", json=turn_body(), headers=auth_headers(sim.accounts[0]))
            assert r.http_version == "HTTP/2" and parse_sse(r.text)[-1]["type"] == "response.completed"
            with pytest.raises(httpx.RemoteProtocolError):
                await c.post("/codex/responses", json=turn_body("drop"), headers=auth_headers(sim.accounts[0]))
            r = await c.get("/wham/usage", headers=auth_headers(sim.accounts[0]))
            assert r.status_code == 200
        assert sim.requests == []


async def test_prompt_cache_key_gives_cached_tokens(sim: Simulator, client: httpx.AsyncClient) -> None:
    body = turn_body("long prompt " * 200, prompt_cache_key="thread-1")
    _, first = await run(client, sim, body)
    assert first[-1]["response"]["usage"]["input_tokens_details"]["cached_tokens"] == 0
    _, second = await run(client, sim, body)
    usage = second[-1]["response"]["usage"]
    assert 0 < usage["input_tokens_details"]["cached_tokens"] <= usage["input_tokens"]
    assert usage["input_tokens_details"]["cached_tokens"] % 128 == 0
    _, other = await run(client, sim, {**body, "prompt_cache_key": "thread-2"})
    assert other[-1]["response"]["usage"]["input_tokens_details"]["cached_tokens"] == 0


async def test_demo_scenario_tool_round_trip() -> None:
    async with running_sim(scenario=str(DEMO_SCENARIO)) as sim:
        assert sim.urls is not None
        async with httpx.AsyncClient(base_url=sim.urls.backend_base, verify=sim.ssl_context()) as client:
            body = turn_body("what's the weather?")
            _, events = await run(client, sim, body)
            calls = [i for i in events[-1]["response"]["output"] if i["type"] == "function_call"]
            assert [orjson.loads(c["arguments"])["city"] for c in calls] == ["Paris", "Tokyo"]
            for call in calls:
                body["input"] += [{"type": "function_call", "call_id": call["call_id"], "name": call["name"],
                                   "arguments": call["arguments"]},
                                  {"type": "function_call_output", "call_id": call["call_id"], "output": "21°C"}]
            _, events = await run(client, sim, body)
            assert events[-1]["response"]["output"][-1]["content"][0]["text"].startswith("Here is the weather")
            _, events = await run(client, sim, turn_body("draw a boat"))
            assert [i["type"] for i in events[-1]["response"]["output"]] == ["image_generation_call", "message"]


async def test_concurrent_http2_streams_respect_flow_control(sim: Simulator) -> None:
    assert sim.urls is not None
    sim.script({"reply": {"text_length": 100_000, "chunk_size": 4000}})
    results: list[int] = []
    async with httpx.AsyncClient(base_url=sim.urls.backend_base, verify=sim.ssl_context(), http2=True) as c:
        async def one() -> None:
            r = await c.post("/codex/responses", json=turn_body(), headers=auth_headers(sim.accounts[0]))
            results.append(len(parse_sse(r.text)[-1]["response"]["output"][-1]["content"][0]["text"]))
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for _ in range(8):
                    nursery.start_soon(one)
    assert results == [100_000] * 8
