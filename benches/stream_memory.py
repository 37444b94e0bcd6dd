"""Resident memory per concurrent stream, and idle RSS (issue #20, goal 3).

Processes: one simulator per deflate setting (accepting permessage-deflate on its WebSocket, and declining it) and,
for every gateway tree given with `--tree` (default: this one), a gateway on each simulator. Every gateway first
serves `--warm` short turns one after another (imports, catalog, one upstream socket), then its RSS is the
baseline; then `--streams` clients each start a slow streamed Chat turn with their own prompt (so each has its own
conversation and upstream WebSocket), and while all of them are streaming the gateway's RSS is sampled; the
figure is (peak - baseline) / streams. With `--kept N` the gateway then serves N short turns, each with its own
prompt and as many deltas as a slow stream, unpaced (so each leaves an idle upstream WebSocket kept for its
conversation, as the soak's turns do), waits `--kept-wait` seconds and
reports (RSS - RSS before them) / N per kept conversation. The gateways are measured one after another in the
same run, so a before/after pair (`--tree /tmp/base --tree .`) sees the same machine.

    python -m benches.stream_memory [--streams 200] [--tree DIR ...] [--events 100] [--pacing-ms 50] [--kept 1000]

(from the repository root; the run takes about streams/50 + events x pacing seconds per gateway.)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from benches import servers

SLOW_MARKER = "SLOWSTREAM"
KEPT_MARKER = "KEPTTURN"  # a turn as long as a slow stream's, unpaced
HERE = servers.HERE


async def serve_sim(deflate: bool, events: int, pacing_ms: float) -> None:
    await servers.serve_sim({"text_length": events * 4, "chunk_size": 4, "pacing_ms": pacing_ms},
                            marker=SLOW_MARKER, deflate=deflate,
                            more={KEPT_MARKER: {"text_length": events * 4, "chunk_size": 4}})


async def serve_gateway(sim: dict[str, Any]) -> None:
    # one simulated account carries every stream
    await servers.serve_gateway(sim, data_prefix="stream-memory-", max_concurrent_per_account=100_000)


def spawn(tree: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, dict[str, Any]]:
    """This script in a server mode, importing codex_trio from `tree`; the process and the JSON line it prints."""
    return servers.spawn("stream_memory.py", tree, *args, env=env)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def measure(gw: dict[str, Any], pid: int, streams: int, warm: int, kept: int, kept_wait: float,
                  kept_prompt_kib: int) -> dict[str, float]:
    headers = {"authorization": f"Bearer {gw['key']}", "content-type": "application/json"}
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)

    def body(text: str) -> bytes:
        return orjson.dumps({"model": "gpt-5.5", "stream": True, "messages": [{"role": "user", "content": text}]})

    async with httpx.AsyncClient(base_url=gw["url"], timeout=600, limits=limits) as client:
        for i in range(warm):
            reply = await client.post("/v1/chat/completions", headers=headers, content=body(f"warm up {i}"))
            assert reply.status_code == 200, reply.text
        await trio.sleep(1)
        idle = rss_kib(pid)
        started = trio.Semaphore(0)
        peak = idle
        done = trio.Event()

        async def one(i: int) -> None:
            async with client.stream("POST", "/v1/chat/completions", headers=headers,
                                     content=body(f"{SLOW_MARKER} stream {i} of the benchmark")) as reply:
                if reply.status_code != 200:
                    raise SystemExit(f"stream {i}: HTTP {reply.status_code} {(await reply.aread())[:300]!r}")
                first = True
                async for _ in reply.aiter_raw():
                    if first:
                        started.release()
                        first = False

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_kib(pid))
                await trio.sleep(0.1)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sample)
            async with trio.open_nursery() as clients:
                for i in range(streams):
                    clients.start_soon(one, i)
                for _ in range(streams):
                    await started.acquire()
                for _ in range(10):  # all N are open now: sample a second more, then let them finish
                    peak = max(peak, rss_kib(pid))
                    await trio.sleep(0.1)
            done.set()
        after = rss_kib(pid)
        per_kept = None
        if kept:
            await trio.sleep(kept_wait)
            before_kept = rss_kib(pid)
            limit = trio.Semaphore(20)

            padding = "".join(f"line {n} of a long prompt\n" for n in range(kept_prompt_kib * 40))

            async def short(i: int) -> None:
                async with limit:
                    text = f"{KEPT_MARKER} {i} {padding}"
                    reply = await client.post("/v1/chat/completions", headers=headers, content=body(text))
                    assert reply.status_code == 200, reply.text

            async with trio.open_nursery() as nursery:
                for i in range(kept):
                    nursery.start_soon(short, i)
            await trio.sleep(kept_wait)
            per_kept = (rss_kib(pid) - before_kept) / kept
    return {"idle_mib": idle / 1024, "peak_mib": peak / 1024, "after_mib": after / 1024,
            "per_stream_kib": (peak - idle) / streams, "per_kept_kib": per_kept}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--events", type=int, default=100, help="text deltas per slow stream")
    parser.add_argument("--pacing-ms", type=float, default=50, help="delay between upstream events")
    parser.add_argument("--warm", type=int, default=20)
    parser.add_argument("--kept", type=int, default=0, help="then N short turns of their own: RSS per idle kept socket")
    parser.add_argument("--kept-wait", type=float, default=4.0,
                        help="seconds of quiet before the kept figure (idle sockets park their inflater after 2 s)")
    parser.add_argument("--kept-prompt-kib", type=int, default=0,
                        help="pad each kept turn's prompt by about this many KiB (a real Codex turn frame is ~70 KiB)")
    parser.add_argument("--tree", action="append", type=Path, help="a checkout whose gateway to measure (repeatable)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE[,NAME=VALUE]",
                        help="also measure each tree's gateway with these environment variables (repeatable)")
    parser.add_argument("--serve-sim", choices=["deflate", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--serve-gateway", metavar="SIM_JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sim:
        trio.run(serve_sim, args.serve_sim == "deflate", args.events, args.pacing_ms)
        return 0
    if args.serve_gateway:
        trio.run(serve_gateway, orjson.loads(args.serve_gateway))
        return 0
    trees = [tree.resolve() for tree in (args.tree or [HERE])]
    print(f"load average before: {os.getloadavg()}")
    print(f"{args.streams} concurrent streams of {args.events} events every {args.pacing_ms:g} ms; RSS of the gateway")
    print(f"{'gateway tree':<28}{'upstream':<10}{'idle MiB':>9}{'peak MiB':>10}{'after MiB':>10}{'KiB/stream':>12}"
          + (f"{'KiB/kept':>10}" if args.kept else ""))
    variants = [{}] + [dict(pair.split("=", 1) for pair in spec.split(",")) for spec in args.env]
    for mode in ("deflate", "plain"):
        sim_proc, sim = spawn(HERE, "--serve-sim", mode, "--events", str(args.events), "--pacing-ms",
                              str(args.pacing_ms))
        try:
            for tree, env in ((tree, env) for tree in trees for env in variants):
                gw_proc, gw = spawn(tree, "--serve-gateway", orjson.dumps(sim).decode(), env=env)
                try:
                    r = trio.run(measure, gw, gw_proc.pid, args.streams, args.warm, args.kept, args.kept_wait,
                                 args.kept_prompt_kib)
                finally:
                    gw_proc.terminate()
                    gw_proc.wait(20)
                label = (str(tree)[-16:] + " " + ",".join(env.values()))[-27:]
                print(f"{label:<28}{mode:<10}{r['idle_mib']:>9.1f}{r['peak_mib']:>10.1f}"
                      f"{r['after_mib']:>10.1f}{r['per_stream_kib']:>12.1f}"
                      + (f"{r['per_kept_kib']:>10.1f}" if args.kept else ""), flush=True)
        finally:
            sim_proc.terminate()
            sim_proc.wait(20)
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
