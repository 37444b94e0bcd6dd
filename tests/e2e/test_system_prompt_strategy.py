"""`model.system_prompt_strategy` decides where a client's system prompt reaches the backend."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from codex_trio.sim import running_sim
from tests.conftest import api_key, gateway_on_sim


@pytest.mark.parametrize(("strategy", "role"), [("instructions", "developer"), ("developer_inline", "developer"),
                                                ("system_inline", "system")])
async def test_system_prompt_placement(data_dir: Path, strategy: str, role: str):
    async with running_sim(accounts=1) as sim:
        async with gateway_on_sim(data_dir, sim, local={"model": {"system_prompt_strategy": strategy}}) as (gw, url):
            async with httpx.AsyncClient(base_url=url, timeout=30,
                                         headers={"authorization": f"Bearer {api_key(gw)}"}) as client:
                reply = await client.post("/v1/chat/completions", json={
                    "model": "gpt-5.5", "messages": [{"role": "system", "content": "Be terse."},
                                                     {"role": "user", "content": "hello"}]})
            assert reply.status_code == 200, reply.text
        [turn] = [r for r in sim.requests if r.path.endswith("/codex/responses") and r.method in ("POST", "GET")
                  and (r.body or r.ws_messages)][-1:]
        # Over the WebSocket the prewarm frame carries the leading developer/system message (as the real client
        # does for classic models) and the turn frame the rest: look at every frame the socket carried.
        bodies = [m for m in (turn.ws_messages or []) if isinstance(m, dict) and m.get("type") == "response.create"]
        bodies = bodies or [turn.body]
        assert all("instructions" not in body for body in bodies)  # 0.169.0 never sends the top-level field
        items = [item for body in bodies for item in body["input"]]
        first = next(item for item in items if item.get("role") in ("developer", "system"))
        assert first["role"] == role and first["content"][0]["text"] == "Be terse."
