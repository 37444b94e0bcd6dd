"""The serving model against a real hypercorn listener on 127.0.0.1:0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import trio
from quart import Response

from codex_trio.dispatch.pump import TurnPump
from codex_trio.server.pipeline import stream_turn
from codex_trio.upstream.events import CodexEvent, TextDelta
from tests.conftest import api_key, running_gateway

PROTECTED = ["/v1/models", "/v1beta/models", "/admin/settings", "/auth/accounts", "/v1/messages"]


async def test_health_is_open_and_reports_version(data_dir: Path):
    async with running_gateway(data_dir) as (gateway, url):
        async with httpx.AsyncClient() as client:
            reply = await client.get(f"{url}/health")
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "ok" and body["version"]


@pytest.mark.parametrize("path", PROTECTED)
async def test_protected_routes_require_the_key_in_every_accepted_form(data_dir: Path, path: str):
    async with running_gateway(data_dir) as (gateway, url):
        key = api_key(gateway)
        async with httpx.AsyncClient(base_url=url) as client:
            missing = await client.get(path)
            wrong = await client.get(path, headers={"authorization": "Bearer nope"})
            accepted = [
                await client.get(path, headers={"Authorization": f"Bearer {key}"}),
                await client.get(path, headers={"x-api-key": key}),
                await client.get(path, headers={"x-goog-api-key": key}),
                await client.get(path, params={"key": key}),
            ]
    assert missing.status_code == 401 and wrong.status_code == 401
    assert "Missing API key" in missing.text and "Invalid API key" in wrong.text
    # each protocol family answers in its own envelope
    if path.startswith("/v1/messages"):
        assert missing.json()["error"]["type"] == "authentication_error" and missing.json()["type"] == "error"
    elif path.startswith("/v1beta"):
        assert missing.json()["error"]["status"] == "UNAUTHENTICATED"
    else:
        assert missing.json()["error"]["code"] == "invalid_api_key"
    # with the key, the request gets past auth (no route yet in this bare gateway: 404, never 401)
    assert all(r.status_code != 401 for r in accepted), [r.status_code for r in accepted]


def key_header(gateway) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key(gateway)}"}


class ScriptedTurn:
    """An upstream turn (the dispatcher's `UpstreamTurn` interface) that says `chunks` words `interval` apart,
    recording cancellation and its close. The serving model is under test here, not the backend."""

    account_id, model, forward_headers = "scripted", "scripted", []

    def __init__(self, events: dict, chunks: int, interval: float, text: str = "") -> None:
        self._events, self._chunks, self._interval, self._text = events, chunks, interval, text

    async def batches(self):
        try:
            for i in range(self._chunks):
                yield [CodexEvent("response.output_text.delta", {"delta": self._text or str(i), "item_id": "m"})]
                await trio.sleep(self._interval)
            yield [CodexEvent("response.completed", {"response": {"id": "resp_1", "status": "completed"}})]
        except trio.Cancelled:
            self._events["cancelled"] = True
            raise

    async def aclose(self) -> None:
        self._events["closed"] = True


class DataFrames:
    """A minimal stream encoder: one `data:` frame per text delta."""

    stopped = False

    def feed(self, event) -> bytes:
        return f"data: {event.delta}\n\n".encode() if isinstance(event, TextDelta) else b""

    def heartbeat(self) -> bytes:
        return b": ping\n\n"

    def fail(self, error) -> bytes:
        return f'data: {{"error": "{error.code}"}}\n\n'.encode()

    def finish(self) -> bytes:
        return b"data: [DONE]\n\n"


def _stream_route(events: dict, *, chunks: int, interval: float, key: str = "stream", text: str = "",
                  heartbeat_seconds: float = 0.2):
    """A test route: streams `chunks` frames through the real turn pump and relay."""

    def register(app, gateway):
        async def open_turn(_turn):
            return ScriptedTurn(events, chunks, interval, text)

        pump = TurnPump(open_turn, gateway.shutdown)

        @app.get(f"/test/{key}")
        async def stream() -> Response:
            return await stream_turn(pump, None, DataFrames(), heartbeat_seconds=heartbeat_seconds)

    return register


async def test_client_disconnect_cancels_the_producer(data_dir: Path):
    events: dict = {}
    async with running_gateway(data_dir, registrars=[_stream_route(events, chunks=10_000, interval=0.05)]) as (
            gateway, url):
        async with httpx.AsyncClient(headers=key_header(gateway)) as client:
            async with client.stream("GET", f"{url}/test/stream") as response:
                async for _ in response.aiter_bytes():
                    break
        with trio.fail_after(5):
            while "cancelled" not in events or gateway.shutdown.open_streams:
                await trio.sleep(0.01)
    assert events["cancelled"] is True and events["closed"] is True


async def test_a_long_stream_is_not_cut_by_a_response_timeout(data_dir: Path, monkeypatch):
    # Quart's default RESPONSE_TIMEOUT (60 s) would truncate long streams; make the default tiny to prove
    # our apps turn it off rather than merely outlasting it.
    from quart_trio import QuartTrio

    monkeypatch.setattr(QuartTrio, "default_config", {**QuartTrio.default_config, "RESPONSE_TIMEOUT": 0.5})
    events: dict = {}
    async with running_gateway(data_dir, registrars=[_stream_route(events, chunks=8, interval=0.25)]) as (
            gateway, url):
        async with httpx.AsyncClient(timeout=30, headers=key_header(gateway)) as client:
            started = time.monotonic()
            reply = await client.get(f"{url}/test/stream")
    assert time.monotonic() - started > 1.5
    assert reply.text.endswith("data: [DONE]\n\n")
    assert [line for line in reply.text.split("\n\n") if line.startswith("data: ")][:8] == [
        f"data: {i}" for i in range(8)]
    assert ": ping" in reply.text  # idle gaps longer than the heartbeat interval got keep-alives


async def test_shutdown_ends_open_streams_with_a_terminal_frame(data_dir: Path):
    events: dict = {}
    local = {"server": {"graceful_shutdown_seconds": 0.5}}
    async with running_gateway(data_dir, local=local,
                               registrars=[_stream_route(events, chunks=10_000, interval=0.05)]) as (gateway, url):
        async with httpx.AsyncClient(timeout=30, headers=key_header(gateway)) as client:
            async with client.stream("GET", f"{url}/test/stream") as response:
                received = b""
                async for chunk in response.aiter_bytes():
                    received += chunk
                    if not gateway.stop_requested.is_set():
                        gateway.stop_requested.set()
    assert received.endswith(b'data: {"error": "server_shutting_down"}\n\n')


async def test_shutdown_with_a_stalled_client_completes(data_dir: Path):
    """A client that never reads must not keep the process from stopping (TCP_USER_TIMEOUT)."""
    local = {"server": {"graceful_shutdown_seconds": 0.5, "tcp_user_timeout_ms": 1500}}
    register = _stream_route({}, chunks=10**9, interval=0, key="flood", text="x" * 60_000, heartbeat_seconds=10)

    started = None
    with trio.fail_after(30):
        async with running_gateway(data_dir, local=local, registrars=[register]) as (gateway, url):
            host, port = url.removeprefix("http://").split(":")
            stalled = socket.socket()
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stalled.connect((host, int(port)))
            stalled.sendall(f"GET /test/flood HTTP/1.1\r\nhost: x\r\nx-api-key: {api_key(gateway)}\r\n\r\n".encode())
            await trio.sleep(1.0)  # let the server fill every buffer and block in its write
            started = time.monotonic()
        stalled.close()
    assert time.monotonic() - started < 20


async def test_lifespan_runs_once_with_both_listeners(data_dir: Path):
    calls = {"main": 0, "ollama": 0}

    def count(name):
        def register(app, gateway):
            @app.before_serving
            async def started():
                calls[name] += 1
        return register

    local = {"ollama": {"enabled": True, "port": 0}}
    async with running_gateway(data_dir, local=local, registrars=[count("main")],
                               ollama_registrars=[count("ollama")]) as (gateway, url):
        assert gateway.ollama.listener.running
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{url}/health")).status_code == 200
            assert (await client.get(f"{gateway.ollama.listener.status.url}/api/version")).json() == {
                "version": "0.18.3"}
    assert calls == {"main": 1, "ollama": 1}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_ollama_listener_start_stop_restart_at_runtime_and_busy_port(data_dir: Path):
    port = _free_port()
    async with running_gateway(data_dir) as (gateway, url):
        assert not gateway.ollama.listener.running
        async with httpx.AsyncClient() as client:
            status = await gateway.ollama.apply(gateway.config.update(
                {"ollama": {"enabled": True, "port": port}}).new.ollama)
            assert status["running"] and status["url"] == f"http://127.0.0.1:{port}"
            assert (await client.get(f"http://127.0.0.1:{port}/")).text == "Ollama is running"

            await gateway.ollama.apply(gateway.config.update({"ollama": {"enabled": False}}).new.ollama)
            assert not gateway.ollama.listener.running
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/")

            # restart on another port
            other = _free_port()
            await gateway.ollama.apply(gateway.config.update({"ollama": {"enabled": True, "port": other}}).new.ollama)
            assert (await client.get(f"http://127.0.0.1:{other}/api/version")).status_code == 200

            # a busy port is a status, not a crash
            blocker = socket.socket()
            blocker.bind(("127.0.0.1", 0))
            blocker.listen()
            busy = blocker.getsockname()[1]
            status = await gateway.ollama.apply(gateway.config.update({"ollama": {"port": busy}}).new.ollama)
            blocker.close()
            assert status["state"] == "error" and f"port {busy}" in status["error"] and "in use" in status["error"]
            assert (await client.get(f"{url}/health")).status_code == 200


async def test_ollama_refuses_a_non_loopback_host_without_opt_in(data_dir: Path):
    async with running_gateway(data_dir) as (gateway, url):
        status = await gateway.ollama.apply(
            gateway.config.update({"ollama": {"enabled": True, "host": "0.0.0.0", "port": 0}}).new.ollama)
    assert status["state"] == "error" and "allow_non_loopback" in status["error"]


async def test_config_edit_of_local_yaml_starts_the_ollama_listener_without_restart(data_dir: Path):
    port = _free_port()
    async with running_gateway(data_dir) as (gateway, url):
        with open(data_dir / "local.yaml", "a") as handle:
            handle.write(f"ollama:\n  enabled: true\n  port: {port}\n")
        with trio.fail_after(10):
            while not gateway.ollama.listener.running:
                await trio.sleep(0.05)
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/api/version")).status_code == 200


def test_run_command_serves_health_and_stops_on_sigterm(tmp_path: Path):
    port = _free_port()
    env = {**os.environ, "CODEX_TRIO_DATA_DIR": str(tmp_path / "data"), "PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "codex_trio.cli", "run"], env=env, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                reply = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, "gateway did not start"
                time.sleep(0.1)
        assert reply.json()["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        stderr = proc.stderr.read()
        assert "Generated your API key" in stderr and "Traceback" not in stderr
    finally:
        proc.kill()


def _data_segments_received(sock: socket.socket) -> int:
    """tcpi_data_segs_in of Linux's struct tcp_info: segments with data this socket has received."""
    import struct
    return struct.unpack_from("I", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232), 152)[0]


