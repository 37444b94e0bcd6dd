"""Many concurrent slow streams (issue #20): how late does each event reach the client?

The simulator sends every stream's text deltas `--pacing-ms` apart (default 50 ms: 20 events/s); `--streams`
streamed Chat turns through a gateway run at once, each its own conversation (its own upstream WebSocket). The
same number of streams straight from the simulator (TLS, its SSE) run as a phase of their own in the same run,
and every `--tree` (a checkout, e.g. `git worktree add /tmp/base main`) has a gateway of its own on the one
simulator; `--rounds` repeats the phases in rotation. The gateway's added delay is its gap p99 minus the direct
one of the same round (goal: <= 50 ms at 1,000 streams).

Only the gaps while every stream is streaming count: from the last stream's first delta to the first stream's
last one. Before that window the server is still opening streams — a burst of TLS handshakes and turn starts
that delays the streams already open by seconds — and with 1,000 streams of 40 deltas (2 s each) it lasted longer
than a stream, so no moment had all 1,000 streaming and the gaps measured the opening burst (the default is now
300 deltas, 15 s a stream). Every delta is timed on its own, also when several arrive in one read (a gateway
batching two events delivers the second with no gap); 20 streams through each path before the first round are
not counted (a gateway's first turns import and fill caches: 150-250 ms gaps at 50 streams).

The client is the Go load client (`benches/loadclient/`, `-streams`): a Python client reading 20,000 events/s
over 1,000 sockets takes most of a core of this 2-core VM, which the simulator and the gateway then compete for
(`--client python` keeps a trio client, for a machine without `go`). Printed per phase: the window, gaps p50 /
p99 / max in it, the simulator's CPU (when it nears a core, the direct gaps are its own lateness), and for a
gateway its CPU (also per relayed delta, turn starts included) and RSS.

    python -m benches.stream_pacing [--streams 1000] [--events 300] [--pacing-ms 50] [--tree DIR ...] [--rounds 1]
        [--client go|python]
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import trio

from benches import servers

HERE = servers.HERE
PACED_MARKER = "PACEDSTREAM"
WARM_MARKER = "PACEDWARMUP"  # a short reply of WARM_EVENTS deltas for the warm-up streams
WARM_STREAMS, WARM_EVENTS = 20, 10  # run through every path before the first round


async def serve_sim(events: int, pacing_ms: float) -> None:
    await servers.serve_sim({"text_length": events * 4, "chunk_size": 4, "pacing_ms": pacing_ms},
                            marker=PACED_MARKER,
                            more={WARM_MARKER: {"text_length": WARM_EVENTS * 4, "chunk_size": 4,
                                                "pacing_ms": pacing_ms}})


async def serve_gateway(sim: dict[str, Any]) -> None:
    await servers.serve_gateway(sim, data_prefix="stream-pacing-", max_concurrent_per_account=100_000)


def spawn(tree: Path, *args: str) -> tuple[subprocess.Popen, dict[str, Any]]:
    return servers.spawn("stream_pacing.py", tree, *args)


def process_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS KiB) of `pid`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), rss


class Target:
    """Where a paced stream is asked for: a gateway (Chat, plain HTTP) or the simulator direct (TLS)."""

    def __init__(self, name: str, url: str, path: str, headers: dict[str, str], body: Any, delta_marker: bytes,
                 pid: int | None = None, ca_file: str | None = None) -> None:
        self.name, self.url, self.pid, self.ca_file = name, url.rstrip("/") + path, pid, ca_file
        scheme, rest = url.split("://")
        host_port, _, prefix = rest.partition("/")
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self.path = f"/{prefix}{path}" if prefix else path
        self.headers, self.body, self.delta_marker = headers, body, delta_marker

    async def open(self) -> trio.abc.Stream:
        stream: trio.abc.Stream = await trio.open_tcp_stream(self.host, self.port)
        if self.ca_file is not None:
            import ssl

            context = ssl.create_default_context(cafile=self.ca_file)
            stream = trio.SSLStream(stream, context, server_hostname=self.host)
        return stream


def gateway_target(name: str, gw: dict[str, Any], pid: int) -> Target:
    return Target(name, gw["url"], "/v1/chat/completions", {"authorization": f"Bearer {gw['key']}"},
                  lambda text: {"model": "gpt-5.5", "stream": True, "messages": [{"role": "user", "content": text}]},
                  b'"delta":{"content":"', pid=pid)


def direct_target(sim: dict[str, Any]) -> Target:
    return Target("sim direct", sim["backend_base"], "/codex/responses",
                  {"authorization": f"Bearer {sim['access_token']}", "chatgpt-account-id": sim["account_id"],
                   "accept": "text/event-stream", "accept-encoding": "identity"},
                  lambda text: {"model": "gpt-5.5", "instructions": "", "stream": True, "store": False,
                                "tool_choice": "auto", "parallel_tool_calls": False, "tools": [],
                                "input": [{"type": "message", "role": "user", "content": [
                                    {"type": "input_text", "text": text}]}]},
                  b'"type":"response.output_text.delta"', ca_file=sim["ca_file"])


async def one_stream(target: Target, prompt: str, began: float, arrivals: list[list[float]],
                     failures: list[str]) -> None:
    """The Python client's stream: plain HTTP/1.1 over trio sockets, every delta timed when its read returns."""
    body = orjson.dumps(target.body(prompt))
    extra = "".join(f"{name}: {value}\r\n" for name, value in target.headers.items())
    head = (f"POST {target.path} HTTP/1.1\r\nhost: {target.host}\r\n{extra}content-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode()
    stream = await target.open()
    async with stream:
        await stream.send_all(head + body)
        times: list[float] = []
        received = b""
        tail = b""
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError as exc:  # TLS peer closing without close_notify, or a reset
                if not received:  # a reset before any byte: the request was lost
                    received = f"reset before any byte ({exc.__cause__!r})".encode()
                break
            if not chunk:
                break
            now = (time.perf_counter() - began) * 1000
            if not received:
                received = chunk
            seen = tail + chunk
            times += [now] * (seen.count(target.delta_marker) - tail.count(target.delta_marker))
            tail = chunk[-len(target.delta_marker):]
        if not received.startswith(b"HTTP/1.1 200"):
            failures.append(failure_kind(received))
        elif times:
            arrivals.append(times)


def failure_kind(received: bytes) -> str:
    """A failed stream in a few words: its status line and error code, or how it ended without one."""
    if not received:
        return "closed before any byte"
    if not received.startswith(b"HTTP/"):
        return received.decode(errors="replace")[:120]
    status = received.split(b"\r\n", 1)[0].decode(errors="replace")
    code = received.partition(b'"code":"')[2].partition(b'"')[0].decode(errors="replace")
    return f"{status} {code}".strip()


async def python_streams(target: Target, streams: int, marker: str) -> tuple[list[list[float]], list[str]]:
    arrivals: list[list[float]] = []
    failures: list[str] = []
    began = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for who in range(streams):
            nursery.start_soon(one_stream, target, f"{marker} stream {who}", began, arrivals, failures)
            if who % 50 == 49:
                await trio.sleep(0.01)  # a ramp, not one burst of connects
    return arrivals, failures


async def go_streams(binary: Path, target: Target, streams: int, marker: str) -> tuple[list[list[float]], list[str]]:
    command = [str(binary), "-url", target.url, "-streams", str(streams), "-body", "-",
               "-marker", target.delta_marker.decode(), "-header", "content-type: application/json"]
    for name, value in target.headers.items():
        command += ["-header", f"{name}: {value}"]
    if target.ca_file:
        command += ["-cafile", target.ca_file]
    body = orjson.dumps(target.body(f"{marker} stream {{n}}"))  # the Go client numbers each stream's prompt
    done = await trio.run_process(command, stdin=body, capture_stdout=True, check=True)
    result = orjson.loads(done.stdout)
    return result["arrivals_ms"], result["failed"]


def all_open_window(arrivals: list[list[float]]) -> tuple[float, float]:
    """(from, until) in ms: while every stream was streaming — from the last stream's first delta to the first
    stream's last one (empty when a stream ended before the last one began)."""
    return max(times[0] for times in arrivals), min(times[-1] for times in arrivals)


def gaps_within(arrivals: list[list[float]], opened: float, until: float) -> list[float]:
    """The gaps between consecutive deltas of a stream, both inside the window."""
    return [later - earlier for times in arrivals for earlier, later in zip(times, times[1:])
            if earlier >= opened and later <= until]


async def run_streams(target: Target, sim_pid: int, streams: int, pacing_ms: float,
                      binary: Path | None) -> float | None:
    """One phase: `streams` paced streams from `target`; prints its figures and returns its gap p99."""
    cpu_before, rss_before = process_stats(target.pid) if target.pid else (0.0, 0)
    sim_cpu_before = process_stats(sim_pid)[0]
    peak_rss = rss_before
    began = time.perf_counter()
    async with trio.open_nursery() as nursery:
        async def sample_rss() -> None:
            nonlocal peak_rss
            while True:
                await trio.sleep(1.0)
                if target.pid:
                    peak_rss = max(peak_rss, process_stats(target.pid)[1])

        nursery.start_soon(sample_rss)
        if binary is not None:
            arrivals, failures = await go_streams(binary, target, streams, PACED_MARKER)
        else:
            arrivals, failures = await python_streams(target, streams, PACED_MARKER)
        nursery.cancel_scope.cancel()
    wall = time.perf_counter() - began
    sim_cpu = process_stats(sim_pid)[0] - sim_cpu_before
    opened, until = all_open_window(arrivals) if arrivals else (0.0, 0.0)
    gaps = sorted(gaps_within(arrivals, opened, until))
    pick = lambda q: gaps[min(len(gaps) - 1, int(q * len(gaps)))]  # noqa: E731
    print(f"{target.name}: {streams} streams, {len(failures)} failed, wall {wall:.1f} s, simulator CPU {sim_cpu:.2f} s "
          f"({sim_cpu / wall * 100:.0f} % of a core)")
    print(f"  all streaming from {opened / 1000:.1f} s to {until / 1000:.1f} s: {len(gaps)} gaps", end="")
    if gaps:
        print(f", between deltas (pacing {pacing_ms:.0f} ms): p50 {pick(.5):.1f}  p99 {pick(.99):.1f}  "
              f"max {gaps[-1]:.1f} ms", end="")
    print(flush=True)
    if target.pid:
        cpu = process_stats(target.pid)[0] - cpu_before
        events = sum(len(times) for times in arrivals)
        print(f"  gateway CPU {cpu:.2f} s ({cpu / wall * 100:.0f} % of a core, {cpu / max(events, 1) * 1e6:.0f} µs per "
              f"relayed delta), RSS {rss_before / 1024:.1f} MiB before, {peak_rss / 1024:.1f} MiB with the streams open")
    for kind, count in collections.Counter(failures).most_common():
        print(f"  failed: {count} x {kind}")
    return pick(.99) if gaps else None


async def measure(sim: dict[str, Any], sim_pid: int, gateways: list[tuple[str, int, dict[str, Any]]], streams: int,
                  pacing_ms: float, rounds: int, client: str) -> None:
    binary = None
    if client == "go":
        from benches import go_client

        binary = go_client.build()
    direct = direct_target(sim)
    via_gateway = [gateway_target(name, gw, pid) for name, pid, gw in gateways]
    added: dict[str, list[float]] = {target.name: [] for target in via_gateway}
    for target in [direct, *via_gateway]:  # first turns import, connect and fill caches: not part of a round
        if binary is not None:
            await go_streams(binary, target, WARM_STREAMS, WARM_MARKER)
        else:
            await python_streams(target, WARM_STREAMS, WARM_MARKER)
    for round_no in range(rounds):
        print(f"-- round {round_no + 1}, load average {os.getloadavg()}")
        direct_p99 = await run_streams(direct, sim_pid, streams, pacing_ms, binary)
        shift = round_no % len(via_gateway)
        for target in via_gateway[shift:] + via_gateway[:shift]:
            p99 = await run_streams(target, sim_pid, streams, pacing_ms, binary)
            if p99 is not None and direct_p99 is not None:
                added[target.name].append(p99 - direct_p99)
    print("\nadded inter-event gap p99 (gateway - direct of the same round), ms:")
    for name, values in added.items():
        print(f"  {name[-40:]:<40} " + "  ".join(f"{value:.1f}" for value in values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--events", type=int, default=300, help="text deltas per stream")
    parser.add_argument("--pacing-ms", type=float, default=50)
    parser.add_argument("--tree", action="append", type=Path, help="a checkout whose gateway to measure (repeatable)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--client", choices=("go", "python"), default="go")
    parser.add_argument("--serve-sim", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-gateway", metavar="SIM_JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sim:
        trio.run(serve_sim, args.events, args.pacing_ms)
        return 0
    if args.serve_gateway:
        trio.run(serve_gateway, orjson.loads(args.serve_gateway))
        return 0
    trees = [tree.resolve() for tree in (args.tree or [HERE])]
    print(f"load average before: {os.getloadavg()}")
    sim_proc, sim = spawn(HERE, "--serve-sim", "--events", str(args.events), "--pacing-ms", str(args.pacing_ms))
    procs = []
    try:
        gateways = []
        for tree in trees:
            proc, gw = spawn(tree, "--serve-gateway", orjson.dumps(sim).decode())
            procs.append(proc)
            gateways.append((str(tree), proc.pid, gw))
        trio.run(measure, sim, sim_proc.pid, gateways, args.streams, args.pacing_ms, args.rounds, args.client)
    finally:
        for proc in [*procs, sim_proc]:
            proc.terminate()
            proc.wait(20)
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
