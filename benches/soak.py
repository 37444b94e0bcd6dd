"""Soak (issue #20, goal 6): `--streams` streamed Chat turns kept running for `--minutes`, the gateway's RSS and
open descriptors sampled throughout. Goal: RSS growth < 5 %, no descriptor growth, no failed turn.

Processes (as in `stream_memory.py`, whose servers this reuses): a simulator accepting permessage-deflate (as
the real backend does), the gateway as `codex-trio run` builds it with the simulator's account, and this client.
Each of the `--streams` clients runs turns back to back: a slow streamed turn (`--events` deltas `--pacing-ms`
apart) with a prompt of its own each time, so every turn opens a new conversation and upstream WebSocket and the
idle ones are closed behind it — sockets, tasks and buffers cycle all the time.

Growth is measured between two windows of equal length (20 % of the run, at most 5 min), the first starting after
`--settle` (default 40 % of the run: idle upstream sockets are kept 15 min, at most 2,048, and the allocator's
arenas grow while they accumulate) and the last ending with the run:
RSS growth = (peak of the last window / peak of the first) - 1; descriptors likewise (max in each window).

    python -m benches.soak [--minutes 30] [--streams 200] [--events 100] [--pacing-ms 100] [--tree DIR]

(from the repository root; not for CI: the default is the 30 minutes of the goal.)
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path

import httpx
import orjson
import trio

from benches.stream_memory import HERE, SLOW_MARKER, rss_kib, spawn


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def soak(gw: dict, pid: int, *, streams: int, minutes: float,
               sample_seconds: float) -> tuple[list[dict], collections.Counter[str]]:
    headers = {"authorization": f"Bearer {gw['key']}", "content-type": "application/json"}
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    samples: list[dict] = []
    turns = {"ok": 0, "failed": 0}
    failures: collections.Counter[str] = collections.Counter()
    end = trio.current_time() + minutes * 60

    async with httpx.AsyncClient(base_url=gw["url"], timeout=120, limits=limits) as client:
        async def cycle(i: int) -> None:
            n = 0
            while trio.current_time() < end:
                n += 1
                body = orjson.dumps({"model": "gpt-5.5", "stream": True, "messages": [
                    {"role": "user", "content": f"{SLOW_MARKER} soak client {i} turn {n}"}]})
                try:
                    async with client.stream("POST", "/v1/chat/completions", headers=headers, content=body) as reply:
                        done = False
                        async for line in reply.aiter_lines():
                            done = done or line == "data: [DONE]"
                    ok = reply.status_code == 200 and done
                    why = "" if ok else f"HTTP {reply.status_code}" + ("" if done else ", no [DONE]")
                except httpx.HTTPError as exc:
                    ok, why = False, type(exc).__name__
                turns["ok" if ok else "failed"] += 1
                if why:
                    failures[why] += 1

        async def sample() -> None:
            began = time.monotonic()
            while True:
                samples.append({"t": time.monotonic() - began, "rss_kib": rss_kib(pid), "fds": open_fds(pid),
                                "ok": turns["ok"], "failed": turns["failed"], "load": os.getloadavg()[0]})
                await trio.sleep(sample_seconds)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sample)
            async with trio.open_nursery() as clients:
                for i in range(streams):
                    clients.start_soon(cycle, i)
                    await trio.sleep(0.01)  # a ramp, not 200 handshakes at once
            nursery.cancel_scope.cancel()
    samples.append({"t": samples[-1]["t"] if samples else 0.0, "rss_kib": rss_kib(pid), "fds": open_fds(pid),
                    "ok": turns["ok"], "failed": turns["failed"], "load": os.getloadavg()[0]})
    return samples, failures


def growth(samples: list[dict], key: str, settle: float, window: float) -> tuple[float, float]:
    """(max of `key` in the first window after `settle`, max in the last window)."""
    run_end = samples[-1]["t"]
    first = [s[key] for s in samples if settle <= s["t"] < settle + window]
    last = [s[key] for s in samples if s["t"] >= run_end - window]
    return max(first), max(last)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--events", type=int, default=100, help="text deltas per turn")
    parser.add_argument("--pacing-ms", type=float, default=100, help="delay between upstream events")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--settle", type=float, help="seconds before the first window (default: 40 %% of the run)")
    parser.add_argument("--tree", type=Path, default=HERE, help="the checkout whose gateway to soak")
    args = parser.parse_args()
    # idle conversations stay open up to 15 min (at most 2,048): the process reaches its working size only
    # once that many are open, so the first window starts late in the run
    settle = args.settle if args.settle is not None else args.minutes * 60 * 0.4
    window = min(300.0, args.minutes * 60 * 0.2)
    print(f"load average before: {os.getloadavg()}")
    print(f"{args.streams} streams cycling for {args.minutes:g} min, turns of {args.events} events every "
          f"{args.pacing_ms:g} ms; windows of {window:.0f} s, the first after {settle:.0f} s")
    sim_proc, sim = spawn(HERE, "--serve-sim", "deflate", "--events", str(args.events),
                          "--pacing-ms", str(args.pacing_ms))
    try:
        gw_proc, gw = spawn(args.tree.resolve(), "--serve-gateway", orjson.dumps(sim).decode())
        try:
            samples, failures = trio.run(lambda: soak(gw, gw_proc.pid, streams=args.streams, minutes=args.minutes,
                                            sample_seconds=args.sample_seconds))
        finally:
            gw_proc.terminate()
            gw_proc.wait(20)
    finally:
        sim_proc.terminate()
        sim_proc.wait(20)
    print(f"{'s':>6}{'RSS MiB':>9}{'fds':>6}{'turns ok':>10}{'failed':>8}{'load':>6}")
    step = max(1, len(samples) // 20)
    for s in samples[::step] + samples[-1:]:
        print(f"{s['t']:>6.0f}{s['rss_kib'] / 1024:>9.1f}{s['fds']:>6}{s['ok']:>10}{s['failed']:>8}{s['load']:>6.1f}")
    rss_first, rss_last = growth(samples, "rss_kib", settle, window)
    fds_first, fds_last = growth(samples, "fds", settle, window)
    rss_growth = rss_last / rss_first - 1
    failed = samples[-1]["failed"]
    print(f"RSS: first window peak {rss_first / 1024:.1f} MiB, last window peak {rss_last / 1024:.1f} MiB, "
          f"growth {rss_growth * 100:+.1f} % (goal < 5 %)")
    print(f"descriptors: first window max {fds_first}, last window max {fds_last} (goal: no growth)")
    print(f"turns: {samples[-1]['ok']} completed, {failed} failed")
    for why, count in failures.most_common():
        print(f"  failed: {count} x {why}")
    print(f"load average after: {os.getloadavg()}")
    return 0 if rss_growth < 0.05 and fds_last <= fds_first and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
