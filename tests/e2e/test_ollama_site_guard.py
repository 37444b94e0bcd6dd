"""The Ollama listener refuses other web pages (a disallowed Origin) and DNS rebinding (a Host that is not this
machine) with 403 before any work, over real sockets; loopback clients keep working."""

from __future__ import annotations

import json

import httpx
import ollama
import pytest
import trio
import websockets.sync.client
from websockets.exceptions import InvalidStatus

from codex_trio.config.loader import load
from codex_trio.server.site_guard import SitePolicy, host_name
from tests.conftest import api_key

from .test_ollama_client import MODEL, ollama_bridge, upstream_bodies

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": False}
TURN_ROUTES = [("/api/chat", CHAT), ("/api/generate", {"model": MODEL, "prompt": "hi", "stream": False}),
               ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}),
               ("/v1/responses", {"model": MODEL, "input": "hi"})]
EVIL_ORIGINS = ["https://evil.example", "http://localhost.evil.example", "null", "http://127.0.0.1.evil.example"]
REBINDING_HOSTS = ["evil.example:11434", "evil.example", "localhost.evil.example:11434", "127.0.0.1.nip.io:11434"]


def error_message(reply: httpx.Response) -> str:
    body = reply.json()
    return body["error"] if isinstance(body["error"], str) else body["error"]["message"]


def open_socket(url: str, origin: str) -> None:
    with websockets.sync.client.connect(url, origin=origin, open_timeout=10):
        pass


def refused_upgrade(url: str, origin: str) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as caught:
        open_socket(url, origin)
    return caught.value


@pytest.mark.parametrize("origin", EVIL_ORIGINS)
async def test_a_foreign_origin_is_refused_before_any_turn(data_dir, origin):
    async with ollama_bridge(data_dir) as (sim, _, url, _):
        async with httpx.AsyncClient(base_url=url, timeout=30, headers={"origin": origin}) as http:
            for path, body in TURN_ROUTES:
                reply = await http.post(path, json=body)
                assert reply.status_code == 403, (path, reply.text)
                assert "not allowed" in error_message(reply)
                assert "access-control-allow-origin" not in reply.headers
            assert (await http.get("/api/tags")).status_code == 403
        # Browsers open cross-site WebSockets without any CORS check: the upgrade is refused too.
        error = await trio.to_thread.run_sync(refused_upgrade, "ws" + url[4:] + "/v1/responses", origin)
        assert error.response.status_code == 403
        assert "not allowed" in json.loads(error.response.body)["error"]["message"]
    assert upstream_bodies(sim) == [], "a refused request reached the backend"


@pytest.mark.parametrize("host", REBINDING_HOSTS)
async def test_a_rebinding_host_is_refused_before_any_turn(data_dir, host):
    async with ollama_bridge(data_dir) as (sim, _, url, _):
        async with httpx.AsyncClient(base_url=url, timeout=30, headers={"host": host}) as http:
            for path, body in TURN_ROUTES:
                reply = await http.post(path, json=body)
                assert reply.status_code == 403, (path, reply.text)
                assert "DNS rebinding" in error_message(reply)
            # what a rebinding page would read first
            for path in ("/api/tags", "/api/version", "/v1/models", "/"):
                assert (await http.get(path)).status_code == 403, path
    assert upstream_bodies(sim) == [], "a refused request reached the backend"


async def test_loopback_clients_still_work(data_dir):
    async with ollama_bridge(data_dir) as (sim, _, url, client):
        sim.script({"match": {}, "reply": {"text": "Loopback is fine."}})
        port = url.rpartition(":")[2]
        assert (await client.chat(model=MODEL, messages=[{"role": "user", "content": "hi"}])).message.content == (
            "Loopback is fine.")
        by_name = ollama.AsyncClient(host=f"http://localhost:{port}", timeout=30)
        assert (await by_name.chat(model=MODEL, messages=[{"role": "user", "content": "hi"}])).message.content == (
            "Loopback is fine.")
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "127.0.0.2", "LOCALHOST"):
                assert (await http.get("/api/tags", headers={"host": host})).status_code == 200, host
            page = await http.post("/api/chat", json=CHAT, headers={"origin": "http://localhost:3000"})
            assert page.status_code == 200 and page.headers["access-control-allow-origin"] == "http://localhost:3000"
        # a WebSocket from a loopback page is served (no key on this port, as for its HTTP routes)
        await trio.to_thread.run_sync(open_socket, "ws" + url[4:] + "/v1/responses", "http://localhost:3000")


