"""Failover before the first byte, through the real gateway on the simulator: a turn that one account
cannot serve is answered by another, and the pool learns what happened to the first one."""

from __future__ import annotations

import math

import pytest

from codex_trio.accounts.model import AccountStatus

from .dispatch_helpers import accounts_asked, chat, gateway_and_sim, pool_account


async def first_account(sim, client, conversation: str) -> str:
    """Run one turn of `conversation`; the account that served it (affinity keeps the next turn there)."""
    response = await client.post("/v1/chat/completions", json=chat("warm up", user=conversation))
    assert response.status_code == 200, response.text
    return accounts_asked(sim)[-1]


async def test_rate_limited_account_fails_over_and_cools_down_until_the_reset(data_dir):
    async with gateway_and_sim(data_dir, accounts=2) as (sim, gateway, client):
        chosen = await first_account(sim, client, "conv-429")
        sim.script({"match": {"account_id": chosen}, "reply": {"rate_limit": {"resets_in_seconds": 1800}}})
        before = len(accounts_asked(sim))
        response = await client.post("/v1/chat/completions", json=chat("hello again", user="conv-429"))
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"]
        asked = accounts_asked(sim)[before:]
        assert asked[0] == chosen and len(asked) == 2 and asked[1] != chosen
        account = pool_account(gateway, chosen)
        assert account.status is AccountStatus.RATE_LIMITED
        assert math.isclose(account.cooldown_until, sim.clock.now() + 1800, abs_tol=5)


async def test_banned_account_fails_over_and_is_marked_banned(data_dir):
    async with gateway_and_sim(data_dir, accounts=2) as (sim, gateway, client):
        chosen = await first_account(sim, client, "conv-ban")
        sim.script({"match": {"account_id": chosen}, "reply": {"ban": True}})
        before = len(accounts_asked(sim))
        response = await client.post("/v1/chat/completions", json=chat("hello again", user="conv-ban"))
        assert response.status_code == 200, response.text
        asked = accounts_asked(sim)[before:]
        assert asked[0] == chosen and asked[-1] != chosen
        assert pool_account(gateway, chosen).status is AccountStatus.BANNED


async def test_server_errors_are_retried_on_the_same_account_then_another(data_dir):
    async with gateway_and_sim(data_dir, accounts=2) as (sim, gateway, client):
        chosen = await first_account(sim, client, "conv-5xx")
        sim.script({"match": {"account_id": chosen}, "reply": {"http_status": 503}})
        before = len(accounts_asked(sim))
        response = await client.post("/v1/chat/completions", json=chat("hello again", user="conv-5xx"))
        assert response.status_code == 200, response.text
        asked = accounts_asked(sim)[before:]
        assert asked == [chosen, chosen, chosen, asked[-1]] and asked[-1] != chosen
        assert pool_account(gateway, chosen).status is AccountStatus.ACTIVE
        assert gateway.services.pool.runtime_info(pool_account(gateway, chosen).id)["last_failure"]["kind"] \
            == "server_error"


async def test_transient_server_error_is_retried_on_the_same_account(data_dir):
    async with gateway_and_sim(data_dir, accounts=2) as (sim, gateway, client):
        chosen = await first_account(sim, client, "conv-5xx-once")
        sim.script({"match": {"account_id": chosen}, "times": 1, "reply": {"http_status": 500}})
        before = len(accounts_asked(sim))
        response = await client.post("/v1/chat/completions", json=chat("hello again", user="conv-5xx-once"))
        assert response.status_code == 200, response.text
        assert accounts_asked(sim)[before:] == [chosen, chosen]


async def test_cloudflare_empty_404_fails_over_and_clears_the_accounts_cookies(data_dir):
    # over SSE (the sim refuses the WebSocket): an empty-body 404 is the HTTP answer of the turn itself
    async with gateway_and_sim(data_dir, accounts=2, websocket=False) as (sim, gateway, client):
        chosen = await first_account(sim, client, "conv-cf")
        account_id = pool_account(gateway, chosen).id
        await gateway.services.store.update(account_id, cookies=[{"name": "cf_clearance", "value": "old"}])
        gateway.services.pool.get(account_id).cookies = [{"name": "cf_clearance", "value": "old"}]
        sim.script({"match": {"account_id": chosen}, "reply": {"cloudflare_404": True}})
        before = len(accounts_asked(sim))
        response = await client.post("/v1/chat/completions", json=chat("hello again", user="conv-cf"))
        assert response.status_code == 200, response.text
        asked = accounts_asked(sim)[before:]
        assert asked == [chosen, asked[-1]] and asked[-1] != chosen  # no same-account retry for an edge block
        info = gateway.services.pool.runtime_info(account_id)
        assert info["last_failure"]["kind"] == "empty_404"
        assert gateway.services.pool.get(account_id).cookies == []


