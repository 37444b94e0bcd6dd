"""Many slow streams do not run Python's cyclic garbage collector every few events (`codex_trio/collector.py`).

Each relayed event allocates a few container objects that die microseconds later; at CPython's default young
threshold (700) the collector still ran every few dozen events, and what it promoted brought full collections
that stop every stream at once (40-85 ms with 200 streams)."""

from __future__ import annotations

import gc
import time

import httpx
import trio

from codex_trio.sim import running_sim
from tests.conftest import api_key, gateway_on_sim

STREAMS, DELTAS = 10, 200


async def test_slow_streams_relay_hundreds_of_events_per_collection(data_dir):
    async with running_sim() as sim, gateway_on_sim(data_dir, sim) as (gateway, url):
        sim.script({"match": {"user_text": "slow"}, "reply": {"text_length": DELTAS * 4, "chunk_size": 4,
                                                              "pacing_ms": 5}})
        collections: list[int] = []
        relayed = 0

        def count(phase: str, info: dict) -> None:
            if phase == "start":
                collections.append(info["generation"])

        async def one_stream(client: httpx.AsyncClient, number: int) -> None:
            nonlocal relayed
            body = {"model": "gpt-5.5", "stream": True, "messages": [{"role": "user", "content": f"slow {number}"}]}
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    relayed += '"delta":{"content":"' in line

        headers = {"authorization": f"Bearer {api_key(gateway)}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            await one_stream(client, -1)  # the first turn imports and fills caches
            relayed = 0
            gc.callbacks.append(count)
            try:
                began = time.perf_counter()
                async with trio.open_nursery() as nursery:
                    for number in range(STREAMS):
                        nursery.start_soon(one_stream, client, number)
            finally:
                gc.callbacks.remove(count)
        assert relayed == STREAMS * DELTAS, relayed
        # The test's client and the simulator run in this process too and allocate as well; at the default
        # threshold this was one young collection per 6-10 events.
        print(len(collections))
        assert len(collections) * 100 < relayed, (len(collections), relayed, time.perf_counter() - began)
        assert 2 not in collections