async def test_configured_origins_and_hosts_are_allowed_through_the_admin_api(data_dir):
    origin, name = "https://ui.example.com", "ollama.lan"
    async with ollama_bridge(data_dir) as (sim, gateway, url, _):
        sim.script({"match": {}, "reply": {"text": "Configured."}})
        main = gateway.main_listener.status.url
        async with httpx.AsyncClient(timeout=30) as http:
            refused = await http.post(f"{url}/api/chat", json=CHAT, headers={"origin": origin})
            assert refused.status_code == 403
            changed = await http.post(f"{main}/admin/ollama-settings",
                                      headers={"authorization": f"Bearer {api_key(gateway)}"},
                                      json={"allowed_origins": [origin], "allowed_hosts": [name]})
            assert changed.status_code == 200, changed.text
            assert changed.json()["settings"]["allowed_origins"] == [origin]
            preflight = await http.options(f"{url}/api/chat", headers={
                "origin": origin, "access-control-request-method": "POST"})
            assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == origin
            reply = await http.post(f"{url}/api/chat", json=CHAT, headers={"origin": origin})
            assert reply.status_code == 200 and reply.json()["message"]["content"] == "Configured."
            assert reply.headers["access-control-allow-origin"] == origin
            port = url.rpartition(":")[2]
            assert (await http.get(f"{url}/api/tags", headers={"host": f"{name}:{port}"})).status_code == 200
            assert (await http.get(f"{url}/api/tags", headers={"host": "other.lan"})).status_code == 403
            bad = await http.post(f"{main}/admin/ollama-settings", headers={"authorization": f"Bearer {api_key(gateway)}"},
                                  json={"allowed_origins": ["*"]})
            assert bad.status_code == 400 and "ollama.allowed_origins" in bad.json()["error"]["message"]


def test_the_lists_can_come_from_the_environment(tmp_path):
    env = {"CODEX_TRIO__OLLAMA__ALLOWED_ORIGINS": "https://a.example, chrome-extension://abcdef",
           "CODEX_TRIO__OLLAMA__ALLOWED_HOSTS": "host.docker.internal"}
    settings = load(tmp_path, environ=env).settings.ollama
    assert settings.allowed_origins == ["https://a.example", "chrome-extension://abcdef"]
    assert settings.allowed_hosts == ["host.docker.internal"]


@pytest.mark.parametrize("header, name", [("localhost:11434", "localhost"), ("[::1]:11434", "::1"), ("::1", "::1"),
                                          ("Evil.Example.:80", "evil.example"), ("127.0.0.1", "127.0.0.1"), ("", "")])
def test_host_header_names(header, name):
    assert host_name(header) == name


@pytest.mark.parametrize("bind, host, allowed", [
    ("127.0.0.1", "localhost:11434", True), ("127.0.0.1", "127.9.9.9", True), ("127.0.0.1", "[::1]:1", True),
    ("127.0.0.1", "192.168.1.5:11434", False), ("127.0.0.1", "evil.example", False),
    ("192.168.1.5", "192.168.1.5:11434", True), ("192.168.1.5", "192.168.1.6", False),
    ("myhost.lan", "MYHOST.LAN:11434", True),
    # bound to every address: any IP literal (the machine's own, as LAN clients use it), still no foreign name
    ("0.0.0.0", "192.168.1.5:11434", True), ("::", "[fe80::1]:11434", True), ("0.0.0.0", "evil.example", False),
])
def test_host_policy(bind, host, allowed):
    assert SitePolicy.of(bind).host_allowed(host) is allowed


def test_origin_policy_adds_configured_origins_to_loopback_ones():
    policy = SitePolicy.of("127.0.0.1", extra_origins=["https://UI.example.com/"])
    assert policy.origin_allowed("https://ui.example.com") and policy.origin_allowed("http://[::1]:5173")
    assert not policy.origin_allowed("https://ui.example.com.evil") and not policy.origin_allowed("null")
    assert policy.refusal(None, None) is None and policy.refusal("localhost", "http://localhost:1") is None