async def test_a_socket_dropped_before_the_first_event_is_retried_then_fails_over(data_dir):
    # the sim drops the WebSocket for an empty 404 on a socket: a network failure before the first byte
    async with gateway_and_sim(data_dir, accounts=2) as (sim, gateway, client):
        chosen = await first_account(sim, client, "conv-drop")
        sim.script({"match": {"account_id": chosen}, "reply": {"cloudflare_404": True}})
        before = len(accounts_asked(sim))
        response = await client.post("/v1/chat/completions", json=chat("hello again", user="conv-drop"))
        assert response.status_code == 200, response.text
        asked = accounts_asked(sim)[before:]
        assert asked == [chosen, chosen, chosen, asked[-1]] and asked[-1] != chosen
        info = gateway.services.pool.runtime_info(pool_account(gateway, chosen).id)
        assert info["last_failure"]["kind"] == "network"
        assert pool_account(gateway, chosen).status is AccountStatus.ACTIVE


@pytest.mark.parametrize("websocket", [True, False])
async def test_revoked_token_whose_refresh_fails_for_good_fails_over_and_expires_the_account(data_dir, websocket):
    async with gateway_and_sim(data_dir, accounts=2, websocket=websocket) as (sim, gateway, client):
        chosen = await first_account(sim, client, "conv-401")
        # an open socket was authenticated at its handshake: the revocation shows on the next connection
        await gateway.services.dispatcher.conversations.close_all()
        assert sim.state.issuer.revoke(pool_account(gateway, chosen).tokens.access_token)
        assert sim.state.issuer.revoke(pool_account(gateway, chosen).tokens.refresh_token)
        before = len(sim.requests)
        response = await client.post("/v1/chat/completions", json=chat("hello again", user="conv-401"))
        assert response.status_code == 200, response.text
        refused = [r for r in sim.requests[before:] if r.path.endswith("/codex/responses") and r.status == 401]
        refreshes = [r for r in sim.requests[before:] if r.path == "/oauth/token"]
        # like codex: the first 401 reloads the account and retries, the second refreshes (and that fails)
        assert [r.header("chatgpt-account-id") for r in refused] == [chosen, chosen]
        assert [r.status for r in refreshes] == [401]
        served = [r for r in sim.requests[before:] if r.path.endswith("/codex/responses") and r.status in (101, 200)]
        assert served and all(r.header("chatgpt-account-id") != chosen for r in served)
        assert pool_account(gateway, chosen).status is AccountStatus.EXPIRED


async def test_every_account_rate_limited_gives_429_with_retry_after(data_dir):
    async with gateway_and_sim(data_dir, accounts=2) as (sim, gateway, client):
        sim.script({"reply": {"rate_limit": {"resets_in_seconds": 600}}})
        response = await client.post("/v1/chat/completions", json=chat("anyone?"))
        assert response.status_code == 429, response.text
        assert 590 <= int(response.headers["retry-after"]) <= 600
        error = response.json()["error"]
        assert error["type"] and error["message"]
        assert len(set(accounts_asked(sim))) == 2
        # the next request is refused by the pool without asking the backend
        asked = len(accounts_asked(sim))
        response = await client.post("/v1/messages", json={"model": "claude-sonnet-4-6", "max_tokens": 50,
                                                           "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 429 and response.json()["type"] == "error"
        assert response.json()["error"]["type"] == "rate_limit_error"
        assert int(response.headers["retry-after"]) > 500
        assert len(accounts_asked(sim)) == asked


async def test_every_account_failing_with_server_errors_gives_a_5xx(data_dir):
    async with gateway_and_sim(data_dir, accounts=2) as (sim, gateway, client):
        sim.script({"reply": {"http_status": 503}})
        response = await client.post("/v1/chat/completions", json=chat("anyone?"))
        assert response.status_code in (503, 529), response.text
        assert response.json()["error"]["message"]
        asked = accounts_asked(sim)
        assert len(asked) == 6 and len(set(asked)) == 2  # 3 tries on each account


async def test_cloudflare_challenge_fails_over_and_rests_the_account_for_a_while(data_dir):
    async with gateway_and_sim(data_dir, accounts=2, websocket=False) as (sim, gateway, client):
        chosen = await first_account(sim, client, "conv-cf403")
        sim.script({"match": {"account_id": chosen}, "times": 1, "reply": {"cloudflare_challenge": True}})
        before = len(accounts_asked(sim))
        response = await client.post("/v1/chat/completions", json=chat("hello again", user="conv-cf403"))
        assert response.status_code == 200, response.text
        asked = accounts_asked(sim)[before:]
        assert asked == [chosen, asked[-1]] and asked[-1] != chosen
        account_id = pool_account(gateway, chosen).id
        info = gateway.services.pool.runtime_info(account_id)
        assert info["last_failure"]["kind"] == "cloudflare_challenge"
        assert info["cloudflare_cooldown_until"] > sim.clock.now()
        assert pool_account(gateway, chosen).status is AccountStatus.ACTIVE  # resting, not limited or banned
        # while it rests, even its own conversation is served elsewhere; after the cooldown it is used again
        response = await client.post("/v1/chat/completions", json=chat("and again", user="conv-cf403"))
        assert response.status_code == 200 and accounts_asked(sim)[-1] != chosen
        sim.clock.advance(info["cloudflare_cooldown_until"] - sim.clock.now() + 1)
        assert gateway.services.pool.runtime_info(account_id)["cloudflare_cooldown_until"] is None
        response = await client.post("/v1/chat/completions", json=chat("warm up", user="conv-cf403-b"))
        response = await client.post("/v1/chat/completions", json=chat("warm up", user="conv-cf403-c"))
        assert chosen in accounts_asked(sim)[-2:]
