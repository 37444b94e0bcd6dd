"""The Ollama listener over plain HTTP: what no SDK covers (version, /v1 passthrough without a key, the
`codex --oss` probe sequence, CORS, Ollama's error shape) and its runtime lifecycle (admin API, local.yaml)."""

from __future__ import annotations

import json
import socket

import httpx
import orjson
import pytest
import trio

from codex_trio.config.loader import ConfigError, load
from codex_trio.config.writer import update_local_file
from codex_trio.server.ollama_listener import advertised_url
from codex_trio.sim import running_sim
from tests.conftest import api_key, gateway_on_sim, running_gateway, fixture_path

from .test_ollama_client import MODEL, ollama_bridge, upstream_bodies


def fixture_request(name: str) -> tuple[dict[str, str], bytes]:
    """Headers (hop-by-hop and length left out) and body of a recorded client request."""
    entry = next(e for e in json.loads(fixture_path("clients", "index.json").read_text())
                 if e["file"] == name)
    headers = {k: v for k, v in entry["headers"] if k not in ("host", "content-length", "authorization")}
    return headers, fixture_path("clients", name).read_bytes()


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("-")[0].split("."))


def ndjson(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def sse_events(text: str) -> list[dict]:
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:") and line[5:].strip()
            not in ("", "[DONE]")]


async def test_version_root_and_v1_models(data_dir):
    async with ollama_bridge(data_dir) as (_, gateway, url, _):
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            root = await http.get("/")
            assert root.status_code == 200 and root.text == "Ollama is running"
            version = (await http.get("/api/version")).json()["version"]
            assert version == "0.18.3" and version_tuple(version) >= (0, 13, 4)
            models = await http.get("/v1/models")  # no key: the Ollama port has no auth
            assert models.status_code == 200
            assert MODEL in [m["id"] for m in models.json()["data"]]


async def test_v1_passthrough_without_a_key(data_dir):
    async with ollama_bridge(data_dir) as (sim, gateway, url, _):
        sim.script({"match": {"user_text": "passthrough"}, "reply": {"text": "Through the Ollama port."}})
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            chat = await http.post("/v1/chat/completions", json={
                "model": MODEL, "messages": [{"role": "user", "content": "passthrough chat"}]})
            assert chat.status_code == 200, chat.text
            assert chat.json()["choices"][0]["message"]["content"] == "Through the Ollama port."

            responses = await http.post("/v1/responses", json={"model": MODEL, "input": "passthrough responses"})
            assert responses.status_code == 200, responses.text
            body = responses.json()
            assert body["status"] == "completed"
            assert body["output"][-1]["content"][0]["text"] == "Through the Ollama port."

        # The main port still wants its key for the same route.
        async with httpx.AsyncClient(base_url=gateway.main_listener.status.url, timeout=30) as http:
            denied = await http.post("/v1/responses", json={"model": MODEL, "input": "passthrough responses"})
            assert denied.status_code == 401


async def test_codex_oss_probe_sequence(data_dir):
    """codex --oss: GET /v1/models, GET /api/version (>= 0.13.4), GET /api/tags (model listed, else
    POST /api/pull {"model", "stream": true}), then POST /v1/responses, all on the Ollama port without a key."""
    pull_headers, pull_body = fixture_request("codex-oss.probe-pull.json")
    responses_headers, responses_raw = fixture_request("codex-exec.responses.json")
    async with ollama_bridge(data_dir) as (sim, _, url, _):
        sim.script({"match": {"user_text": "Say hi"}, "reply": {"text": "Hi from codex --oss."}})
        sim.script({"match": {}, "reply": {"text": "Hi from codex --oss."}})
        headers = {"host": "localhost:11434", "accept": "*/*"}
        async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as http:
            assert (await http.get("/v1/models")).status_code == 200
            version = await http.get("/api/version")
            assert version.status_code == 200 and version_tuple(version.json()["version"]) >= (0, 13, 4)
            tags = await http.get("/api/tags")
            listed = [m["name"] for m in tags.json()["models"]]
            assert MODEL in listed and "qwen3:8b" not in listed

            # The fixture's model is not served here: the pull fails the way Ollama fails it.
            missing = await http.post("/api/pull", content=pull_body, headers=pull_headers)
            assert missing.status_code == 404
            assert "qwen3:8b" in missing.json()["error"]
            # The same request for a listed model streams progress that ends in "success".
            known = await http.post("/api/pull", headers=pull_headers,
                                    content=orjson.dumps({**json.loads(pull_body), "model": MODEL}))
            assert known.status_code == 200
            assert known.headers["content-type"].startswith("application/x-ndjson")
            lines = ndjson(known.text)
            assert lines and all("status" in line for line in lines) and lines[-1]["status"] == "success"

            turn = {**json.loads(responses_raw), "model": MODEL}
            reply = await http.post("/v1/responses", content=orjson.dumps(turn), headers=responses_headers)
            assert reply.status_code == 200, reply.text
            assert reply.headers["content-type"].startswith("text/event-stream")
            events = sse_events(reply.text)
            types = [e["type"] for e in events]
            assert types[0] == "response.created" and types[-1] == "response.completed"
            assert "response.output_item.done" in types
            text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
            assert text == "Hi from codex --oss."
        assert upstream_bodies(sim), "the turn reached the backend"


