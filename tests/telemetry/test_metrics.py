"""GET /metrics parsed with prometheus_client's own parser, its values checked against the traffic sent."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.telemetry.helpers import stack, wait_for_records

CHAT = "/v1/chat/completions"


def chat(text: str, model: str = "gpt-5.5", **extra):
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


async def scrape(client: httpx.AsyncClient) -> dict[str, list]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def value(samples: list, name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


async def test_metrics_match_the_traffic_sent(data_dir):
    async with stack(data_dir, accounts=2) as (sim, gateway, client):
        sim.script({"match": {"user_text": "FAILOVER"}, "times": 1, "reply": {"rate_limit": {"resets_in_seconds": 30}}})
        tokens = {"input": 0, "output": 0}
        for i in range(3):
            usage = (await client.post(CHAT, json=chat(f"hello {i}"))).json()["usage"]
            tokens["input"] += usage["prompt_tokens"]
            tokens["output"] += usage["completion_tokens"]
        usage = (await client.post(CHAT, json=chat("FAILOVER now"))).json()["usage"]
        tokens["input"] += usage["prompt_tokens"]
        tokens["output"] += usage["completion_tokens"]
        assert (await client.post(CHAT, json=chat("x", model="nope"))).status_code == 404
        async with client.stream("POST", "/v1/messages", json={"model": "gpt-5.5", "max_tokens": 20, "stream": True,
                                                                "messages": [{"role": "user", "content": "hi"}]}) as r:
            await r.aread()
        await wait_for_records(client, 6)
        metrics = await scrape(client)

        requests = metrics["codex_trio_requests"]
        assert value(requests, "codex_trio_requests_total", protocol="openai", model="gpt-5.5", status="200") == 4
        assert value(requests, "codex_trio_requests_total", protocol="openai", status="404") == 1
        assert value(requests, "codex_trio_requests_total", protocol="anthropic", status="200", outcome="ok") == 1
        assert value(metrics["codex_trio_time_to_first_byte_seconds"], "codex_trio_time_to_first_byte_seconds_count",
                     protocol="openai") == 4
        assert value(metrics["codex_trio_request_duration_seconds"], "codex_trio_request_duration_seconds_count",
                     protocol="anthropic", stream="true") == 1
        token_samples = metrics["codex_trio_tokens"]
        anthropic_record = (await client.get("/admin/logs", params={"protocol": "anthropic"})).json()["records"][0]
        assert value(token_samples, "codex_trio_tokens_total", kind="input") == (
            tokens["input"] + anthropic_record["input_tokens"])
        assert value(token_samples, "codex_trio_tokens_total", kind="output") == (
            tokens["output"] + anthropic_record["output_tokens"])
        assert value(metrics["codex_trio_failovers"], "codex_trio_failovers_total") == 1
        assert value(metrics["codex_trio_upstream_failures"], "codex_trio_upstream_failures_total") == 1
        states = {s.labels["state"]: s.value for s in metrics["codex_trio_accounts"]}
        assert sum(states.values()) == 2 and states.get("rate_limited", 0) + states.get("active", 0) == 2
        quota = metrics["codex_trio_account_quota_used_percent"]
        assert {s.labels["window"] for s in quota} <= {"primary", "secondary"} and quota
        assert value(metrics["codex_trio_in_flight_requests"], "codex_trio_in_flight_requests") == 0
        assert value(metrics["codex_trio_open_streams"], "codex_trio_open_streams") == 0
        assert value(metrics["codex_trio_ollama_listener_up"], "codex_trio_ollama_listener_up") == 0


async def test_metrics_need_the_admin_key_unless_public(data_dir):
    async with stack(data_dir) as (sim, gateway, client):
        async with httpx.AsyncClient(base_url=str(client.base_url)) as anonymous:
            refused = await anonymous.get("/metrics")
            # The default-deny key check answers before the route: the usual 401 in the OpenAI envelope.
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
            changed = await client.patch("/admin/settings", json={"metrics": {"public": True}})
            assert changed.status_code == 200
            assert (await anonymous.get("/metrics")).status_code == 200


async def test_ollama_requests_are_recorded_and_the_listener_is_reported_up(data_dir):
    async with stack(data_dir, local={"ollama": {"enabled": True, "port": 0}}) as (sim, gateway, client):
        url = gateway.ollama.listener.status.url
        async with httpx.AsyncClient(base_url=url, timeout=30) as ollama:
            reply = await ollama.post("/api/chat", json={"model": "gpt-5.5", "stream": False,
                                                         "messages": [{"role": "user", "content": "hi"}]})
            assert reply.status_code == 200
            assert float(reply.headers["x-codex-trio-overhead-ms"]) >= 0
        record = (await wait_for_records(client, 1))[0]
        assert record["protocol"] == "ollama" and record["status"] == 200 and record["output_tokens"] > 0
        metrics = await scrape(client)
        assert value(metrics["codex_trio_ollama_listener_up"], "codex_trio_ollama_listener_up") == 1
        assert value(metrics["codex_trio_requests"], "codex_trio_requests_total", protocol="ollama") == 1
