"""The server processes of the benches: a simulator, and a gateway pointed at it.

Each bench runs them as processes of their own (so no two share an event loop), started in one of the bench's
own server modes (`--serve-sim`, `--serve-gateway`), which call `serve_sim` / `serve_gateway` here. A server
prints exactly one JSON line once it listens (what a client needs to reach it) and then serves until killed.

`spawn` starts a bench script in a server mode with `codex_trio` imported from a given checkout (`--tree`), so
a before / after pair of gateways runs on one simulator in the same run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import orjson
import trio

HERE = Path(__file__).resolve().parent.parent


async def serve_sim(reply: dict[str, Any], *, marker: str, deflate: bool = True,
                    more: dict[str, dict[str, Any]] | None = None) -> None:
    """The simulator with one account, request recording off, and `reply` scripted for prompts containing `marker`
    (`text_length`, `chunk_size`, `pacing_ms`: see `codex_trio.sim`), and each reply of `more` for prompts
    containing its marker; `deflate`: accept permessage-deflate.
    The account is on the pro plan, the largest budget (6M tokens per 5 hours): the 30-minute soak on a plus
    account (1M) used it up after 7,851 turns, and every turn after was a correct 429."""
    from codex_trio.collector import collect_young_less_often
    from codex_trio.sim import SimConfig, Simulator

    # Collected as the gateway is: at CPython's default threshold the simulator spent 12 % of its CPU collecting
    # (a 50 ms full collection every second or two) under 300 paced streams, which showed in the direct gaps.
    collect_young_less_often()
    sim = Simulator(SimConfig(accounts=1, plans=("pro",), record_requests=False, deflate=deflate))
    sim.script({"match": {"user_text": marker}, "reply": reply})
    for other_marker, other_reply in (more or {}).items():
        sim.script({"match": {"user_text": other_marker}, "reply": other_reply})
    try:
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(sim.serve, "127.0.0.1", 0)
            account = sim.accounts[0]
            print(orjson.dumps({"backend_base": urls.backend_base, "auth_base": urls.auth_base,
                                "ca_file": str(sim.ca_file), "account_id": account.account_id,
                                "access_token": account.access_token, "refresh_token": account.refresh_token,
                                "id_token": account.id_token}).decode(), flush=True)
    finally:
        sim.close()


async def serve_gateway(sim: dict[str, Any], *, data_prefix: str = "gateway-bench-",
                        max_concurrent_per_account: int | None = None, settings: dict[str, Any] | None = None,
                        adjust: Callable[[Any], None] | None = None) -> None:
    """The gateway as `codex-trio run` builds it (`commands.run.build_gateway`), on the simulator `sim` (the line
    `serve_sim` printed), its account added and the catalog fetched. `max_concurrent_per_account`: raise the cap
    when one simulated account carries every stream of a bench; `settings`: more local settings; `adjust`: called
    with the gateway before it runs (e.g. to leave a surface out)."""
    from codex_trio.commands.run import build_gateway
    from codex_trio.config.store import ConfigStore
    from codex_trio.config.writer import update_local_file
    from codex_trio.routing.catalog import refresh_catalog

    data = Path(tempfile.mkdtemp(prefix=data_prefix)) / "data"
    data.mkdir(mode=0o700)
    local: dict[str, Any] = {"api": {"base_url": sim["backend_base"], "auth_base_url": sim["auth_base"]},
                             "tls": {"ca_file": sim["ca_file"]}, **(settings or {})}
    if max_concurrent_per_account is not None:
        local["auth"] = {"max_concurrent_per_account": max_concurrent_per_account}
    update_local_file(data / "local.yaml", local)
    store = ConfigStore(data, environ={})
    store.ensure_first_start()
    gateway = build_gateway(store)
    if adjust is not None:
        adjust(gateway)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(lambda task_status: gateway.run(port=0, task_status=task_status))
        await gateway.services.accounts.add_tokens(access_token=sim["access_token"],
                                                   refresh_token=sim["refresh_token"], id_token=sim["id_token"])
        await refresh_catalog(gateway.services, gateway.services.catalog)
        print(orjson.dumps({"url": url, "key": gateway.config.settings.server.proxy_api_key}).decode(), flush=True)


def spawn(script: str, tree: Path, *args: str, env: dict[str, str] | None = None
          ) -> tuple[subprocess.Popen, dict[str, Any]]:
    """`benches/<script>` (of this checkout) in a server mode, importing `codex_trio` from `tree`; returns the
    process and the JSON line it printed once ready."""
    env = {**os.environ, **(env or {}), "PYTHONPATH": f"{tree}{os.pathsep}{HERE}"}
    proc = subprocess.Popen([sys.executable, str(HERE / "benches" / script), *args], cwd=tree, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise SystemExit(f"server {args[0]} did not start from {tree}")
    return proc, orjson.loads(line)
