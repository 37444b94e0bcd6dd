"""The simulator answers compressed when the client accepts it (as chatgpt.com's edge does for Codex 0.171.0),
and refuses the wrong tool shape for each kind of model: top-level `tools` for classic models, one leading
`additional_tools` item for responses-lite ones (the 0.171.0 captures)."""

from __future__ import annotations

import json
import zlib

import httpx
import pytest
import zstandard

from codex_trio.sim import Simulator
from codex_trio.sim.encoding import accepted, choose

from .helpers import auth_headers, parse_sse, turn_body, user_message
from tests.conftest import FIXTURES

LITE = {"x-openai-internal-codex-responses-lite": "true"}
FUNCTION = {"type": "function", "name": "get_weather", "description": "Weather of a city.", "strict": False,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def test_negotiation() -> None:
    assert accepted("zstd,gzip") == ["zstd", "gzip"] and accepted("gzip;q=0, zstd") == ["zstd"]
    assert choose("zstd,gzip", "negotiate") == "zstd" and choose("gzip, deflate", "negotiate") == "gzip"
    assert choose(None, "negotiate") is None and choose("zstd,gzip", "identity") is None
    assert choose("zstd,gzip", "gzip") == "gzip" and choose("gzip", "zstd") is None


def decode(coding: str, raw: bytes) -> bytes:
    if coding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    return zlib.decompressobj(31).decompress(raw)


@pytest.mark.parametrize("coding", ["zstd", "gzip"])
async def test_json_and_sse_answers_are_compressed_as_accepted(sim: Simulator, client: httpx.AsyncClient,
                                                                coding: str) -> None:
    sim.state.config.response_encoding = coding
    headers = {**auth_headers(sim.accounts[0]), "accept-encoding": "zstd,gzip"}
    async with client.stream("GET", "/codex/models", params={"client_version": "0.171.0"}, headers=headers) as r:
        raw = b"".join([chunk async for chunk in r.aiter_raw()])
    assert r.headers["content-encoding"] == coding and int(r.headers["content-length"]) == len(raw)
    assert "gpt-6.2-sol" in [m["slug"] for m in json.loads(decode(coding, raw))["models"]]

    sim.script({"reply": {"text": "compressed hello", "pacing_ms": 30}})
    chunks = []
    async with client.stream("POST", "/codex/responses", json=turn_body(), headers=headers) as r:
        async for chunk in r.aiter_raw():
            chunks.append(chunk)
    assert r.headers["content-encoding"] == coding
    assert len(chunks) > 3  # still streamed: each paced event is flushed on its own
    events = parse_sse(decode(coding, b"".join(chunks)).decode())
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][-1]["content"][0]["text"] == "compressed hello"


async def test_no_accept_encoding_means_plain_bodies_and_mislabeled_lies(sim: Simulator,
                                                                        client: httpx.AsyncClient) -> None:
    plain = {**auth_headers(sim.accounts[0]), "accept-encoding": "identity"}
    r = await client.get("/wham/usage", headers=plain)
    assert "content-encoding" not in r.headers and r.json()["plan_type"]
    sim.state.config.response_encoding = "mislabeled"
    async with client.stream("GET", "/wham/usage", headers={**plain, "accept-encoding": "zstd,gzip"}) as r:
        raw = b"".join([chunk async for chunk in r.aiter_raw()])
    assert r.headers["content-encoding"] == "zstd" and json.loads(raw)["plan_type"]  # plain bytes, zstd label


def lite_tools_item(tools: list[dict], **extra) -> dict:
    return {"type": "additional_tools", "id": "at_01a249e4-7285-7823-ab60-762527c4c5b1", "role": "developer",
            "tools": [{"type": "namespace", "name": "functions", "description": "", "tools": tools}], **extra}


async def post(client: httpx.AsyncClient, sim: Simulator, body: dict, headers: dict | None = None) -> httpx.Response:
    return await client.post("/codex/responses", json=body, headers={**auth_headers(sim.accounts[0]), **(headers or {})})


async def test_lite_models_take_tools_only_as_the_additional_tools_item(sim: Simulator,
                                                                       client: httpx.AsyncClient) -> None:
    good = turn_body(model="gpt-6.2-sol", input=[lite_tools_item([FUNCTION]), user_message("hi")])
    assert (await post(client, sim, good, LITE)).status_code == 200
    captured = json.loads((FIXTURES / "chatgpt-mode-0.171.0/exec-sse-tool/01-codex-responses.json").read_text())
    real = {**captured["body"], "model": "gpt-6.2-sol"}
    assert (await post(client, sim, real, LITE)).status_code == 200  # the real client's body is accepted

    top_level = turn_body(model="gpt-6.2-sol", tools=[FUNCTION])
    r = await post(client, sim, top_level, LITE)
    assert r.status_code == 400 and r.json()["error"]["param"] == "tools"
    undeclared = await post(client, sim, good)  # no responses-lite header: the item is not understood
    assert undeclared.status_code == 400 and "additional_tools" in undeclared.json()["error"]["message"]
    bad_items = [
        [user_message("hi"), lite_tools_item([FUNCTION])],                       # not first
        [lite_tools_item([FUNCTION], role="user"), user_message("hi")],           # wrong role
        [lite_tools_item([FUNCTION, FUNCTION]), user_message("hi")],              # duplicate name
        [lite_tools_item([{"type": "web_search"}]), user_message("hi")],          # hosted tool inside a namespace
        [{**lite_tools_item([]), "tools": [FUNCTION]}, user_message("hi")],      # a function outside a namespace
        [lite_tools_item([{**FUNCTION, "name": "bad name"}]), user_message("hi")],
    ]
    for items in bad_items:
        r = await post(client, sim, turn_body(model="gpt-6.2-sol", input=items), LITE)
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error", items


async def test_classic_models_refuse_the_lite_shape(sim: Simulator, client: httpx.AsyncClient) -> None:
    assert (await post(client, sim, turn_body(tools=[FUNCTION]))).status_code == 200
    r = await post(client, sim, turn_body(input=[lite_tools_item([FUNCTION]), user_message("hi")]), LITE)
    assert r.status_code == 400 and "does not support responses-lite" in r.json()["error"]["message"]
    r = await post(client, sim, turn_body(input=[lite_tools_item([FUNCTION]), user_message("hi")]))
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"
