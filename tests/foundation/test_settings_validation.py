"""Settings are validated at the edge: a value that would break later requests (or the next start) is a 400 from
the admin API with a message naming the setting, never accepted and never a 500."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from codex_trio.config.loader import ConfigError, load
from codex_trio.config.store import ConfigStore
from codex_trio.sim import running_sim
from tests.conftest import api_key, gateway_on_sim, running_gateway


def deeply_nested(levels: int) -> dict:
    root: dict = {}
    node = root
    for _ in range(levels):
        node["a"] = {}
        node = node["a"]
    return root


# (change, the setting the message must name). Each was accepted before and broke requests or the next start.
BREAKING_CHANGES = [
    ({"model": {"default": ""}}, "model.default"),
    ({"model": {"default": "  "}}, "model.default"),
    ({"model": {"aliases": {"mine": ""}}}, "model.aliases"),
    ({"model": {"aliases": {"": "gpt-5.5"}}}, "model.aliases"),
    ({"model": {"aliases": {"a": "b", "b": "a-high"}}}, "model.aliases"),  # a cycle through a suffix
    ({"model": {"custom_models": [""]}}, "model.custom_models"),
    ({"model": {"custom_models": [{"id": "mine", "context_window": -5}]}}, "model.custom_models"),
    ({"model": {"default_tools": [""]}}, "model.default_tools"),
    ({"model": {"default_tools": ["web_serach"]}}, "model.default_tools"),
    ({"api": {"timeout_seconds": -1}}, "api.timeout_seconds"),
    ({"api": {"timeout_seconds": "nan"}}, "api.timeout_seconds"),
    ({"api": {"stream_idle_timeout_seconds": "inf"}}, "api.stream_idle_timeout_seconds"),
    ({"api": {"base_url": "chatgpt.com/backend-api"}}, "api.base_url"),
    ({"api": {"auth_base_url": ""}}, "api.auth_base_url"),
    ({"server": {"port": 70000}}, "server.port"),
    ({"server": {"host": ""}}, "server.host"),
    ({"server": {"tcp_user_timeout_ms": 2**40}}, "server.tcp_user_timeout_ms"),
    ({"server": {"graceful_shutdown_seconds": -5}}, "server.graceful_shutdown_seconds"),
    ({"server": {"proxy_api_key": "two words"}}, "server.proxy_api_key"),
    ({"server": {"proxy_api_key": None}}, "server.proxy_api_key"),
    ({"client": {"version": "latest"}}, "client.version"),
    ({"client": {"platform": "Linux\r\nx-injected: 1"}}, "client.platform"),
    ({"client": {"release_feed_url": "ftp://example.com/x"}}, "client.release_feed_url"),
    ({"tls": {"proxy_url": "gopher://127.0.0.1:70"}}, "tls.proxy_url"),
    ({"tls": {"proxy_url": "http://127.0.0.1:99999"}}, "tls.proxy_url"),
    ({"tls": {"ca_file": "/nonexistent/ca.pem"}}, "tls.ca_file"),
    ({"ollama": {"port": -1}}, "ollama.port"),
    ({"ollama": {"host": "not a host"}}, "ollama.host"),
    ({"ollama": {"version": ""}}, "ollama.version"),
    ({"auth": {"max_concurrent_per_account": 0}}, "auth.max_concurrent_per_account"),
    ({"model": {"aliases": deeply_nested(600)}}, "model.aliases"),
    ({"model": {"custom_models": [deeply_nested(600)]}}, "model.custom_models"),
]


@pytest.mark.parametrize("change,setting", BREAKING_CHANGES, ids=[s for _, s in BREAKING_CHANGES])
async def test_a_breaking_change_is_a_400_naming_the_setting_and_changes_nothing(data_dir: Path, change, setting):
    async with running_gateway(data_dir, install=True) as (gateway, url):
        key = api_key(gateway)
        before_file = (data_dir / "local.yaml").read_text()
        async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=30) as client:
            before = (await client.get("/admin/settings")).json()
            reply = await client.post("/admin/settings", json=change)
            assert reply.status_code == 400, reply.text[:300]
            error = reply.json()["error"]
            assert error["type"] == "invalid_request_error" and setting in error["message"], error
            assert "Traceback" not in reply.text
            # nothing was written or applied, and the key still opens the API
            assert (await client.get("/admin/settings")).json() == before
        assert (data_dir / "local.yaml").read_text() == before_file


async def test_an_empty_default_model_is_refused_and_fallback_requests_keep_working(data_dir: Path):
    async with running_sim(accounts=1) as sim:
        sim.script({"match": {}, "reply": {"text": "Still fine."}})
        async with gateway_on_sim(data_dir, sim) as (gateway, url):
            headers = {"authorization": f"Bearer {api_key(gateway)}"}
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
                refused = await client.post("/admin/settings", json={"model": {"default": ""}})
                assert refused.status_code == 400
                # Responses falls back to the default model for a name it does not know
                reply = await client.post("/v1/responses", json={"model": "no-such-model", "input": "hi"})
                assert reply.status_code == 200, reply.text[:300]
                assert reply.json()["output"][-1]["content"][0]["text"] == "Still fine."


async def test_ollama_settings_route_validates_too(data_dir: Path):
    async with running_gateway(data_dir, install=True) as (gateway, url):
        headers = {"authorization": f"Bearer {api_key(gateway)}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            for body, setting in (({"version": "new"}, "ollama.version"), ({"host": "a b"}, "ollama.host")):
                reply = await client.post("/admin/ollama-settings", json=body)
                assert reply.status_code == 400 and setting in reply.json()["error"]["message"], reply.text


def test_a_deeply_nested_local_yaml_is_a_config_error_not_a_crash(tmp_path: Path):
    """The hot-reload watcher only survives ConfigError; a RecursionError would end the gateway."""
    store = ConfigStore(tmp_path, environ={})
    store.ensure_first_start()
    key = store.settings.server.proxy_api_key
    for depth in (20, 400):
        (tmp_path / "local.yaml").write_text(f"server:\n  proxy_api_key: {key}\nmodel:\n  aliases: "
                                             + "{a: " * depth + "x" + "}" * depth + "\n")
        with pytest.raises(ConfigError, match="nested"):
            load(tmp_path, environ={})
        assert store.reload() is None and store.settings.server.proxy_api_key == key
