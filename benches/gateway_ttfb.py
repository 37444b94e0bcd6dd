"""What the gateway adds on top of the backend: time to first token, and relay throughput (issue #6).

Three processes, so that no two share an event loop: the simulator, the gateway (pointed at the simulator) and
this client. In the same run the client sends

* the same streamed turn through the gateway (`POST /v1/chat/completions`, stream) and straight to the simulator
  (`POST /backend-api/codex/responses`, SSE, with a valid sim token), alternately, at concurrency 1, and reports
  p50/p99 time to first byte and to the first text delta, for both and their difference
  (goal: ≤ 1 ms added at p50, ≤ 3 ms at p99);
* one long reply (many small text deltas) both ways, and reports upstream events relayed per second through the
  Chat translator, plus events per CPU-second of the gateway process (goal ≥ 80 000 events/s on one core). The
  long reply is read by the Go load client (`benches/loadclient/`, built at run time; `--client httpx` or no `go`
  installed: the trio + httpx client), so that the client's SSE parsing does not take the core the gateway needs.
* with `--tree DIR` (repeatable; a checkout, e.g. `git worktree add /tmp/base main`), a gateway importing
  `codex_trio` from each tree, all on the one simulator, measured in rotation (before / after in one run).

* with `--stages`, the gateway records per-stage timing (`CODEX_TRIO_STAGE_TIMING`), the run adds `--new` turns
  that each start a new conversation (a new upstream WebSocket: TCP, TLS, upgrade, prewarm) next to as many
  direct ones, and it prints the p50 of every stage for turns on a reused socket and on a new one.

    python -m benches.gateway_ttfb [--samples 300] [--long-chars 200000] [--chunk 4] [--stages]
                                   [--client go|httpx] [--long-rounds 3] [--tree DIR ...]

(from the repository root; the run is bounded: samples x 2 short turns, `--long-rounds` long replies each way;
`--samples 0` measures only the long reply.)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from benches import servers

LONG_MARKER = "LONGREPLY"
PROMPT = "Say hello to the benchmark"
HERE = servers.HERE


# ---- the two server processes (benches/servers.py) ----------------------------------------------------------

async def serve_sim(long_chars: int, chunk: int) -> None:
    await servers.serve_sim({"text_length": long_chars, "chunk_size": chunk}, marker=LONG_MARKER)


async def serve_gateway(sim: dict[str, Any]) -> None:
    await servers.serve_gateway(sim)


def spawn(*args: str, tree: Path = HERE, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, dict[str, Any]]:
    """This script in a server mode, importing `codex_trio` from `tree`; the process and the JSON line it printed."""
    return servers.spawn("gateway_ttfb.py", tree, *args, env=env)


# ---- the client ------------------------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Target:
    """One way to send a turn: the gateway's Chat API, or the simulator's backend API."""

    def __init__(self, name: str, client: httpx.AsyncClient, path: str, headers: dict[str, str],
                 body: Any, text_marker: bytes, event_marker: bytes, *, pid: int | None = None,
                 ca_file: str | None = None) -> None:
        self.name, self.client, self.path, self.headers = name, client, path, headers
        self.body, self.text_marker, self.event_marker = body, text_marker, event_marker
        self.pid, self.ca_file = pid, ca_file  # pid: the gateway's process (None: the simulator direct)

    async def first_byte_and_text(self, prompt: str) -> tuple[float, float]:
        start = time.perf_counter()
        first_byte = first_text = None
        async with self.client.stream("POST", self.path, headers=self.headers, content=self.body(prompt)) as reply:
            async for chunk in reply.aiter_raw():
                now = time.perf_counter()
                first_byte = first_byte or now
                if first_text is None and self.text_marker in chunk:
                    first_text = now
        assert reply.status_code == 200 and first_text is not None, (self.name, reply.status_code)
        return (first_byte - start) * 1000, (first_text - start) * 1000

    async def long_reply(self) -> tuple[int, int, float, float]:
        """(bytes, client frames, seconds, seconds to the first byte) for the long reply."""
        size = frames = 0
        tail = b""
        start = time.perf_counter()
        first_byte = None
        async with self.client.stream("POST", self.path, headers=self.headers,
                                      content=self.body(f"{LONG_MARKER} please")) as reply:
            async for chunk in reply.aiter_raw():
                first_byte = first_byte or time.perf_counter()
                size += len(chunk)
                frames += (tail + chunk).count(self.event_marker) - tail.count(self.event_marker)
                tail = chunk[-16:]
        assert reply.status_code == 200 and first_byte is not None, (self.name, reply.status_code)
        return size, frames, time.perf_counter() - start, first_byte - start

    async def long_reply_go(self, binary: Path) -> tuple[int, int, float, float]:
        """The same, read by the Go load client (frames: its count of `data:` lines)."""
        from benches import go_client

        result = await go_client.stream(binary, f"{self.client.base_url}".rstrip("/") + self.path, self.headers,
                                        self.body(f"{LONG_MARKER} please"), ca_file=self.ca_file)
        assert result["status"] == 200, (self.name, result)
        return result["bytes"], result["events"], result["seconds"], result["ttfb_ms"] / 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(sim: dict[str, Any], gateways: list[tuple[str, int, dict[str, Any]]], samples: int,
                  long_chars: int, chunk: int, new: int, client: str, long_rounds: int) -> None:
    import ssl

    context = ssl.create_default_context(cafile=sim["ca_file"])
    limits = httpx.Limits(max_keepalive_connections=4)
    async with contextlib.AsyncExitStack() as stack:
        via_gateway = []
        for name, pid, gw in gateways:
            gw_client = await stack.enter_async_context(httpx.AsyncClient(base_url=gw["url"], timeout=120,
                                                                          limits=limits))
            via_gateway.append(Target(
                name, gw_client, "/v1/chat/completions",
                {"authorization": f"Bearer {gw['key']}", "content-type": "application/json"},
                lambda text: orjson.dumps({"model": "gpt-5.5", "stream": True,
                                           "messages": [{"role": "user", "content": text}]}),
                b'"delta":{"content":"', b"\n\ndata: ", pid=pid))
        sim_client = await stack.enter_async_context(httpx.AsyncClient(base_url=sim["backend_base"], timeout=120,
                                                                       verify=context, limits=limits))
        direct = Target(
            "direct", sim_client, "/codex/responses",
            {"authorization": f"Bearer {sim['access_token']}", "chatgpt-account-id": sim["account_id"],
             "content-type": "application/json", "accept": "text/event-stream",
             "accept-encoding": "identity"},  # the simulator compresses for clients that accept it (raw bytes here)
            lambda text: orjson.dumps({"model": "gpt-5.5", "instructions": "", "stream": True, "store": False,
                                       "tool_choice": "auto", "parallel_tool_calls": False, "tools": [],
                                       "input": [{"type": "message", "role": "user",
                                                  "content": [{"type": "input_text", "text": text}]}]}),
            b"event: response.output_text.delta", b"event: ", ca_file=sim["ca_file"])
        targets = [direct, *via_gateway]

        for target in targets:  # warm every path (connections, upstream socket, caches)
            for _ in range(10):
                await target.first_byte_and_text(PROMPT)
        if samples:
            await first_bytes(targets, samples, new)

        if not long_rounds:
            return
        binary = None
        if client == "go":
            from benches import go_client

            binary = go_client.build()
        upstream_events = -(-long_chars // chunk)
        print(f"\nlong reply: {long_chars} characters in {upstream_events} text deltas of {chunk} characters, "
              f"read by the {'Go load client' if binary else 'httpx client'}")
        print("(events/s: over the whole reply; streaming: from its first byte, i.e. without the simulator's time to "
              "prepare it)")
        print(f"{'path':<20}{'seconds':>9}{'1st byte':>9}{'frames':>9}{'MB':>8}{'events/s':>11}{'streaming':>11}"
              f"{'gw CPU s':>10}{'events/CPU-s':>14}")
        rates: dict[str, list[float]] = {target.name: [] for target in targets}
        streaming: dict[str, list[float]] = {target.name: [] for target in targets}
        per_cpu: dict[str, list[float]] = {target.name: [] for target in targets}
        for round_no in range(long_rounds):
            shift = round_no % len(targets)
            for target in targets[shift:] + targets[:shift]:
                cpu_before = cpu_seconds(target.pid) if target.pid else 0.0
                if binary is not None:
                    size, frames, seconds, first = await target.long_reply_go(binary)
                else:
                    size, frames, seconds, first = await target.long_reply()
                cpu = cpu_seconds(target.pid) - cpu_before if target.pid else 0.0
                rates[target.name].append(upstream_events / seconds)
                streaming[target.name].append(upstream_events / max(seconds - first, 1e-6))
                if cpu > 0:
                    per_cpu[target.name].append(upstream_events / cpu)
                print(f"{target.name:<20}{seconds:>9.3f}{first:>9.3f}{frames:>9}{size / 1e6:>8.2f}"
                      f"{upstream_events / seconds:>11,.0f}{streaming[target.name][-1]:>11,.0f}{cpu:>10.2f}"
                      + (f"{upstream_events / cpu:>14,.0f}" if cpu > 0 else ""))
        print("\nmedians")
        for name in rates:
            line = (f"{name:<20}{statistics.median(rates[name]):>11,.0f} events/s"
                    f"{statistics.median(streaming[name]):>11,.0f} streaming")
            if per_cpu[name]:
                line += f"{statistics.median(per_cpu[name]):>12,.0f} events/CPU-s"
            if name != "direct":
                line += f"   ({statistics.median(rates[name]) / statistics.median(rates['direct']):.2f} of direct)"
            print(line)


async def first_bytes(targets: list[Target], samples: int, new: int) -> None:
    """TTFB of the short streamed turn, every target in rotation; 'added' = each gateway minus direct."""
    results: dict[str, tuple[list[float], list[float]]] = {target.name: ([], []) for target in targets}
    for i in range(samples):
        shift = i % len(targets)
        for target in targets[shift:] + targets[:shift]:
            byte_ms, text_ms = await target.first_byte_and_text(PROMPT)
            results[target.name][0].append(byte_ms)
            results[target.name][1].append(text_ms)

    print(f"time to first byte / first text delta, streamed turn, concurrency 1, {samples} samples each (ms)")
    print(f"{'path':<20}{'byte p50':>10}{'byte p99':>10}{'text p50':>10}{'text p99':>10}")
    for name, (bytes_ms, text_ms) in results.items():
        print(f"{name:<20}{percentile(bytes_ms, .5):>10.3f}{percentile(bytes_ms, .99):>10.3f}"
              f"{percentile(text_ms, .5):>10.3f}{percentile(text_ms, .99):>10.3f}")
    d = results["direct"][1]
    for name, (_, g) in results.items():
        if name != "direct":
            print(f"{'added ' + name:<20}{'':>20}{percentile(g, .5) - percentile(d, .5):>10.3f}"
                  f"{percentile(g, .99) - percentile(d, .99):>10.3f}   (first text, gateway - direct)")

    if new:
        fresh: dict[str, list[float]] = {target.name: [] for target in targets}
        for i in range(new):  # a prompt never seen before: a new conversation, so a new upstream socket
            shift = i % len(targets)
            for target in targets[shift:] + targets[:shift]:
                fresh[target.name].append((await target.first_byte_and_text(f"{PROMPT} number {i}"))[1])
        d = fresh["direct"]
        for name, g in fresh.items():
            if name != "direct":
                print(f"\nnew conversation each turn, {new} samples each: first text p50 {name} "
                      f"{percentile(g, .5):.3f} ms, direct {percentile(d, .5):.3f} ms, added "
                      f"{percentile(g, .5) - percentile(d, .5):.3f} ms (p99 added "
                      f"{percentile(g, .99) - percentile(d, .99):.3f})")


def print_stages(path: Path) -> None:
    """p50 of each stage (ms since the stage before it) of the streamed Chat turns, reused socket vs new one."""
    from codex_trio.telemetry.stage_timing import breakdown

    groups: dict[str, list[dict[str, int]]] = {"reused socket": [], "new socket": []}
    for line in path.read_bytes().splitlines():
        record = orjson.loads(line)
        if record["path"] == "/v1/chat/completions" and record["status"] == 200:
            stages = record["stages"]
            groups["new socket" if "ws_connected" in stages else "reused socket"].append(stages)
    for name, records in groups.items():
        if not records:
            continue
        records = records[10:] if name == "reused socket" else records  # the warm-up turns
        steps: dict[str, list[float]] = {}
        totals = []
        for stages in records:
            for stage, ms in breakdown(stages):
                steps.setdefault(stage, []).append(ms)
            totals.append((max(stages.values()) - stages["head"]) / 1e6)
        print(f"\ngateway stages, {name} ({len(records)} turns): p50 ms since the stage before")
        order = sorted(steps, key=lambda stage: percentile([records[0].get(stage, 0)], .5))
        for stage in order:
            print(f"  {stage:<14}{percentile(steps[stage], .5):>8.3f}   (p99 {percentile(steps[stage], .99):.3f})")
        print(f"  {'head -> last':<14}{percentile(totals, .5):>8.3f}   (p99 {percentile(totals, .99):.3f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--stages", action="store_true", help="record and print the gateway's per-stage timing")
    parser.add_argument("--new", type=int, default=100, help="with --stages: turns that each open a new socket")
    parser.add_argument("--long-chars", type=int, default=200_000)
    parser.add_argument("--chunk", type=int, default=4)
    parser.add_argument("--long-rounds", type=int, default=3, help="long replies per path")
    parser.add_argument("--client", choices=("go", "httpx"), default="go",
                        help="what reads the long reply (go: the Go load client when `go` is installed)")
    parser.add_argument("--tree", action="append", type=Path,
                        help="a checkout whose gateway to measure (repeatable; default: this one)")
    parser.add_argument("--serve-sim", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-gateway", metavar="SIM_JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sim:
        trio.run(serve_sim, args.long_chars, args.chunk)
        return 0
    if args.serve_gateway:
        trio.run(serve_gateway, orjson.loads(args.serve_gateway))
        return 0
    trees = [tree.resolve() for tree in (args.tree or [HERE])]
    sim_proc, sim = spawn("--serve-sim", "--long-chars", str(args.long_chars), "--chunk", str(args.chunk))
    stages_dir = Path(tempfile.mkdtemp(prefix="gateway-stages-"))
    gateways: list[tuple[str, int, dict[str, Any]]] = []
    procs: list[subprocess.Popen] = []
    try:
        for number, tree in enumerate(trees):
            stages = stages_dir / f"{number}.jsonl"  # one file per gateway
            gw_proc, gw = spawn("--serve-gateway", orjson.dumps(sim).decode(), tree=tree,
                                env={"CODEX_TRIO_STAGE_TIMING": str(stages)} if args.stages else None)
            procs.append(gw_proc)
            gateways.append(("gateway" if len(trees) == 1 else str(tree)[-19:], gw_proc.pid, gw))
        print(f"load average: {os.getloadavg()}")
        trio.run(measure, sim, gateways, args.samples, args.long_chars, args.chunk,
                 args.new if args.stages else 0, args.client, args.long_rounds)
    finally:
        for proc in [*procs, sim_proc]:
            proc.terminate()
            proc.wait(10)
    if args.stages:
        for number, (name, _, _) in enumerate(gateways):
            print(f"\n{name}:" if len(gateways) > 1 else "", end="")
            print_stages(stages_dir / f"{number}.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
