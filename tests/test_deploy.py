"""The deployment files docs/deploy.md ships: deploy/codex-trio.service is a unit systemd accepts, with the data dir,
restart policy and hardening it promises (checked with `systemd-analyze`); deploy/nginx.conf proxies TLS, streams
and the WebSocket to a real gateway. Each check is skipped where its tool (Debian's systemd, nginx) is missing."""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio
import trustme
from wsproto import WSConnection
from wsproto.connection import ConnectionType
from wsproto.events import AcceptConnection, Request

from codex_trio.sim import running_sim

from tests.conftest import api_key, gateway_on_sim
from tests.foundation.test_serving import _free_port

UNIT = Path(__file__).resolve().parents[1] / "deploy/codex-trio.service"
INSTALLED_PATH = "/opt/codex-trio/bin/codex-trio"
ANALYZE = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed (apt-get install systemd)")


@pytest.fixture
def unit_here(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this environment's `codex-trio` (verify checks that it is executable)."""
    executable = Path(sys.executable).with_name("codex-trio")
    if not executable.exists():
        executable = Path(shutil.which("codex-trio") or pytest.fail("no codex-trio executable installed"))
    text = UNIT.read_text()
    assert INSTALLED_PATH in text
    path = tmp_path / UNIT.name
    path.write_text(text.replace(INSTALLED_PATH, str(executable)))
    return path


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def test_unit_keeps_its_data_dir_and_restarts() -> None:
    settings = unit_settings()
    assert settings["StateDirectory"] == ["codex-trio"] and settings["StateDirectoryMode"] == ["0700"]
    assert settings["Environment"] == ["CODEX_TRIO_DATA_DIR=/var/lib/codex-trio"]
    assert settings["ExecStart"] == [f"{INSTALLED_PATH} run"]
    assert settings["Restart"] == ["on-failure"]
    # The stop timeout leaves room for the default 10 s drain of open streams.
    assert int(settings["TimeoutStopSec"][0].rstrip("s")) > 10


@needs_systemd
def test_systemd_analyze_verify_accepts_the_unit(unit_here: Path) -> None:
    result = subprocess.run([ANALYZE, "verify", str(unit_here)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@needs_systemd
def test_hardening_rates_ok(unit_here: Path) -> None:
    result = subprocess.run([ANALYZE, "security", "--offline=true", str(unit_here)], capture_output=True, text=True,
                            timeout=60)
    if "--offline" in result.stderr:
        pytest.skip(f"this systemd-analyze has no offline security check: {result.stderr.strip()}")
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert level, result.stdout + result.stderr
    assert float(level.group(1)) <= 2.0  # systemd calls up to 3.9 "OK"; 1.7 when written


NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
SITE = UNIT.with_name("nginx.conf")


def nginx_config(scratch: Path, listen_port: int, gateway_port: int, cert: Path, key: Path) -> Path:
    """deploy/nginx.conf as shipped, with only what a user edits changed (address, certificate, gateway port), inside
    a minimal nginx main config that runs in the foreground and keeps its files in `scratch`."""
    site = SITE.read_text()
    https_block = site[:site.index("server {\n    listen 80;")]  # the port-80 redirect needs a privileged port
    edits = {"listen 443 ssl http2;": f"listen 127.0.0.1:{listen_port} ssl http2;",
             "listen [::]:443 ssl http2;": "",
             "/etc/ssl/codex-trio/fullchain.pem": str(cert), "/etc/ssl/codex-trio/privkey.pem": str(key),
             "proxy_pass http://127.0.0.1:8080;": f"proxy_pass http://127.0.0.1:{gateway_port};"}
    for old, new in edits.items():
        assert old in https_block, old
        https_block = https_block.replace(old, new)
    temp = "\n".join(f"{kind}_temp_path {scratch}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                        "scgi"))
    path = scratch / "nginx.conf"
    path.write_text(f"daemon off;\nmaster_process off;\npid {scratch}/nginx.pid;\nerror_log {scratch}/error.log;\n"
                    f"events {{}}\nhttp {{\naccess_log off;\n{temp}\n{https_block}\n}}\n")
    return path


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)")
async def test_nginx_example_proxies_tls_streams_and_websocket(tmp_path: Path, data_dir: Path) -> None:
    ca = trustme.CA()
    server = ca.issue_cert("codex-trio.example.com", "127.0.0.1")
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    server.cert_chain_pems[0].write_to_path(str(cert))
    server.private_key_pem.write_to_path(str(key))
    listen_port = _free_port()
    async with running_sim(accounts=["plus"]) as sim, gateway_on_sim(data_dir, sim,
                                                                      local={"server": {"trust_proxy": True}}) as (
            gateway, url):
        config = nginx_config(tmp_path, listen_port, int(url.rsplit(":", 1)[1]), cert, key)
        check = subprocess.run([NGINX, "-t", "-c", str(config)], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        proxy = subprocess.Popen([NGINX, "-c", str(config)], stderr=subprocess.PIPE, text=True)
        try:
            with trio.fail_after(10):
                while True:
                    try:
                        await trio.open_tcp_stream("127.0.0.1", listen_port)
                        break
                    except OSError:
                        await trio.sleep(0.05)
            context = ssl.create_default_context()
            ca.configure_trust(context)
            headers = {"authorization": f"Bearer {api_key(gateway)}"}
            base = f"https://127.0.0.1:{listen_port}"
            async with httpx.AsyncClient(verify=context, timeout=30) as client:
                health = await client.get(f"{base}/health")
                assert health.status_code == 200 and health.json()["status"] == "ok"
                events = []
                async with client.stream("POST", f"{base}/v1/chat/completions", headers=headers,
                                         json={"model": "gpt-5.5", "stream": True,
                                               "messages": [{"role": "user", "content": "through nginx"}]}) as reply:
                    assert reply.status_code == 200
                    async for line in reply.aiter_lines():
                        if line.startswith("data: "):
                            events.append(line[6:])
                assert events[-1] == "[DONE]" and len(events) > 2
            # The WebSocket upgrade passes through (GET /v1/responses).
            stream = await trio.open_ssl_over_tcp_stream("127.0.0.1", listen_port, ssl_context=context)
            ws = WSConnection(ConnectionType.CLIENT)
            await stream.send_all(ws.send(Request(host="codex-trio.example.com", target="/v1/responses",
                                                  extra_headers=[(b"authorization", headers["authorization"].encode())])))
            with trio.fail_after(10):
                reply = b""
                while b"\r\n\r\n" not in reply:
                    reply += await stream.receive_some(65536)
            ws.receive_data(reply)
            assert any(isinstance(event, AcceptConnection) for event in ws.events()), reply[:200]
            await stream.aclose()
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)
