"""File descriptors on a `codex-trio run` subprocess whose RLIMIT_NOFILE is lowered to 256 (soft and hard), serving
many new conversations against the simulator: each keeps an upstream WebSocket, and the gateway must keep those
within its budget instead of running out of descriptors."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import trio

from codex_trio.config.writer import update_local_file
from codex_trio.server.descriptors import upstream_socket_budget
from codex_trio.sim import running_sim
from tests.conftest import sim_settings
from tests.foundation.test_serving import _free_port
from tests.foundation.test_shutdown import _wait_healthy
from tests.gateway_process import gateway_process

KEY = "ct-descriptor-test-key-0123456789"
LIMIT = 256
CONVERSATIONS = 300


def _lower_descriptor_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def _open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts descriptors in /proc")
async def test_many_conversations_under_a_low_descriptor_limit_all_succeed(data_dir: Path):
    async with running_sim(accounts=1) as sim:
        settings = sim_settings(sim)
        settings["server"] = {"proxy_api_key": KEY}
        update_local_file(data_dir / "local.yaml", settings)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "CODEX_TRIO_DATA_DIR": str(data_dir), "PORT": str(port)}
        proc = subprocess.Popen([sys.executable, "-m", "codex_trio.cli", "run"], env=env, stderr=subprocess.PIPE,
                                text=True, preexec_fn=_lower_descriptor_limit)
        try:
            await _wait_healthy(proc, url)
            account = sim.accounts[0]
            most_open = 0
            statuses: list[int] = []
            limits = httpx.Limits(max_connections=8)
            async with httpx.AsyncClient(headers={"authorization": f"Bearer {KEY}"}, timeout=60,
                                         limits=limits) as client:
                added = await client.post(f"{url}/auth/accounts", json={"token": account.access_token,
                                                                        "refreshToken": account.refresh_token})
                assert added.status_code in (200, 201), added.text

                async def conversation(number: int, gate: trio.Semaphore) -> None:
                    async with gate:
                        reply = await client.post(f"{url}/v1/chat/completions", json={
                            "model": "gpt-5.5", "messages": [{"role": "user", "content": f"conversation {number}"}]})
                        statuses.append(reply.status_code)

                async def watch_descriptors() -> None:
                    nonlocal most_open
                    while True:
                        most_open = max(most_open, _open_descriptors(proc.pid))
                        await trio.sleep(0.02)

                gate = trio.Semaphore(8)
                async with trio.open_nursery() as watcher:
                    watcher.start_soon(watch_descriptors)
                    async with trio.open_nursery() as nursery:
                        for number in range(CONVERSATIONS):
                            nursery.start_soon(conversation, number, gate)
                    watcher.cancel_scope.cancel()
                health = (await client.get(f"{url}/health")).json()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            finally:
                proc.kill()
            stderr = proc.stderr.read()
    assert statuses == [200] * CONVERSATIONS, (sorted(set(statuses)), statuses.count(200), most_open, stderr[-4000:])
    assert most_open < LIMIT, most_open
    budget = upstream_socket_budget(LIMIT)
    descriptors = health["descriptors"]
    assert descriptors["limit"] == LIMIT and descriptors["upstream_socket_budget"] == budget
    assert descriptors["upstream_sockets_open"] <= budget
    assert "Too many open files" not in stderr and "EMFILE" not in stderr, stderr[-3000:]
    assert len(stderr.splitlines()) < 40, stderr[-3000:]  # no log flood
    print(f"most descriptors open: {most_open} of {LIMIT}; upstream sockets open at the end: "
          f"{descriptors['upstream_sockets_open']} (budget {budget})")


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts descriptors in /proc")
def test_accept_waits_out_descriptor_exhaustion_without_a_log_flood(tmp_path: Path):
    """More client connections than descriptors: accept fails with EMFILE. The listener says so once, waits,
    and serves again as soon as descriptors are free (trio's own loop logged a traceback every 100 ms)."""
    import socket

    clients: list[socket.socket] = []
    with gateway_process(tmp_path / "data", KEY, stop_timeout=30, stderr=subprocess.PIPE, text=True,
                         preexec_fn=_lower_descriptor_limit) as (proc, port):
        for _ in range(LIMIT + 20):  # idle connections, each one descriptor in the gateway once accepted
            clients.append(socket.create_connection(("127.0.0.1", port)))
        time.sleep(3)  # the gateway is out of descriptors for these seconds
        assert _open_descriptors(proc.pid) <= LIMIT
        for client in clients:
            client.close()
        clients.clear()
        reply = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
        assert reply.status_code == 200
    stderr = proc.stderr.read()
    assert "Traceback" not in stderr, stderr[-3000:]
    assert stderr.count("cannot accept connections") == 1, stderr[-3000:]
    assert len(stderr.splitlines()) < 20, stderr[-3000:]


def test_doctor_reports_the_descriptor_limit_and_the_upstream_budget(tmp_path: Path):
    env = {**os.environ, "CODEX_TRIO_DATA_DIR": str(tmp_path / "data")}
    low = subprocess.run([sys.executable, "-m", "codex_trio.cli", "doctor"], env=env, capture_output=True, text=True,
                         preexec_fn=_lower_descriptor_limit, timeout=60)
    assert (f"[PROBLEM] file descriptors: limit {LIMIT} (hard {LIMIT}; the gateway raises the limit to the hard one "
            f"at start), up to {upstream_socket_budget(LIMIT)} idle upstream connections kept open") in low.stdout
    assert "ulimit -Hn" in low.stdout

    def roomy() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 4096))

    fine = subprocess.run([sys.executable, "-m", "codex_trio.cli", "doctor"], env=env, capture_output=True,
                          text=True, preexec_fn=roomy, timeout=60)
    assert ("[ok] file descriptors: limit 1024 (hard 4096; the gateway raises the limit to the hard one at start), "
            "up to 1024 idle upstream connections kept open") in fine.stdout, fine.stdout
