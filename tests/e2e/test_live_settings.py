"""Settings changed over the admin API apply without a restart, or the answer says they need one; a setting an
environment variable overrides is refused instead of being written and silently not applied."""

from __future__ import annotations


import httpx
import trio

from codex_trio.config.schema import RESTART_REQUIRED
from codex_trio.upstream.quota import QuotaSnapshot, QuotaWindow
from tests.conftest import api_key, running_gateway
from tests.foundation.test_serving import _free_port

from .dispatch_helpers import accounts_asked, chat, gateway_and_sim


async def patch(client: httpx.AsyncClient, changes: dict) -> dict:
    response = await client.patch("/admin/settings", json=changes)
    assert response.status_code == 200, response.text
    return response.json()


async def test_rotation_strategy_applies_to_the_next_request(data_dir):
    async with gateway_and_sim(data_dir, accounts=3, local={"auth": {"rotation_strategy": "round_robin"}}) as (
            sim, gateway, client):
        for n in range(3):
            assert (await client.post("/v1/chat/completions", json=chat(f"spread {n}"))).status_code == 200
        assert len(set(accounts_asked(sim))) == 3
        assert (await patch(client, {"auth": {"rotation_strategy": "sticky"}}))["restart_required"] == []
        for n in range(4):
            assert (await client.post("/v1/chat/completions", json=chat(f"stick {n}"))).status_code == 200
        assert len(set(accounts_asked(sim)[3:])) == 1  # every new conversation on the same account now


async def test_quota_warning_thresholds_and_skip_exhausted_apply_without_restart(data_dir):
    async with gateway_and_sim(data_dir, accounts=2) as (sim, gateway, client):
        # both accounts half used; the answers report it
        for account in sim.accounts:
            account.quota.record("gpt-5.5", 500_000, sim.clock.now())
        for n in range(2):
            assert (await client.post("/v1/chat/completions", json=chat(f"usage {n}"))).status_code == 200
        assert (await client.get("/auth/quota/warnings")).json()["warnings"] == []
        assert (await patch(client, {"quota": {"warning_thresholds": [40, 90]}}))["restart_required"] == []
        warnings = (await client.get("/auth/quota/warnings")).json()
        assert warnings["thresholds"] == [40, 90]
        assert sorted(w["threshold"] for w in warnings["warnings"]) == [40, 40]

        # an account the cached quota calls exhausted: skipped by default, tried once skip_exhausted is off
        exhausted = sim.accounts[0].account_id
        pool = gateway.services.pool
        runtime = next(rt for rt in pool._accounts.values() if rt.account.account_id == exhausted)
        runtime.quota = QuotaSnapshot(QuotaWindow(100.0, 300, sim.clock.now() + 3600), None, limit_reached=True)
        before = len(accounts_asked(sim))
        for n in range(2):
            assert (await client.post("/v1/chat/completions", json=chat(f"skip {n}"))).status_code == 200
        assert exhausted not in accounts_asked(sim)[before:]
        await patch(client, {"quota": {"skip_exhausted": False}, "auth": {"rotation_strategy": "round_robin"}})
        before = len(accounts_asked(sim))
        for n in range(2):
            assert (await client.post("/v1/chat/completions", json=chat(f"try {n}"))).status_code == 200
        assert exhausted in accounts_asked(sim)[before:]


async def test_quota_poll_interval_applies_at_once(data_dir):
    async with gateway_and_sim(data_dir, accounts=1, local={"quota": {"refresh_interval_minutes": 600}}) as (
            sim, gateway, client):
        await client.post("/v1/chat/completions", json=chat("first"))
        polled = len(sim.requests_to("/wham/usage"))
        sim.clock.advance(120)  # the cached quota is now two minutes old
        await patch(client, {"quota": {"refresh_interval_minutes": 1}})
        with trio.fail_after(10):
            while len(sim.requests_to("/wham/usage")) == polled:
                await trio.sleep(0.05)