@pytest.mark.skipif(sys.platform != "linux", reason="reads Linux's TCP_INFO")
async def test_a_short_reply_leaves_in_one_write_and_a_closing_one_arrives_whole(data_dir: Path):
    """hypercorn writes a reply's head and body separately; the gateway corks them into one send (one segment on
    loopback). With `connection: close` the held bytes still go out before the socket closes."""
    async with running_gateway(data_dir) as (gateway, url):
        host, port = url.split("//")[1].rsplit(":", 1)
        with socket.create_connection((host, int(port))) as sock:
            for _ in range(3):  # keep-alive: every reply on the connection
                before = _data_segments_received(sock)
                await trio.to_thread.run_sync(sock.sendall, b"GET /health HTTP/1.1\r\nhost: t\r\n\r\n")
                head_and_body = b""
                while b'"status"' not in head_and_body or not head_and_body.endswith(b"}"):
                    head_and_body += await trio.to_thread.run_sync(sock.recv, 65536)
                assert head_and_body.startswith(b"HTTP/1.1 200")
                assert _data_segments_received(sock) - before == 1
        with socket.create_connection((host, int(port))) as sock:
            await trio.to_thread.run_sync(sock.sendall, b"GET /health HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
            whole = b""
            while chunk := await trio.to_thread.run_sync(sock.recv, 65536):
                whole += chunk
    head, _, body = whole.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower() and body.startswith(b"{") and body.endswith(b"}")
