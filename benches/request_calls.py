"""What one HTTP request costs the gateway's Python, counted instead of timed (issue #20): function calls and passes
of trio's scheduler per request, which do not depend on how busy the machine is.

For every `--tree` (a checkout; default this one) a process importing `codex_trio` from it builds the gateway (as
the tests' `running_gateway` does: every surface, no account), serves it on 127.0.0.1 and sends `--requests`
requests over one keep-alive connection from the same event loop, under cProfile:

* `GET /v1/models` (the key check, the telemetry hooks, a small JSON reply), and
* `POST /v1/chat/completions` with the body `{}` (the body read, parsed and answered with a 400 envelope).

Printed per tree and request: Python function calls (the client's few included, the same for every tree) and
scheduler batches (`unrolled_run` passes) per request, and the profiled wall time (which does depend on the load).

    python -m benches.request_calls [--requests 500] [--tree DIR ...]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent.parent
# hypercorn closes a keep-alive connection after 1,000 requests; warm-up and measured ones stay below
MAX_REQUESTS = 900
WARM_UP = 50


async def _measure(requests: int) -> dict[str, dict[str, float]]:
    import trio

    from codex_trio.app import Gateway
    from codex_trio.config.store import ConfigStore
    from codex_trio.surfaces import install_surfaces

    data = Path(tempfile.mkdtemp(prefix="request-calls-")) / "data"
    data.mkdir(mode=0o700)
    store = ConfigStore(data, environ={})
    store.ensure_first_start()
    gateway = Gateway(config=store)
    install_surfaces(gateway)
    results: dict[str, dict[str, float]] = {}
    async with trio.open_nursery() as nursery:
        url = await nursery.start(lambda task_status: gateway.run(port=0, task_status=task_status))
        host, port = url.split("//")[1].rsplit(":", 1)
        key = store.settings.server.proxy_api_key
        cases = {
            "GET /v1/models": f"GET /v1/models HTTP/1.1\r\nhost: t\r\nauthorization: Bearer {key}\r\n\r\n".encode(),
            "POST /v1/chat/completions {} (400)": (
                f"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\nauthorization: Bearer {key}\r\n"
                f"content-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}").encode(),
        }
        for name, request in cases.items():
            stream = await trio.open_tcp_stream(host, int(port))

            async def one() -> None:
                await stream.send_all(request)
                answer = b""
                while True:
                    data = await stream.receive_some(65536)
                    assert data, "the gateway closed the connection"
                    answer += data
                    head, found, body = answer.partition(b"\r\n\r\n")
                    if found:
                        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                                      if line.lower().startswith(b"content-length:"))
                        if len(body) >= length:
                            return

            for _ in range(WARM_UP):
                await one()
            profile = cProfile.Profile()
            began = time.perf_counter()
            profile.enable()
            for _ in range(requests):
                await one()
            profile.disable()
            wall = time.perf_counter() - began
            await stream.aclose()
            stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
            calls = sum(entry[1] for entry in stats.values())
            batches = sum(entry[1] for key_, entry in stats.items() if key_[2] == "unrolled_run")
            results[name] = {"calls": calls / requests, "batches": batches / requests,
                             "profiled_ms": wall * 1000 / requests}
        gateway.stop_requested.set()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500, help=f"per request kind (at most {MAX_REQUESTS})")
    parser.add_argument("--tree", action="append", type=Path, help="a checkout to measure (repeatable)")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    requests = min(args.requests, MAX_REQUESTS)
    if args.measure:
        import trio

        print(orjson.dumps(trio.run(_measure, requests)).decode())
        return 0
    print(f"load average: {os.getloadavg()}")
    print(f"{'tree':<30}{'request':<38}{'calls/req':>10}{'batches/req':>13}{'profiled ms':>13}")
    for tree in [t.resolve() for t in (args.tree or [HERE])]:
        env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{HERE}"}
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--measure", "--requests", str(requests)],
                              cwd=tree, env=env, capture_output=True, text=True, check=True)
        for name, figures in orjson.loads(done.stdout.strip().splitlines()[-1]).items():
            print(f"{str(tree)[-30:]:<30}{name:<38}{figures['calls']:>10.0f}{figures['batches']:>13.2f}"
                  f"{figures['profiled_ms']:>13.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
