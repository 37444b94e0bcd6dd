"""Benchmark: the native client against httpx, both on trio, from a local SSE server in another process.

Streaming: throughput (MB/s, chunks/s) and client CPU per chunk (process CPU time, which includes the
tokio threads). Requests: latency at concurrency 1 and 50.

  python benches/native_stream.py [--chunks 20000] [--size 200] [--requests 400]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import trio

from codex_trio.native import Client


async def native_stream(url: str) -> tuple[int, int]:
    chunks = size = 0
    async with Client("openssl").stream("GET", url, []) as response:
        while batch := await response.next_batch():
            chunks += len(batch)
            size += sum(map(len, batch))
    return chunks, size


async def native_stream_iter(url: str) -> tuple[int, int]:
    chunks = size = 0
    async with Client("openssl").stream("GET", url, []) as response:
        async for chunk in response:
            chunks += 1
            size += len(chunk)
    return chunks, size


async def httpx_stream(url: str) -> tuple[int, int]:
    chunks = size = 0
    async with httpx.AsyncClient(timeout=None) as client:
        async with client.stream("GET", url) as response:
            async for chunk in response.aiter_raw():
                chunks += 1
                size += len(chunk)
    return chunks, size


async def measure_stream(name: str, run, base: str, events: int, size: int, rounds: int) -> dict:
    await run(f"{base}/sse?n=1&size=10")  # warm-up: connection pool, first-use costs
    url = f"{base}/sse?n={events}&size={size}"
    best = None
    for _ in range(rounds):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        chunks, size = await run(url)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        result = {
            "client": name,
            "chunks": chunks,
            "MB/s": size / wall / 1e6,
            "chunks/s": chunks / wall,
            "CPU µs/chunk": cpu / chunks * 1e6,
            "CPU µs/event": cpu / events * 1e6,
        }
        if best is None or result["MB/s"] > best["MB/s"]:
            best = result
    return best


async def measure_latency(name: str, request, concurrency: int, total: int) -> dict:
    latencies: list[float] = []

    async def worker(count: int) -> None:
        for _ in range(count):
            start = time.perf_counter()
            await request()
            latencies.append(time.perf_counter() - start)

    for _ in range(5):
        await request()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker, total // concurrency)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    latencies.sort()
    return {
        "client": name,
        "concurrency": concurrency,
        "req/s": len(latencies) / wall,
        "p50 ms": statistics.median(latencies) * 1e3,
        "p99 ms": latencies[int(len(latencies) * 0.99) - 1] * 1e3,
        "CPU µs/req": cpu / len(latencies) * 1e6,
    }


def table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = [(f"{v:.3f}" if v < 10 else f"{v:.1f}") if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


async def main(args) -> None:
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("native_sse_server.py"))], stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(server.stdout.readline())
        base = f"http://127.0.0.1:{port}"
        runs = [("native next_batch", native_stream), ("native async for", native_stream_iter), ("httpx aiter_raw", httpx_stream)]
        streams = [await measure_stream(name, run, base, args.chunks, args.size, args.rounds) for name, run in runs]
        print(f"Streaming {args.chunks} SSE events of {args.size} B (best of {args.rounds}):\n")
        print(table(streams))

        native = Client("openssl")
        async with httpx.AsyncClient(timeout=None, limits=httpx.Limits(max_connections=64)) as hx:

            async def native_request():
                response = await native.request("GET", f"{base}/small", [])
                assert response.status == 200

            async def httpx_request():
                response = await hx.get(f"{base}/small")
                assert response.status_code == 200

            latency = []
            for concurrency in (1, 50):
                latency.append(await measure_latency("native", native_request, concurrency, args.requests))
                latency.append(await measure_latency("httpx", httpx_request, concurrency, args.requests))
        print(f"\nRequest latency ({args.requests} requests of a 40 B JSON body):\n")
        print(table(latency))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=20000)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    trio.run(main, parser.parse_args())
