"""A real gateway pointed at the simulator (backend + OAuth issuer), and the `codex-trio` CLI as a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest
import trio

from codex_trio.config.store import ConfigStore
from codex_trio.config.writer import update_local_file
from codex_trio.sim import Simulator, running_sim

from ..conftest import api_key, running_gateway, sim_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def sim():
    async with running_sim(accounts=3) as simulator:
        yield simulator


@asynccontextmanager
async def admin_client(data_dir: Path, sim: Simulator) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """(gateway, httpx client with the gateway key). Browser logins bind their callback server on port 0."""
    async with running_gateway(data_dir, local=sim_settings(sim), install=True) as (gateway, url):
        gateway.services.logins.callback_ports = (0,)
        async with httpx.AsyncClient(base_url=url, timeout=30,
                                     headers={"authorization": f"Bearer {api_key(gateway)}"}) as client:
            yield gateway, client


def browser(sim: Simulator) -> httpx.AsyncClient:
    """What the user's browser does with the authorize URL (the simulator approves at once)."""
    return httpx.AsyncClient(verify=sim.ssl_context(), timeout=30)


async def wait_for_login(client: httpx.AsyncClient, login_id: str, timeout: float = 20) -> dict[str, Any]:
    with trio.fail_after(timeout):
        while True:
            state = (await client.get(f"/auth/login/{login_id}")).json()
            if state["status"] != "pending":
                return state
            await trio.sleep(0.1)


def assert_error(response: httpx.Response, status: int, fragment: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert fragment in error["message"], error
    return error


# The console script installed beside this interpreter (what a user runs); PYTHONPATH keeps this checkout first.
EXECUTABLE = Path(sys.executable).with_name("codex-trio")


class Cli:
    """The `codex-trio` executable on a data dir configured for the simulator."""

    def __init__(self, data_dir: Path, sim: Simulator) -> None:
        self.data_dir = data_dir
        update_local_file(data_dir / "local.yaml", sim_settings(sim))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_TRIO")}

    def argv(self, *args: str) -> list[str]:
        program = [str(EXECUTABLE)] if EXECUTABLE.exists() else [sys.executable, "-m", "codex_trio.cli"]
        return [*program, *args[:2], "--data-dir", str(self.data_dir), *args[2:]] if args[0] == "accounts" else \
            [*program, args[0], "--data-dir", str(self.data_dir), *args[1:]]

    async def run(self, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
        with trio.fail_after(60):
            return await trio.run_process(self.argv(*args), stdin=stdin, capture_stdout=True, capture_stderr=True,
                                          check=False, cwd=ROOT, env=self.env)

    async def start(self, *args: str) -> "Process":
        proc = await trio.lowlevel.open_process(self.argv(*args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, cwd=ROOT, env=self.env)
        return Process(proc)

    async def serve(self) -> "GatewayProcess":
        """`codex-trio run --port 0` on this data dir, until it says where it listens."""
        log = self.data_dir / f"gateway-{len(list(self.data_dir.glob('gateway-*.log')))}.log"
        with open(log, "wb") as err:  # a file, not a pipe: a chatty gateway never blocks on a full pipe
            proc = await trio.lowlevel.open_process(self.argv("run", "--port", "0"), stdin=subprocess.DEVNULL,
                                                    stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT, env=self.env)
        with trio.fail_after(60):
            while (found := re.search(rb"listening on (http://\S+)", log.read_bytes())) is None:
                if proc.poll() is not None:
                    raise AssertionError(f"the gateway exited: {log.read_text()}")
                await trio.sleep(0.05)
        key = ConfigStore(self.data_dir, environ={}).settings.server.proxy_api_key
        return GatewayProcess(proc, found.group(1).decode(), key, log)


@dataclass
class GatewayProcess:
    proc: trio.Process
    url: str
    key: str
    log: Path

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=60, headers={"authorization": f"Bearer {self.key}"})


class Process:
    def __init__(self, proc: trio.Process) -> None:
        self.proc = proc
        self._buffer = b""
        self.seen = b""

    async def read_until(self, marker: bytes, timeout: float = 30) -> bytes:
        """Everything printed so far once `marker` and the rest of its line have appeared."""
        with trio.fail_after(timeout):
            while marker not in self._buffer or not self._buffer.split(marker, 1)[1].count(b"\n"):
                chunk = await self.proc.stdout.receive_some(4096)
                if not chunk:
                    raise AssertionError(f"the CLI ended without printing {marker!r}: {self._buffer!r}")
                self._buffer += chunk
        self.seen += self._buffer
        return self._buffer

    async def finish(self, timeout: float = 30) -> tuple[int, bytes, bytes]:
        with trio.fail_after(timeout):
            rest = b""
            while chunk := await self.proc.stdout.receive_some(4096):
                rest += chunk
            err = b""
            while chunk := await self.proc.stderr.receive_some(4096):
                err += chunk
            code = await self.proc.wait()
        return code, self._buffer + rest, err
