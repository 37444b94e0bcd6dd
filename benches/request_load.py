"""Short non-streamed requests at concurrency 50 (issue #20): requests/s and the gateway's CPU per request.

One simulator, and for every `--tree` (a checkout, e.g. `git worktree add /tmp/base main`) a gateway on it, each
its own process (started by `gateway_ttfb.py`'s server modes, importing `codex_trio` from that tree). The client
runs `--clients` concurrent keep-alive clients, each sending `--requests` short non-streamed Chat requests (its
own prompt, so its own conversation and upstream socket), in rounds that rotate over the gateways and the
simulator reached directly (the same short turn as a streamed backend request, which is all the backend takes).

Printed per round and target: requests/s, latency p50 / p99, and for a gateway the CPU its process used per
request (`/proc/<pid>/stat`, user + system, all threads, and of it the Python thread's); at the end the medians and each gateway's requests/s
as a ratio to the simulator's in the same rounds.

    python -m benches.request_load [--clients 50] [--requests 20] [--rounds 3] [--tree DIR ...]
"""

from __future__ import annotations

import argparse
import os
import ssl
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx
import orjson
import trio

from benches import servers

HERE = servers.HERE


def spawn(tree: Path, *args: str) -> tuple[subprocess.Popen, dict[str, Any]]:
    """`gateway_ttfb.py` in a server mode with `codex_trio` imported from `tree`."""
    return servers.spawn("gateway_ttfb.py", tree, *args)


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """CPU (user + system) of the process `pid`, or of its one thread `thread`."""
    stat = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


Send = Callable[[httpx.AsyncClient, int], Awaitable[None]]


def gateway_sender(gw: dict[str, Any]) -> Send:
    headers = {"authorization": f"Bearer {gw['key']}", "content-type": "application/json"}

    async def send(client: httpx.AsyncClient, who: int) -> None:
        body = orjson.dumps({"model": "gpt-5.5", "messages": [{"role": "user", "content": f"Client {who} asks"}]})
        reply = await client.post("/v1/chat/completions", headers=headers, content=body)
        assert reply.status_code == 200, reply.text

    return send


def direct_sender(sim: dict[str, Any]) -> Send:
    headers = {"authorization": f"Bearer {sim['access_token']}", "chatgpt-account-id": sim["account_id"],
               "content-type": "application/json", "accept": "text/event-stream", "accept-encoding": "identity"}

    async def send(client: httpx.AsyncClient, who: int) -> None:
        body = orjson.dumps({"model": "gpt-5.5", "instructions": "", "stream": True, "store": False,
                             "tool_choice": "auto", "parallel_tool_calls": False, "tools": [],
                             "input": [{"type": "message", "role": "user",
                                        "content": [{"type": "input_text", "text": f"Client {who} asks"}]}]})
        reply = await client.post("/codex/responses", headers=headers, content=body)
        assert reply.status_code == 200 and b"response.completed" in reply.content, reply.status_code

    return send


async def load(client: httpx.AsyncClient, send: Send, clients: int, requests: int) -> tuple[float, list[float]]:
    latencies: list[float] = []

    async def one(who: int) -> None:
        for _ in range(requests):
            began = time.perf_counter()
            await send(client, who)
            latencies.append((time.perf_counter() - began) * 1000)

    began = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for who in range(clients):
            nursery.start_soon(one, who)
    return clients * requests / (time.perf_counter() - began), sorted(latencies)


async def measure(sim: dict[str, Any], gateways: list[tuple[str, int, dict[str, Any]]], clients: int,
                  requests: int, rounds: int) -> None:
    limits = httpx.Limits(max_connections=clients + 5, max_keepalive_connections=clients + 5)
    context = ssl.create_default_context(cafile=sim["ca_file"])
    targets: list[tuple[str, int | None, httpx.AsyncClient, Send]] = [
        ("sim direct", None, httpx.AsyncClient(base_url=sim["backend_base"], verify=context, timeout=120,
                                               limits=limits), direct_sender(sim))]
    for name, pid, gw in gateways:
        targets.append((name, pid, httpx.AsyncClient(base_url=gw["url"], timeout=120, limits=limits),
                        gateway_sender(gw)))
    rates: dict[str, list[float]] = {name: [] for name, *_ in targets}
    cpu_ms: dict[str, list[float]] = {name: [] for name, *_ in targets}
    python_ms: dict[str, list[float]] = {name: [] for name, *_ in targets}  # the Python (event loop) thread
    for _, _, client, send in targets:  # warm: every client's connection and conversation socket
        await load(client, send, clients, 2)
    print(f"{'round':<6}{'target':<30}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>12}{'of it Python':>14}")
    for round_no in range(rounds):
        order = targets[round_no % len(targets):] + targets[:round_no % len(targets)]
        for name, pid, client, send in order:
            cpu_before = cpu_seconds(pid) if pid else 0.0
            python_before = cpu_seconds(pid, pid) if pid else 0.0
            rate, latencies = await load(client, send, clients, requests)
            per_request = (cpu_seconds(pid) - cpu_before) * 1000 / (clients * requests) if pid else None
            rates[name].append(rate)
            if per_request is not None:
                cpu_ms[name].append(per_request)
                python_ms[name].append((cpu_seconds(pid, pid) - python_before) * 1000 / (clients * requests))
            pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
            cpu_text = f"{per_request:>12.3f}{python_ms[name][-1]:>14.3f}" if per_request is not None else ""
            print(f"{round_no:<6}{name[-30:]:<30}{rate:>9.1f}{pick(.5):>9.1f}{pick(.99):>9.1f}{cpu_text}", flush=True)
    for _, _, client, _ in targets:
        await client.aclose()
    direct = statistics.median(rates["sim direct"])
    print(f"\nmedians over {rounds} rounds ({clients} clients x {requests} requests each per round)")
    for name, *_ in targets:
        cpu_text = (f", CPU {statistics.median(cpu_ms[name]):.3f} ms/request (Python thread "
                    f"{statistics.median(python_ms[name]):.3f})" if cpu_ms[name] else "")
        print(f"  {name[-30:]:<30} {statistics.median(rates[name]):8.1f} req/s "
              f"({statistics.median(rates[name]) / direct:.2f} x sim direct){cpu_text}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20, help="per client and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tree", action="append", type=Path, help="a checkout whose gateway to measure (repeatable)")
    args = parser.parse_args()
    trees = [tree.resolve() for tree in (args.tree or [HERE])]
    print(f"load average before: {os.getloadavg()}")
    sim_proc, sim = spawn(HERE, "--serve-sim")
    procs = []
    try:
        gateways = []
        for tree in trees:
            proc, gw = spawn(tree, "--serve-gateway", orjson.dumps(sim).decode())
            procs.append(proc)
            gateways.append((str(tree), proc.pid, gw))
        trio.run(measure, sim, gateways, args.clients, args.requests, args.rounds)
    finally:
        for proc in [*procs, sim_proc]:
            proc.terminate()
            proc.wait(20)
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