@pytest.mark.parametrize("origin", ["http://localhost:3000", "http://127.0.0.1:8080", "http://[::1]:5173",
                                    "https://localhost"])
async def test_cors_loopback_origins(data_dir, origin):
    async with ollama_bridge(data_dir) as (_, _, url, _):
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            preflight = await http.options("/api/chat", headers={
                "origin": origin, "access-control-request-method": "POST",
                "access-control-request-headers": "content-type"})
            assert preflight.status_code == 204
            assert preflight.headers["access-control-allow-origin"] == origin
            assert "POST" in preflight.headers["access-control-allow-methods"]
            assert preflight.headers["access-control-allow-headers"].lower() == "content-type"

            simple = await http.get("/api/tags", headers={"origin": origin})
            assert simple.status_code == 200
            assert simple.headers["access-control-allow-origin"] == origin
            assert "Origin" in simple.headers["vary"]

            # /v1 on the Ollama port follows the same rule (browser clients of the OpenAI API).
            v1 = await http.options("/v1/chat/completions", headers={
                "origin": origin, "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type, x-stainless-os"})
            assert v1.status_code == 204
            assert "x-stainless-os" in v1.headers["access-control-allow-headers"]


@pytest.mark.parametrize("origin", ["http://localhost.evil.com", "https://example.com", "http://127.0.0.1.evil.com",
                                    "null", "http://user@localhost"])
async def test_cors_foreign_origins_are_refused(data_dir, origin):
    async with ollama_bridge(data_dir) as (_, _, url, _):
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            preflight = await http.options("/api/chat", headers={
                "origin": origin, "access-control-request-method": "POST"})
            simple = await http.get("/api/tags", headers={"origin": origin})
    for reply in (preflight, simple):
        assert reply.status_code == 403
        assert not any(name.startswith("access-control-") for name in reply.headers)
        assert "ollama.allowed_origins" in reply.json()["error"]


