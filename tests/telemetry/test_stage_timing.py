"""Opt-in per-stage timing (`CODEX_TRIO_STAGE_TIMING`, issue #20): each request's stages, in the order a turn
passes them, appended to the named file; nothing written without the variable."""

from __future__ import annotations

import httpx
import orjson

from codex_trio.sim import running_sim
from codex_trio.telemetry.stage_timing import breakdown
from tests.conftest import api_key, gateway_on_sim

CHAT = "/v1/chat/completions"
# The response head goes out once the upstream turn has started (the dispatcher waits for its first substantive
# event, to fail over before answering); the body's producer translates after that.
# The head of a streamed turn waits for its first (translated) chunk: both leave in one write.
TURN_ORDER = ["head", "app", "auth", "body", "routed", "leased", "framed", "sent", "first_event", "translated",
              "headers_sent", "first_write"]


def chat(text: str) -> dict:
    return {"model": "gpt-5.5", "stream": True, "messages": [{"role": "user", "content": text}]}


async def test_a_streamed_turn_records_every_stage_in_order(data_dir, tmp_path, monkeypatch):
    trace = tmp_path / "stages.jsonl"
    monkeypatch.setenv("CODEX_TRIO_STAGE_TIMING", str(trace))
    async with running_sim() as sim, gateway_on_sim(data_dir, sim) as (gateway, url):
        headers = {"authorization": f"Bearer {api_key(gateway)}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            for text in ("first, on a new upstream socket", "second, on the same conversation? no: a new one"):
                async with client.stream("POST", CHAT, json=chat(text)) as reply:
                    assert reply.status_code == 200
                    await reply.aread()
            assert (await client.get("/health")).status_code == 200
    lines = [orjson.loads(line) for line in trace.read_bytes().splitlines()]
    turns = [line for line in lines if line["path"] == CHAT]
    assert len(turns) == 2 and all(turn["status"] == 200 for turn in turns)
    first = turns[0]["stages"]
    in_time_order = [name for name, _ in breakdown(first)]
    # A new conversation opens its socket and prewarms it between the lease and the turn's frame. The turn pump
    # may encode the first batch before hypercorn has taken the response head (they run in separate tasks), so
    # those two are compared with what precedes and follows them only.
    expected = TURN_ORDER[:6] + ["ws_connected", "prewarmed"] + TURN_ORDER[6:]
    racing = {"headers_sent", "translated"}
    assert [name for name in in_time_order if name not in racing] == [n for n in expected if n not in racing]
    assert set(in_time_order) == set(expected)
    assert first["sent"] <= first["headers_sent"] <= first["first_write"]
    assert first["first_event"] <= first["translated"] <= first["first_write"]
    assert all(ms >= 0 for _, ms in breakdown(first))
    health = next(line for line in lines if line["path"] == "/health")
    assert [name for name, _ in breakdown(health["stages"])] == ["head", "app", "headers_sent", "first_write"]


async def test_nothing_is_recorded_without_the_variable(data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("CODEX_TRIO_STAGE_TIMING", raising=False)
    monkeypatch.chdir(tmp_path)
    async with running_sim() as sim, gateway_on_sim(data_dir, sim) as (gateway, url):
        async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {api_key(gateway)}"},
                                     timeout=30) as client:
            async with client.stream("POST", CHAT, json=chat("hi")) as reply:
                await reply.aread()
    assert list(tmp_path.iterdir()) == [data_dir]
