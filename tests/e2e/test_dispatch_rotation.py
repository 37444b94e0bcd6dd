"""Rotation strategies through the whole gateway on the simulator: how new conversations spread over the pool."""

from __future__ import annotations

from collections import Counter

from .dispatch_helpers import accounts_asked, chat, gateway_and_sim


async def test_least_used_spreads_a_fresh_pool_evenly(data_dir):
    # Each answer reports the serving account's window reset; the accounts not used yet have none. They must
    # not sort behind it (an unknown reset is not "infinitely far"), or the first account takes everything.
    async with gateway_and_sim(data_dir, accounts=3, local={"auth": {"rotation_strategy": "least_used"}}) as (
            sim, gateway, client):
        for n in range(12):
            response = await client.post("/v1/chat/completions", json=chat(f"independent question {n}"))
            assert response.status_code == 200, response.text
        served = Counter(accounts_asked(sim))
        assert sorted(served.values()) == [4, 4, 4], served
        assert all(a.quota is not None for a in gateway.services.pool.accounts())  # every reset became known


async def test_when_no_account_can_serve_the_error_names_where_to_look(data_dir):
    async with gateway_and_sim(data_dir, accounts=1) as (sim, gateway, client):
        account = gateway.services.pool.accounts()[0]
        assert (await client.patch(f"/auth/accounts/{account.id}", json={"enabled": False})).status_code == 200
        response = await client.post("/v1/chat/completions", json=chat("anyone there?"))
        assert response.status_code == 503
        message = response.json()["error"]["message"]
        assert "`codex-trio accounts list`" in message and "GET /auth/accounts" in message
        assert "page" not in message  # there is no accounts page to check

        assert (await client.delete(f"/auth/accounts/{account.id}")).status_code in (200, 204)
        response = await client.post("/v1/chat/completions", json=chat("and now?"))
        assert response.status_code == 503 and "`codex-trio login`" in response.json()["error"]["message"]
        assert "dashboard" not in response.json()["error"]["message"]