async def test_errors_use_ollama_shape(data_dir):
    async with ollama_bridge(data_dir) as (sim, _, url, _):
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            async def expect(status: int, response: httpx.Response) -> str:
                assert response.status_code == status, response.text
                body = response.json()
                assert list(body) == ["error"] and isinstance(body["error"], str) and body["error"]
                return body["error"]

            await expect(400, await http.post("/api/chat", content=b"{not json"))
            await expect(400, await http.post("/api/chat", content=b"[1, 2]"))
            await expect(400, await http.post("/api/generate", content=b"{"))
            await expect(400, await http.post("/api/show", content=b"nope"))
            assert "model" in await expect(400, await http.post("/api/chat", json={"messages": []}))
            assert "llama9" in await expect(404, await http.post("/api/chat", json={
                "model": "llama9", "messages": [{"role": "user", "content": "hi"}]}))
            await expect(404, await http.post("/api/generate", json={"model": "llama9", "prompt": "hi"}))
            await expect(404, await http.post("/api/show", json={"model": "llama9"}))
            await expect(404, await http.post("/api/show", json={"name": "llama9"}))
            await expect(404, await http.post("/api/pull", json={"model": "llama9"}))
            await expect(404, await http.get("/api/nothing-here"))

            sim.script({"match": {"user_text": "busy"}, "reply": {"rate_limit": {"resets_in_seconds": 120}}})
            await expect(429, await http.post("/api/chat", json={
                "model": MODEL, "stream": False, "messages": [{"role": "user", "content": "busy"}]}))
            limited = await http.post("/api/chat", json={
                "model": MODEL, "messages": [{"role": "user", "content": "busy again"}]})  # stream by default
            await expect(429, limited)

            shown = await http.post("/api/show", json={"name": MODEL})  # the legacy field still works
            assert shown.status_code == 200 and "completion" in shown.json()["capabilities"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_for(predicate, timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.05)


async def test_admin_start_stop_restart(data_dir):
    async with running_sim(accounts=1) as sim:
        async with gateway_on_sim(data_dir, sim) as (gateway, main_url):
            headers = {"authorization": f"Bearer {api_key(gateway)}"}
            async with httpx.AsyncClient(base_url=main_url, headers=headers, timeout=30) as admin:
                status = (await admin.get("/admin/ollama-status")).json()
                assert status["enabled"] is False and status["running"] is False

                port = free_port()
                started = await admin.post("/admin/ollama-settings", json={"enabled": True, "port": port})
                assert started.status_code == 200, started.text
                assert started.json()["status"]["running"] is True
                assert started.json()["settings"]["port"] == port
                url = started.json()["status"]["url"]
                assert url.endswith(f":{port}")
                async with httpx.AsyncClient(timeout=30) as http:
                    assert (await http.get(f"{url}/api/version")).status_code == 200

                    moved = free_port()
                    restarted = (await admin.post("/admin/ollama-settings", json={"port": moved})).json()
                    assert restarted["status"]["running"] and restarted["status"]["url"].endswith(f":{moved}")
                    assert (await http.get(f"{restarted['status']['url']}/api/tags")).status_code == 200
                    with pytest.raises(httpx.ConnectError):
                        await http.get(f"{url}/api/version")

                    stopped = (await admin.post("/admin/ollama-settings", json={"enabled": False})).json()
                    assert stopped["status"]["running"] is False
                    with pytest.raises(httpx.ConnectError):
                        await http.get(f"{restarted['status']['url']}/api/version")

                assert (await admin.get("/admin/ollama-settings")).json()["enabled"] is False
                bad = await admin.post("/admin/ollama-settings", json={"enabeld": True})
                assert bad.status_code == 400 and "enabeld" in bad.json()["error"]["message"]
                assert (await admin.get("/admin/ollama-status", headers={"authorization": "Bearer wrong"})
                        ).status_code == 401


async def test_refuses_non_loopback_bind(data_dir):
    async with running_sim(accounts=1) as sim:
        async with gateway_on_sim(data_dir, sim) as (gateway, main_url):
            headers = {"authorization": f"Bearer {api_key(gateway)}"}
            async with httpx.AsyncClient(base_url=main_url, headers=headers, timeout=30) as admin:
                reply = (await admin.post("/admin/ollama-settings",
                                          json={"enabled": True, "host": "0.0.0.0", "port": 0})).json()
                status = reply["status"]
                assert status["running"] is False and status["state"] == "error"
                assert "allow_non_loopback" in status["error"]
                assert (await admin.get("/admin/ollama-status")).json()["error"] == status["error"]

                # Back on loopback it starts, and the error is gone.
                fixed = (await admin.post("/admin/ollama-settings", json={"host": "127.0.0.1"})).json()["status"]
                assert fixed["running"] is True and fixed["error"] is None


async def test_local_yaml_edit_starts_and_stops_it(data_dir):
    async with running_sim(accounts=1) as sim:
        async with gateway_on_sim(data_dir, sim) as (gateway, _):
            listener = gateway.ollama.listener
            assert not listener.running
            port = free_port()
            update_local_file(data_dir / "local.yaml", {"ollama": {"enabled": True, "port": port}})
            await wait_for(lambda: listener.running)
            url = listener.status.url
            assert url.endswith(f":{port}")
            async with httpx.AsyncClient(timeout=30) as http:
                assert (await http.get(f"{url}/api/version")).json()["version"] == "0.18.3"
                update_local_file(data_dir / "local.yaml", {"ollama": {"version": "0.20.1"}})
                await wait_for(lambda: gateway.config.settings.ollama.version == "0.20.1")
                assert (await http.get(f"{url}/api/version")).json()["version"] == "0.20.1"

                update_local_file(data_dir / "local.yaml", {"ollama": {"enabled": False}})
                await wait_for(lambda: not listener.running)
                with pytest.raises(httpx.ConnectError):
                    await http.get(f"{url}/api/version")


async def test_busy_port_is_reported_not_raised(data_dir):
    async with running_sim(accounts=1) as sim:
        async with gateway_on_sim(data_dir, sim) as (gateway, main_url):
            headers = {"authorization": f"Bearer {api_key(gateway)}"}
            with socket.socket() as taken:
                taken.bind(("127.0.0.1", 0))
                taken.listen()
                port = taken.getsockname()[1]
                async with httpx.AsyncClient(base_url=main_url, headers=headers, timeout=30) as admin:
                    reply = await admin.post("/admin/ollama-settings", json={"enabled": True, "port": port})
                    assert reply.status_code == 200
                    status = reply.json()["status"]
                    assert status["running"] is False and status["state"] == "error"
                    assert "already in use" in status["error"]
                    # The main listener is unaffected.
                    assert (await admin.get("/admin/ollama-status")).json()["error"] == status["error"]


async def test_openai_sdk_on_the_ollama_port_with_a_dummy_key(data_dir):
    """Ollama-oriented tools configure the OpenAI SDK with `api_key="ollama"`: the key is ignored there."""
    import openai

    async with ollama_bridge(data_dir) as (sim, _, url, _):
        sim.script({"match": {"user_text": "sdk"}, "reply": {"text": "SDK on 11434."}})
        client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="ollama", max_retries=0)
        chat = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "sdk"}])
        assert chat.choices[0].message.content == "SDK on 11434."
        events = [e async for e in await client.responses.create(model=MODEL, input="sdk", stream=True)]
        assert events[-1].type == "response.completed"
        assert events[-1].response.output_text == "SDK on 11434."
        assert MODEL in [m.id for m in (await client.models.list()).data]


