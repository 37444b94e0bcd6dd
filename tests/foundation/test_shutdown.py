"""SIGTERM on a `codex-trio run` subprocess serving the simulator: every open request on every listener ends with
its protocol's answer or terminal event within the grace period, and the process exits right after.

Open at the signal: SSE and NDJSON streams (main and Ollama listeners), the downstream Responses WebSocket in
a turn, and requests on both listeners whose upstream has not started answering."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from codex_trio.config.writer import update_local_file
from codex_trio.sim import running_sim
from tests.conftest import sim_settings
from tests.foundation.test_serving import _free_port
from tests.foundation.ws_client import GatewaySocket

GRACE = 2.0
KEY = "ct-shutdown-test-key-0123456789"


async def _wait_healthy(proc: subprocess.Popen, url: str) -> None:
    async with httpx.AsyncClient() as client:
        with trio.fail_after(60):
            while True:
                assert proc.poll() is None, "gateway exited during start-up"
                try:
                    if (await client.get(f"{url}/health", timeout=1)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await trio.sleep(0.1)


def _start_gateway(data_dir: Path, sim, port: int, ollama_port: int) -> subprocess.Popen:
    settings = sim_settings(sim)
    settings["server"] = {"proxy_api_key": KEY, "graceful_shutdown_seconds": GRACE, "heartbeat_seconds": 0.5}
    settings["ollama"] = {"enabled": True, "port": ollama_port}
    update_local_file(data_dir / "local.yaml", settings)
    env = {**os.environ, "CODEX_TRIO_DATA_DIR": str(data_dir), "PORT": str(port)}
    env.pop("OLLAMA_BRIDGE_PORT", None)
    return subprocess.Popen([sys.executable, "-m", "codex_trio.cli", "run"], env=env, stderr=subprocess.PIPE,
                            text=True)


async def test_sigterm_answers_every_open_request_on_every_listener_within_the_grace_period(data_dir: Path):
    async with running_sim(accounts=1) as sim:
        sim.script({"match": {"user_text": "endless story"}, "reply": {"text_length": 400_000, "pacing_ms": 20}})
        sim.script({"match": {"user_text": "never starts"}, "reply": {"first_byte_delay_ms": 120_000}})
        port, ollama_port = _free_port(), _free_port()
        url, ollama_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{ollama_port}"
        proc = _start_gateway(data_dir, sim, port, ollama_port)
        try:
            await _wait_healthy(proc, url)
            headers = {"authorization": f"Bearer {KEY}"}
            account = sim.accounts[0]
            async with httpx.AsyncClient(headers=headers, timeout=60) as client:
                added = await client.post(f"{url}/auth/accounts", json={"token": account.access_token,
                                                                        "refreshToken": account.refresh_token})
                assert added.status_code in (200, 201), added.text
                results: dict[str, Any] = {}
                streaming = trio.Semaphore(0)  # released once per stream that has received its first bytes

                async def sse_stream() -> None:
                    body = {"model": "gpt-5.5", "stream": True,
                            "messages": [{"role": "user", "content": "endless story"}]}
                    async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
                        text = ""
                        async for chunk in response.aiter_text():
                            if not text:
                                streaming.release()
                            text += chunk
                    results["sse"] = text

                async def ndjson_stream() -> None:
                    body = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "endless story"}]}
                    async with client.stream("POST", f"{ollama_url}/api/chat", json=body) as response:
                        lines: list[str] = []
                        async for line in response.aiter_lines():
                            if not lines:
                                streaming.release()
                            lines.append(line)
                    results["ndjson"] = lines

                async def websocket_turn() -> None:
                    socket = await GatewaySocket.connect(url, KEY)
                    await socket.send({"type": "response.create", "model": "gpt-5.5",
                                       "input": [{"role": "user", "content": "endless story"}]})
                    events = []
                    while (event := await socket.receive()) is not None:
                        if not events:
                            streaming.release()
                        events.append(event)
                    results["ws"] = (events, socket.close_code, socket.pings)

                async def not_started(name: str, target: str, body: dict) -> None:
                    reply = await client.post(target, json=body)
                    results[name] = (reply.status_code, reply.json())
                    results[name + " retry"] = reply.headers.get("x-should-retry")

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(sse_stream)
                    nursery.start_soon(ndjson_stream)
                    nursery.start_soon(websocket_turn)
                    nursery.start_soon(not_started, "chat", f"{url}/v1/chat/completions",
                                       {"model": "gpt-5.5", "messages": [{"role": "user", "content": "never starts"}]})
                    nursery.start_soon(not_started, "anthropic", f"{url}/v1/messages",
                                       {"model": "gpt-5.5", "max_tokens": 100,
                                        "messages": [{"role": "user", "content": "never starts"}]})
                    nursery.start_soon(not_started, "ollama", f"{ollama_url}/api/chat",
                                       {"model": "gpt-5.5", "stream": False,
                                        "messages": [{"role": "user", "content": "never starts"}]})
                    with trio.fail_after(30):
                        for _ in range(3):
                            await streaming.acquire()
                        while len([r for r in sim.requests_to("/codex/responses")]) < 5:
                            await trio.sleep(0.05)
                    await trio.sleep(1.5)  # the idle WebSocket gets its pings (every 0.5 s)
                    signalled = time.monotonic()
                    proc.send_signal(signal.SIGTERM)
                    with trio.fail_after(GRACE + 10):
                        while proc.poll() is None:
                            await trio.sleep(0.05)
                    exited = time.monotonic() - signalled
        finally:
            proc.kill()
            stderr = proc.stderr.read()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    print(f"exit {exited:.1f} s after SIGTERM (grace {GRACE} s)")
    assert exited < GRACE + 3.0, f"exit took {exited:.1f} s with a {GRACE} s grace period"

    # SSE: the chat stream ends with an error event and [DONE], not a silent EOF
    sse_events = [block[len("data: "):] for block in results["sse"].split("\n\n") if block.startswith("data: ")]
    assert sse_events[-1] == "[DONE]"
    assert orjson.loads(sse_events[-2])["error"]["code"] == "server_shutting_down"
    # Ollama NDJSON: the last line is a terminal one
    last = orjson.loads(results["ndjson"][-1])
    assert "shutting down" in last.get("error", ""), last
    # the WebSocket turn fails with the shutdown error, then the socket closes with 1001 (going away)
    events, close_code, pings = results["ws"]
    assert events[-1]["type"] == "response.failed", events[-1]
    assert events[-1]["response"]["error"]["code"] == "server_shutting_down"
    assert close_code == 1001 and pings >= 2
    # requests whose upstream never started: a 503 (529 for Anthropic) in each protocol's envelope
    status, body = results["chat"]
    assert status == 503 and body["error"]["code"] == "server_shutting_down"
    status, body = results["ollama"]
    assert status == 503 and "shutting down" in body["error"]
    status, body = results["anthropic"]
    assert status == 529 and body["error"]["type"] == "overloaded_error", body  # Anthropic's "overloaded"
    assert results["anthropic retry"] == "true"  # Claude Code retries it, as Anthropic's own 5xx
    assert results["chat retry"] is None
