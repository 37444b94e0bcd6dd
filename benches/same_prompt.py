"""Many clients sending the same first message at once (issue #20): do they share one upstream socket in turn?

The simulator and, for every `--tree`, a gateway on it (the processes of `stream_memory.py`); `--clients`
concurrent clients each send `--requests` non-streamed Chat requests with one and the same prompt. Printed per
gateway: requests per second and latency percentiles.

    python -m benches.same_prompt [--clients 20] [--requests 25] [--tree DIR ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from benches.stream_memory import HERE, spawn


async def measure(gw: dict[str, Any], clients: int, requests: int) -> tuple[float, list[float]]:
    headers = {"authorization": f"Bearer {gw['key']}", "content-type": "application/json"}
    body = orjson.dumps({"model": "gpt-5.5", "messages": [{"role": "user", "content": "The same question"}]})
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients + 5, max_keepalive_connections=clients + 5)
    async with httpx.AsyncClient(base_url=gw["url"], timeout=120, limits=limits) as client:
        for _ in range(3):  # warm: the conversation's socket exists
            assert (await client.post("/v1/chat/completions", headers=headers, content=body)).status_code == 200

        async def one() -> None:
            for _ in range(requests):
                began = time.perf_counter()
                reply = await client.post("/v1/chat/completions", headers=headers, content=body)
                assert reply.status_code == 200, reply.text
                latencies.append((time.perf_counter() - began) * 1000)

        began = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(clients):
                nursery.start_soon(one)
        wall = time.perf_counter() - began
    return clients * requests / wall, sorted(latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=25)
    parser.add_argument("--tree", action="append", type=Path)
    args = parser.parse_args()
    trees = [tree.resolve() for tree in (args.tree or [HERE])]
    print(f"load average before: {os.getloadavg()}")
    print(f"{args.clients} clients x {args.requests} non-streamed requests, all with the same prompt")
    sim_proc, sim = spawn(HERE, "--serve-sim", "deflate", "--events", "10", "--pacing-ms", "0")
    try:
        for tree in trees:
            gw_proc, gw = spawn(tree, "--serve-gateway", orjson.dumps(sim).decode())
            try:
                rate, latencies = trio.run(measure, gw, args.clients, args.requests)
            finally:
                gw_proc.terminate()
                gw_proc.wait(20)
            pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
            print(f"{str(tree)[-28:]:<28} {rate:8.1f} req/s   p50 {pick(.5):7.1f} ms   p99 {pick(.99):7.1f} ms",
                  flush=True)
    finally:
        sim_proc.terminate()
        sim_proc.wait(20)
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
