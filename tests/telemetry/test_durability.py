"""`kill -9` of a gateway under load (the real `codex-trio run` process): usage records of requests that finished
more than a second before the kill are all in the store; only the last second may be lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import trio

from codex_trio.config.writer import update_local_file
from codex_trio.sim import running_sim
from tests.conftest import sim_settings
from tests.telemetry.helpers import query_db

REPO = Path(__file__).resolve().parents[2]
FLUSH_SECONDS = 1.0
SLACK_SECONDS = 0.5  # a loaded test machine may start a flush late


async def start_gateway(data_dir: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "codex_trio.cli", "run", "--port", "0", "--data-dir",
                             str(data_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})

    def read_url() -> str:
        for line in proc.stderr:
            if " listening on " in line:
                return line.split(" listening on ", 1)[1].split()[0]
        raise AssertionError("the gateway did not start")

    with trio.fail_after(60):
        return proc, await trio.to_thread.run_sync(read_url)


async def test_kill_9_under_load_loses_at_most_the_last_second(data_dir):
    async with running_sim(accounts=1) as sim:
        update_local_file(data_dir / "local.yaml", sim_settings(sim))
        proc, url = await start_gateway(data_dir)
        try:
            key = next(line.split(":", 1)[1].strip() for line in (data_dir / "local.yaml").read_text().splitlines()
                       if line.strip().startswith("proxy_api_key:")).strip('"')
            async with httpx.AsyncClient(base_url=url, timeout=30, headers={"authorization": f"Bearer {key}"}) as client:
                account = sim.accounts[0]
                added = await client.post("/auth/accounts", json={"token": account.access_token,
                                                                   "refreshToken": account.refresh_token})
                assert added.status_code in (200, 201), added.text
                finished: list[float] = []
                started = time.monotonic()
                while time.monotonic() - started < 3.0:
                    reply = await client.post("/v1/chat/completions", json={
                        "model": "gpt-5.5", "messages": [{"role": "user", "content": f"n{len(finished)}"}]})
                    assert reply.status_code == 200, reply.text
                    finished.append(time.monotonic())
                os.kill(proc.pid, signal.SIGKILL)
                killed = time.monotonic()
        finally:
            proc.kill()
            proc.wait(10)
    stored = query_db(data_dir, "SELECT COUNT(*) FROM usage_records WHERE status = 200")[0][0]
    safe = sum(1 for t in finished if t < killed - FLUSH_SECONDS - SLACK_SECONDS)
    assert safe > 0 and safe <= stored <= len(finished), (safe, stored, len(finished))
