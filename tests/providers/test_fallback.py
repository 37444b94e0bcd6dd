"""Fallback: when no subscription account can start a turn (all rate-limited on the simulator), the request is
served by the configured provider model with a header saying so; with fallback off (the default) the client
gets the usual 429 in its own envelope."""

from __future__ import annotations

import json

import anthropic
import pytest

from tests.e2e.dispatch_helpers import gateway_and_sim

from .fakes import running_fakes
from .helpers import add_providers, provider_bodies

MODEL = "gpt-5.5"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}]}


def exhaust_every_account(sim) -> None:
    sim.script({"reply": {"rate_limit": {"resets_in_seconds": 1800}}})


@pytest.mark.parametrize("stream", [False, True])
async def test_all_accounts_exhausted_falls_back_to_the_provider_with_a_header(data_dir, stream):
    async with running_fakes() as fakes:
        local = {"providers": {"fallback": True, "fallback_model": "fakeclaude/claude-fake-1"}}
        async with gateway_and_sim(data_dir, accounts=2, local=local) as (sim, gateway, client):
            await add_providers(client, provider_bodies(fakes))
            served = await client.post("/v1/chat/completions", json=CHAT)
            assert served.status_code == 200 and "x-codex-trio-fallback" not in served.headers  # accounts first
            exhaust_every_account(sim)
            response = await client.post("/v1/chat/completions", json={**CHAT, "stream": stream})
            assert response.status_code == 200, response.text
            assert response.headers["x-codex-trio-fallback"] == "fakeclaude/claude-fake-1"
            if stream:
                chunks = [json.loads(line[6:]) for line in response.text.splitlines()
                          if line.startswith("data: {")]
                text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
                assert text == "Hello from fake-anthropic!"
                assert response.text.rstrip().endswith("data: [DONE]")
            else:
                assert response.json()["choices"][0]["message"]["content"] == "Hello from fake-anthropic!"
            assert fakes.last("/v1/messages").body["model"] == "claude-fake-1"


async def test_per_model_fallback_wins_and_other_clients_get_it_too(data_dir):
    async with running_fakes() as fakes:
        local = {"providers": {"fallback": True, "fallback_model": "fakeclaude/claude-fake-1",
                               "fallback_models": {MODEL: "fakeai/fake-gpt"}}}
        async with gateway_and_sim(data_dir, accounts=1, local=local) as (sim, gateway, client):
            await add_providers(client, provider_bodies(fakes))
            exhaust_every_account(sim)
            sdk = anthropic.AsyncAnthropic(base_url=str(client.base_url), api_key=client.headers["authorization"][7:],
                                           max_retries=0)
            raw = await sdk.messages.with_raw_response.create(model=MODEL, max_tokens=50,
                                                              messages=[{"role": "user", "content": "hi"}])
            assert raw.headers["x-codex-trio-fallback"] == "fakeai/fake-gpt"
            assert (await raw.parse()).content[0].text == "Hello from fake-openai!"


async def test_fallback_off_gives_the_usual_429_in_the_clients_envelope(data_dir):
    async with running_fakes() as fakes:
        async with gateway_and_sim(data_dir, accounts=2) as (sim, gateway, client):
            await add_providers(client, provider_bodies(fakes))
            exhaust_every_account(sim)
            response = await client.post("/v1/chat/completions", json=CHAT)
            assert response.status_code == 429 and "x-codex-trio-fallback" not in response.headers
            assert response.json()["error"]["type"] and "retry-after" in response.headers
            sdk = anthropic.AsyncAnthropic(base_url=str(client.base_url), api_key=client.headers["authorization"][7:],
                                           max_retries=0)
            with pytest.raises(anthropic.RateLimitError) as limited:
                await sdk.messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hi"}])
            assert limited.value.body["type"] == "error"
            assert not [r for r in fakes.received if "/v1/messages" in r.path or "/chat/" in r.path]


async def test_fallback_to_a_responses_provider_carries_only_what_the_client_sent(data_dir):
    """The accounts path adds backend-only fields from the Codex catalog entry (`reasoning.context` on
    responses-lite models, a default `text.verbosity`) and `client_metadata`; a fallback provider must get
    the client's request, not that."""
    async with running_fakes() as fakes:
        lite = "gpt-6.2-sol"  # a responses-lite model of the simulator's catalog (every plan)
        local = {"providers": {"fallback": True, "fallback_model": "fakeresp/fake-resp"}}
        async with gateway_and_sim(data_dir, accounts=1, local=local) as (sim, gateway, client):
            await add_providers(client, provider_bodies(fakes))
            exhaust_every_account(sim)
            sent = {"model": lite, "input": "hello", "reasoning": {"effort": "low"},
                    "metadata": {"app": "mine"}, "stream": True}
            response = await client.post("/v1/responses", json=sent)
            assert response.status_code == 200, response.text
            assert response.headers["x-codex-trio-fallback"] == "fakeresp/fake-resp"
            assert "Hello from fake-responses!" in response.text
            body = fakes.last("/v1/responses").body
            assert body["model"] == "fake-resp"
            assert body["reasoning"] == {"effort": "low"}
            assert "text" not in body and "client_metadata" not in body
