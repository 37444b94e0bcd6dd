"""What operator data costs on the request path (issue #14): time to first byte through three gateways on one
simulator, in the same run, alternating request by request at concurrency 1:

* on   — the defaults: usage accounting (batched writer) and the request log on;
* off  — `usage_stats.enabled: false`, `logs.request_log: false` (the trace, overhead header and metrics remain);
* bare — the telemetry not installed at all (no hooks, no recorder, no metrics).

Reports p50/p99 time to first text delta for each and the differences (goal: on − off within noise, < 0.1 ms
at p50).

    python -m benches.telemetry_overhead [--samples 300]

(from the repository root; four processes: the simulator, the three gateways; the client runs here.)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from benches import servers
from benches.gateway_ttfb import PROMPT, Target, percentile, spawn

MODES = ("on", "off", "bare")


async def serve_gateway(sim: dict[str, Any], mode: str) -> None:
    from codex_trio.telemetry.install import run_telemetry
    from codex_trio.telemetry.routes import register_telemetry, register_telemetry_ollama

    def without_telemetry(gateway: Any) -> None:
        gateway.background_jobs.remove(run_telemetry)
        gateway.route_registrars.remove(register_telemetry)
        gateway.ollama_route_registrars.remove(register_telemetry_ollama)
        gateway.services.telemetry = None

    off = {"usage_stats": {"enabled": False}, "logs": {"request_log": False}}
    await servers.serve_gateway(sim, data_prefix=f"telemetry-bench-{mode}-", settings=off if mode == "off" else None,
                                adjust=without_telemetry if mode == "bare" else None)


def spawn_gateway(sim: dict[str, Any], mode: str) -> tuple[subprocess.Popen, dict[str, Any]]:
    return servers.spawn("telemetry_overhead.py", servers.HERE, "--serve-gateway", orjson.dumps(sim).decode(),
                         "--mode", mode)


async def measure(gateways: dict[str, dict[str, Any]], samples: int) -> None:
    limits = httpx.Limits(max_keepalive_connections=4)
    clients = {mode: httpx.AsyncClient(base_url=gw["url"], timeout=120, limits=limits) for mode, gw in gateways.items()}
    try:
        targets = [Target(mode, clients[mode], "/v1/chat/completions",
                          {"authorization": f"Bearer {gw['key']}", "content-type": "application/json"},
                          lambda text: orjson.dumps({"model": "gpt-5.5", "stream": True,
                                                     "messages": [{"role": "user", "content": text}]}),
                          b'"delta":{"content":"', b"\n\ndata: ") for mode, gw in gateways.items()]
        for target in targets:
            for _ in range(10):
                await target.first_byte_and_text(PROMPT)
        results: dict[str, list[float]] = {t.name: [] for t in targets}
        for i in range(samples):
            order = targets[i % len(targets):] + targets[:i % len(targets)]  # rotate who goes first
            for target in order:
                results[target.name].append((await target.first_byte_and_text(PROMPT))[1])
    finally:
        for client in clients.values():
            await client.aclose()
    print(f"time to first text delta, streamed Chat turn, concurrency 1, {samples} samples each (ms)")
    print(f"{'gateway':<8}{'p50':>9}{'p90':>9}{'p99':>9}")
    for name, values in results.items():
        print(f"{name:<8}{percentile(values, .5):>9.3f}{percentile(values, .9):>9.3f}{percentile(values, .99):>9.3f}")
    for a, b in (("on", "off"), ("on", "bare")):
        print(f"{a} - {b}: p50 {percentile(results[a], .5) - percentile(results[b], .5):+.3f} ms, "
              f"p99 {percentile(results[a], .99) - percentile(results[b], .99):+.3f} ms")


def per_request_cost(n: int = 20_000) -> None:
    """CPU per request of the telemetry itself, in-process (no network, no scheduler noise): a trace through
    every hook the dispatcher and the app call, then the record to the writer queue, the request log and the
    metrics."""
    import time

    from codex_trio.config.store import ConfigStore
    from codex_trio.telemetry.service import Telemetry
    from codex_trio.turn import Turn
    from codex_trio.upstream.events import Usage

    data = Path(tempfile.mkdtemp(prefix="telemetry-micro-")) / "data"
    data.mkdir(mode=0o700)
    telemetry = Telemetry(ConfigStore(data, environ={}))
    turn = Turn(request={"model": "gpt-5.5"}, requested_model="gpt-5.5")
    usage = Usage(input_tokens=1200, output_tokens=300, cached_tokens=1024, reported=True)
    began = time.process_time()
    for _ in range(n):
        trace = telemetry.begin("openai", "/v1/chat/completions", "POST", user_agent="bench", client_ip="127.0.0.1")
        trace.admit(turn)
        trace.sending()
        trace.opened("acct", "gpt-5.5", "websocket")
        trace.responded_with(200)
        trace.closed(usage, None)
    per = (time.process_time() - began) / n * 1e6
    print(f"telemetry CPU per request (in-process, {n:,} traces, records queued for the writer): {per:.1f} µs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--serve-gateway", metavar="SIM_JSON", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_gateway:
        trio.run(serve_gateway, orjson.loads(args.serve_gateway), args.mode)
        return 0
    sim_proc, sim = spawn("--serve-sim", "--long-chars", "100", "--chunk", "4")
    procs = []
    try:
        gateways = {}
        for mode in MODES:
            proc, gateways[mode] = spawn_gateway(sim, mode)
            procs.append(proc)
        trio.run(measure, gateways, args.samples)
        per_request_cost()
    finally:
        for proc in procs + [sim_proc]:
            proc.terminate()
            proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
