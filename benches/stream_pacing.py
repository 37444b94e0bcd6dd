"""Many concurrent slow streams (issue #20): how late does each event reach the client?

The simulator sends every stream's text deltas `--pacing-ms` apart (default 50 ms: 20 events/s); `--streams`
streamed Chat turns through the gateway run at once, each its own conversation (its own upstream WebSocket). The
client (plain HTTP/1.1 over trio sockets, no HTTP library, so that it stays light) records when each chunk
carrying a delta arrives. The same number of streams straight from the simulator (TLS, its SSE) runs first, in
the same run: the gateway's added delay is its gap p99 minus the direct one (goal: ≤ 50 ms at 1,000 streams).
Printed: gaps p50 / p99 / max per path, the gateway's CPU and RSS.

Each stream's first gap is not counted (the turn's start is staggered by the connection ramp).

    python -m benches.stream_pacing [--streams 1000] [--events 40] [--pacing-ms 50] [--tree DIR]
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


async def serve_sim(events: int, pacing_ms: float) -> None:
    await servers.serve_sim({"text_length": events * 4, "chunk_size": 4, "pacing_ms": pacing_ms},
                            marker=PACED_MARKER)


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
    """Where a paced stream is asked for: the gateway (Chat, plain HTTP) or the simulator direct (TLS)."""

    def __init__(self, url: str, path: str, headers: dict[str, str], body: Any, delta_marker: bytes,
                 ssl_context: Any = None) -> None:
        scheme, rest = url.split("://")
        host_port, _, prefix = rest.partition("/")
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self.path = f"/{prefix}{path}" if prefix else path
        self.headers, self.body, self.delta_marker, self.ssl_context = headers, body, delta_marker, ssl_context

    async def open(self) -> trio.abc.Stream:
        stream: trio.abc.Stream = await trio.open_tcp_stream(self.host, self.port)
        if self.ssl_context is not None:
            stream = trio.SSLStream(stream, self.ssl_context, server_hostname=self.host)
        return stream


def gateway_target(gw: dict[str, Any]) -> Target:
    return Target(gw["url"], "/v1/chat/completions", {"authorization": f"Bearer {gw['key']}"},
                  lambda who: {"model": "gpt-5.5", "stream": True,
                               "messages": [{"role": "user", "content": f"{PACED_MARKER} stream {who}"}]},
                  b'"content":"')


def direct_target(sim: dict[str, Any]) -> Target:
    import ssl

    return Target(sim["backend_base"], "/codex/responses",
                  {"authorization": f"Bearer {sim['access_token']}", "chatgpt-account-id": sim["account_id"],
                   "accept": "text/event-stream", "accept-encoding": "identity"},
                  lambda who: {"model": "gpt-5.5", "instructions": "", "stream": True, "store": False,
                               "tool_choice": "auto", "parallel_tool_calls": False, "tools": [],
                               "input": [{"type": "message", "role": "user", "content": [
                                   {"type": "input_text", "text": f"{PACED_MARKER} stream {who}"}]}]},
                  b"output_text.delta", ssl.create_default_context(cafile=sim["ca_file"]))


async def one_stream(target: Target, who: int, gaps: list[float], failures: list[str]) -> None:
    body = orjson.dumps(target.body(who))
    extra = "".join(f"{name}: {value}\r\n" for name, value in target.headers.items())
    head = (f"POST {target.path} HTTP/1.1\r\nhost: {target.host}\r\n{extra}content-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode()
    stream = await target.open()
    async with stream:
        await stream.send_all(head + body)
        arrivals: list[float] = []
        received = b""
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError as exc:  # TLS peer closing without close_notify, or a reset
                if not received:  # a reset before any byte: the request was lost
                    received = f"reset before any byte ({exc.__cause__!r})".encode()
                break
            if not chunk:
                break
            now = time.perf_counter()
            if not received:
                received = chunk
            if target.delta_marker in chunk:
                arrivals.append(now)
        gaps.extend((later - earlier) * 1000 for earlier, later in zip(arrivals[1:], arrivals[2:]))
        if not received.startswith(b"HTTP/1.1 200"):
            failures.append(failure_kind(received))


def failure_kind(received: bytes) -> str:
    """A failed stream in a few words: its status line and error code, or how it ended without one."""
    if not received:
        return "closed before any byte"
    if not received.startswith(b"HTTP/"):
        return received.decode(errors="replace")[:120]
    status = received.split(b"\r\n", 1)[0].decode(errors="replace")
    code = received.partition(b'"code":"')[2].partition(b'"')[0].decode(errors="replace")
    return f"{status} {code}".strip()


async def run_streams(name: str, target: Target, pid: int | None, streams: int, pacing_ms: float) -> None:
    gaps: list[float] = []
    failures: list[str] = []
    cpu_before, rss_before = process_stats(pid) if pid else (0.0, 0)
    peak_rss = rss_before
    began = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for who in range(streams):
            nursery.start_soon(one_stream, target, who, gaps, failures)
            if who % 50 == 49:
                await trio.sleep(0.01)  # a ramp, not one burst of connects
        await trio.sleep(1.0)
        if pid:
            peak_rss = process_stats(pid)[1]
    wall = time.perf_counter() - began
    gaps.sort()
    pick = lambda q: gaps[min(len(gaps) - 1, int(q * len(gaps)))]  # noqa: E731
    print(f"{name}: {streams} streams, {len(gaps)} gaps measured, {len(failures)} failed, wall {wall:.1f} s")
    if gaps:
        print(f"  gap between deltas (pacing {pacing_ms:.0f} ms): p50 {pick(.5):.1f}  p99 {pick(.99):.1f}  "
              f"max {gaps[-1]:.1f} ms", flush=True)
    if pid:
        cpu = process_stats(pid)[0] - cpu_before
        print(f"  gateway CPU {cpu:.2f} s ({cpu / wall * 100:.0f} % of a core), RSS {rss_before / 1024:.1f} MiB "
              f"before, {peak_rss / 1024:.1f} MiB with the streams open")
    for kind, count in collections.Counter(failures).most_common():
        print(f"  failed: {count} x {kind}")


async def measure(sim: dict[str, Any], gw: dict[str, Any], pid: int, streams: int, pacing_ms: float) -> None:
    await run_streams("sim direct", direct_target(sim), None, streams, pacing_ms)
    await run_streams("gateway", gateway_target(gw), pid, streams, pacing_ms)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--events", type=int, default=40, help="text deltas per stream")
    parser.add_argument("--pacing-ms", type=float, default=50)
    parser.add_argument("--tree", type=Path, default=HERE)
    parser.add_argument("--serve-sim", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-gateway", metavar="SIM_JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sim:
        trio.run(serve_sim, args.events, args.pacing_ms)
        return 0
    if args.serve_gateway:
        trio.run(serve_gateway, orjson.loads(args.serve_gateway))
        return 0
    print(f"load average before: {os.getloadavg()}")
    sim_proc, sim = spawn(HERE, "--serve-sim", "--events", str(args.events), "--pacing-ms", str(args.pacing_ms))
    try:
        gw_proc, gw = spawn(args.tree.resolve(), "--serve-gateway", orjson.dumps(sim).decode())
        try:
            trio.run(measure, sim, gw, gw_proc.pid, args.streams, args.pacing_ms)
        finally:
            gw_proc.terminate()
            gw_proc.wait(20)
    finally:
        sim_proc.terminate()
        sim_proc.wait(20)
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
