"""An upstream that falls silent mid-stream for longer than `api.stream_idle_timeout_seconds`: the stream ends with
the protocol's error frame (504 `upstream_idle_timeout`), the text before it intact, and the turn is closed."""

from __future__ import annotations

import httpx
import orjson

from codex_trio.sim import running_sim
from tests.conftest import api_key, gateway_on_sim

TEXT = "abcdefghijklmnop"


async def test_a_silence_past_the_idle_timeout_ends_the_stream_with_its_error_frame(data_dir):
    async with running_sim(accounts=1) as sim:
        sim.script({"match": {"user_text": "stall"}, "reply": {"text": TEXT, "chunk_size": 4, "idle_gap_ms": 3000,
                                                                "idle_gap_after": 4}})
        local = {"api": {"stream_idle_timeout_seconds": 0.5}}
        async with gateway_on_sim(data_dir, sim, local=local) as (gateway, url):
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                reply = await client.post("/v1/chat/completions", headers={"authorization": f"Bearer {api_key(gateway)}"},
                                          json={"model": "gpt-5.5", "stream": True,
                                                "messages": [{"role": "user", "content": "stall here"}]})
            assert gateway.services.pool.runtime_info(gateway.services.pool.accounts()[0].id)["in_flight"] == 0
    assert reply.status_code == 200
    frames = [orjson.loads(line[len("data: "):]) for line in reply.text.splitlines()
              if line.startswith("data: {")]
    text = "".join(f["choices"][0]["delta"].get("content") or "" for f in frames if f.get("choices"))
    assert TEXT.startswith(text) and text != TEXT  # what came before the silence, and no more
    assert frames[-1]["error"]["code"] == "upstream_idle_timeout", frames[-1]