def test_a_cyclic_alias_is_refused_when_the_settings_load(data_dir):
    """A cycle used to be accepted and then failed every request naming it; now the settings are refused."""
    update_local_file(data_dir / "local.yaml", {"model": {"aliases": {"loop-a": "loop-b", "loop-b": "loop-a"}}})
    with pytest.raises(ConfigError, match=r"model.aliases: Model alias cycle: loop-a -> loop-b -> loop-a"):
        load(data_dir, environ={})


@pytest.mark.parametrize("bound, shown", [
    ("http://0.0.0.0:11434", "http://127.0.0.1:11434"), ("http://[::]:11434", "http://[::1]:11434"),
    ("http://127.0.0.1:11434", "http://127.0.0.1:11434"), ("http://[::1]:8080", "http://[::1]:8080"),
    ("http://192.168.1.5:11434", "http://192.168.1.5:11434")])
def test_wildcard_binds_are_advertised_on_loopback(bound, shown):
    assert advertised_url(bound) == shown


async def test_cors_headers_on_errors_and_streams(data_dir):
    """A loopback page can read error bodies and streamed answers too, not only simple JSON replies."""
    origin = "http://localhost:3000"
    async with ollama_bridge(data_dir) as (_, _, url, _):
        async with httpx.AsyncClient(base_url=url, timeout=30, headers={"origin": origin}) as http:
            bad = await http.post("/api/chat", content=b"{oops")
            assert bad.status_code == 400 and bad.headers["access-control-allow-origin"] == origin
            unknown = await http.post("/api/show", json={"model": "nope"})
            assert unknown.status_code == 404 and unknown.headers["access-control-allow-origin"] == origin
            async with http.stream("POST", "/api/chat", json={
                    "model": MODEL, "messages": [{"role": "user", "content": "hi"}]}) as streamed:
                assert streamed.status_code == 200
                assert streamed.headers["access-control-allow-origin"] == origin
                lines = ndjson((await streamed.aread()).decode())
            assert lines[-1]["done"] is True
            sse = await http.post("/v1/chat/completions", json={
                "model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]})
            assert sse.status_code == 200 and sse.headers["access-control-allow-origin"] == origin


async def test_codex_oss_default_model_through_an_alias(data_dir):
    """docs/ollama.md: an alias lets `codex --oss` (default model gpt-oss:20b) run without a pull."""
    async with ollama_bridge(data_dir, {"model": {"aliases": {"gpt-oss:20b": MODEL}}}) as (sim, _, url, _):
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            assert "gpt-oss:20b" in [m["name"] for m in (await http.get("/api/tags")).json()["models"]]
            pulled = await http.post("/api/pull", json={"model": "gpt-oss:20b", "stream": True})
            assert ndjson(pulled.text)[-1] == {"status": "success"}
            reply = await http.post("/v1/responses", json={"model": "gpt-oss:20b", "input": "hi", "stream": True})
            assert reply.status_code == 200
            assert sse_events(reply.text)[-1]["type"] == "response.completed"
        assert upstream_bodies(sim)[-1]["model"] == MODEL


async def test_enabled_from_the_environment(data_dir):
    environ = {"OLLAMA_BRIDGE_ENABLED": "true", "OLLAMA_BRIDGE_PORT": "0", "OLLAMA_BRIDGE_VERSION": "0.14.0"}
    async with running_gateway(data_dir, environ=environ, install=True) as (gateway, _):
        status = gateway.ollama.status()
        assert status["running"] is True and status["host"] == "127.0.0.1"
        async with httpx.AsyncClient(base_url=status["url"], timeout=30) as http:
            assert (await http.get("/api/version")).json() == {"version": "0.14.0"}