async def test_settings_read_at_start_are_reported_as_needing_a_restart(data_dir):
    async with running_gateway(data_dir, install=True) as (gateway, url):
        async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {api_key(gateway)}"}) as client:
            answer = await patch(client, {"server": {"tcp_user_timeout_ms": 5000, "graceful_shutdown_seconds": 3},
                                          "api": {"base_url": "https://chatgpt.com/backend-api/"},
                                          "tls": {"resolve": {"chatgpt.com": "127.0.0.1:9"}},
                                          "model": {"default": "gpt-5.4"}})
    assert answer["restart_required"] == ["api.base_url", "server.graceful_shutdown_seconds",
                                          "server.tcp_user_timeout_ms", "tls.resolve"]
    assert {"server.host", "server.port", "tls.ca_file"} <= {f"{s}.{k}" for s, k in RESTART_REQUIRED}


async def test_a_setting_an_environment_variable_overrides_is_refused_with_its_name(data_dir):
    env_port, wished = _free_port(), _free_port()
    environ = {"OLLAMA_BRIDGE_PORT": str(env_port), "CODEX_TRIO__MODEL__DEFAULT": "gpt-5.4"}
    async with running_gateway(data_dir, install=True, environ=environ) as (gateway, url):
        async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {api_key(gateway)}"}) as client:
            refused = await client.post("/admin/ollama-settings", json={"enabled": True, "port": wished})
            assert refused.status_code == 409, refused.text
            assert "OLLAMA_BRIDGE_PORT" in refused.json()["error"]["message"]
            assert "port" not in (data_dir / "local.yaml").read_text()  # nothing written
            generic = await client.patch("/admin/settings", json={"model": {"default": "gpt-5.5"}})
            assert generic.status_code == 409 and "CODEX_TRIO__MODEL__DEFAULT" in generic.json()["error"]["message"]
            # sending the value in force (as a form does) is fine, and the other fields apply
            started = await client.post("/admin/ollama-settings", json={"enabled": True, "port": env_port})
            assert started.status_code == 200 and started.json()["status"]["running"] is True
            assert (await client.get(f"http://127.0.0.1:{env_port}/api/version")).status_code == 200
            await client.post("/admin/ollama-settings", json={"enabled": False})


async def test_refresh_margin_affinity_ttl_and_log_level_apply_without_restart(data_dir):
    import logging

    async with gateway_and_sim(data_dir, accounts=2, local={"auth": {"rotation_strategy": "round_robin"}}) as (
            sim, gateway, client):
        assert (await client.post("/v1/chat/completions", json=chat("one", user="ttl"))).status_code == 200
        assert (await client.post("/v1/chat/completions", json=chat("two", user="ttl"))).status_code == 200
        first, second = accounts_asked(sim)[-2:]
        assert first == second  # the conversation stays on its account
        answer = await patch(client, {"auth": {"affinity_ttl_minutes": 0.01}})  # 0.6 s
        assert answer["restart_required"] == []
        sim.clock.advance(5)
        assert (await client.post("/v1/chat/completions", json=chat("three", user="ttl"))).status_code == 200
        assert accounts_asked(sim)[-1] != first  # affinity expired: round robin moved it on

        refreshed = len(sim.requests_to("/oauth/token"))
        # tokens last hours: a margin of ten days makes them due now
        await patch(client, {"auth": {"refresh_margin_seconds": 10 * 86400}})
        assert (await client.post("/v1/chat/completions", json=chat("four"))).status_code == 200
        assert len(sim.requests_to("/oauth/token")) > refreshed

        await patch(client, {"logs": {"level": "error"}})
        assert logging.getLogger().level == logging.ERROR
        await patch(client, {"logs": {"level": "info"}})
        assert logging.getLogger().level == logging.INFO


async def test_a_resolve_entry_that_is_not_an_address_is_refused(data_dir):
    async with running_gateway(data_dir, install=True) as (gateway, url):
        async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {api_key(gateway)}"}) as client:
            bad = await client.patch("/admin/settings", json={"tls": {"resolve": {"chatgpt.com": "localhost"}}})
    assert bad.status_code == 400
    assert "tls.resolve" in bad.json()["error"]["message"] and "127.0.0.1:8443" in bad.json()["error"]["message"]
