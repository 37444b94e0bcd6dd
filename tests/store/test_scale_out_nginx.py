"""deploy/nginx-scale-out.conf as shipped (only addresses and certificate changed) in front of two gateway processes
on one PostgreSQL: an SSE stream and the Responses WebSocket pass through, and with one instance killed, the clients
nginx hashed to it are served by the other."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
import trio
import trustme
from wsproto import WSConnection
from wsproto.connection import ConnectionType
from wsproto.events import AcceptConnection, Request

from codex_trio.sim import running_sim
from tests.foundation.test_serving import _free_port
from tests.store.test_shared_state import _create_key, _gateways, _stop
from tests.test_deploy import NGINX

SITE = Path(__file__).resolve().parents[2] / "deploy" / "nginx-scale-out.conf"
CHAT = {"model": "gpt-5.5", "stream": True, "messages": [{"role": "user", "content": "through nginx"}]}


def _config(scratch: Path, listen_port: int, gateway_ports: list[int], cert: Path, key: Path) -> Path:
    site = SITE.read_text()
    https_block = site[:site.index("server {\n    listen 80;")]  # the port-80 redirect needs a privileged port
    servers = "".join(f"    server 127.0.0.1:{port} max_fails=3 fail_timeout=10s;\n" for port in gateway_ports)
    example = "".join(f"    server 10.0.0.{n}:8080 max_fails=3 fail_timeout=10s;\n" for n in (11, 12, 13))
    edits = {"listen 443 ssl http2;": f"listen 127.0.0.1:{listen_port} ssl http2;", "listen [::]:443 ssl http2;": "",
             "/etc/ssl/codex-trio/fullchain.pem": str(cert), "/etc/ssl/codex-trio/privkey.pem": str(key),
             example: servers}
    for old, new in edits.items():
        assert old in https_block, old
        https_block = https_block.replace(old, new)
    temp = "\n".join(f"{kind}_temp_path {scratch}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                        "scgi"))
    path = scratch / "nginx.conf"
    path.write_text(f"daemon off;\nmaster_process off;\npid {scratch}/nginx.pid;\nerror_log {scratch}/error.log;\n"
                    f"events {{}}\nhttp {{\naccess_log off;\n{temp}\n{https_block}\n}}\n")
    return path


async def _stream(client: httpx.AsyncClient, url: str, headers: dict) -> list[str]:
    events = []
    async with client.stream("POST", f"{url}/v1/chat/completions", headers=headers, json=CHAT) as reply:
        assert reply.status_code == 200
        async for line in reply.aiter_lines():
            if line.startswith("data: "):
                events.append(line[6:])
    return events


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)")
async def test_nginx_scale_out_example_in_front_of_two_instances(tmp_path, pg_url):
    ca = trustme.CA()
    server = ca.issue_cert("codex-trio.example.com", "127.0.0.1")
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    server.cert_chain_pems[0].write_to_path(str(cert))
    server.private_key_pem.write_to_path(str(key))
    listen_port = _free_port()
    admin = {"authorization": "Bearer shared-admin-key-for-every-instance"}
    async with running_sim(accounts=2) as sim:
        gateways = await _gateways(tmp_path, sim, pg_url, 2,
                                   env={"CODEX_TRIO_PROXY_API_KEY": admin["authorization"][7:]})
        client_keys = [await _create_key(tmp_path, sim, pg_url, f"client {n}", None) for n in range(6)]
        ports = [int(g.url.rsplit(":", 1)[1]) for g in gateways]
        config = _config(tmp_path, listen_port, ports, cert, key)
        check = subprocess.run([NGINX, "-t", "-c", str(config)], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        proxy = subprocess.Popen([NGINX, "-c", str(config)], stderr=subprocess.PIPE, text=True)
        try:
            with trio.fail_after(10):
                while True:
                    try:
                        await (await trio.open_tcp_stream("127.0.0.1", listen_port)).aclose()
                        break
                    except OSError:
                        await trio.sleep(0.05)
            context = ssl.create_default_context()
            ca.configure_trust(context)
            base = f"https://127.0.0.1:{listen_port}"
            async with httpx.AsyncClient(verify=context, timeout=30) as client:
                events = await _stream(client, base, admin)
                assert events[-1] == "[DONE]" and len(events) > 2
                stream = await trio.open_ssl_over_tcp_stream("127.0.0.1", listen_port, ssl_context=context)
                ws = WSConnection(ConnectionType.CLIENT)
                await stream.send_all(ws.send(Request(host="codex-trio.example.com", target="/v1/responses",
                                                      extra_headers=[(b"authorization",
                                                                      admin["authorization"].encode())])))
                with trio.fail_after(10):
                    reply = b""
                    while b"\r\n\r\n" not in reply:
                        reply += await stream.receive_some(65536)
                ws.receive_data(reply)
                assert any(isinstance(event, AcceptConnection) for event in ws.events()), reply[:200]
                await stream.aclose()
                gateways[0].proc.kill()
                await gateways[0].proc.wait()
                for secret in client_keys:  # six keys: some of them hash to the killed instance
                    events = await _stream(client, base, {"authorization": f"Bearer {secret}"})
                    assert events[-1] == "[DONE]"
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)
            await _stop(gateways)
