"""Cloudflare cookies per account, end to end: the gateway reaches the simulator as `https://chatgpt.com/backend-api`
(the `tls.resolve` setting pins the name to the sim; SNI, certificate and Host stay the real ones), so the
account's cookie jar sees the backend host. Cloudflare's answers set `__cf_bm` on every backend path; a solved
challenge adds `cf_clearance`. What an account was given is kept for that account and sent on its next HTTPS
requests; the WebSocket never carries cookies (codex-rs's store skips wss); another account never gets them."""

from __future__ import annotations

import httpx

from codex_trio.sim import running_sim
from tests.conftest import api_key, gateway_on_sim

from .dispatch_helpers import accounts_asked, chat, gateway_and_sim, pool_account, sni_of


def cookie_of(record) -> dict[str, str]:
    header = record.header("cookie")
    return dict(part.split("=", 1) for part in header.split("; ")) if header else {}


def jar_of(gateway, chatgpt_account_id: str) -> dict[str, str]:
    return {c["name"]: c["value"] for c in pool_account(gateway, chatgpt_account_id).cookies}


async def test_backend_cookies_are_captured_replayed_per_account_and_never_shared(data_dir):
    async with gateway_and_sim(data_dir, accounts=2, websocket=False, real_hosts=True) as (sim, gateway, client):
        sim.script({"times": 1, "reply": {"set_cookies": True}})  # this answer also solves a challenge
        response = await client.post("/v1/chat/completions", json=chat("first", user="jar"))
        assert response.status_code == 200, response.text
        first = sim.requests_to("/codex/responses", "POST")[-1]
        assert first.header("host") == "chatgpt.com" and sni_of(first) == "chatgpt.com"
        assert cookie_of(first) == {}
        chosen = accounts_asked(sim)[-1]
        stored = jar_of(gateway, chosen)
        assert sorted(stored) == ["__cf_bm", "cf_clearance"]
        record = await gateway.services.store.get(pool_account(gateway, chosen).id)
        assert {c["name"]: c["value"] for c in record.cookies} == stored  # persisted

        response = await client.post("/v1/chat/completions", json=chat("second", user="jar"))
        assert response.status_code == 200
        second = sim.requests_to("/codex/responses", "POST")[-1]
        assert second.header("chatgpt-account-id") == chosen
        assert cookie_of(second) == stored  # replayed; the live __cf_bm is not replaced
        assert jar_of(gateway, chosen) == stored
        # where reqwest puts it: its cookie layer runs inside the decompression layer (0.171.0's accept-encoding),
        # and hyper adds host and content-length after both
        tail = ["cookie", "host", "content-length"]
        if gateway.services.connector.identity.accept_encoding:
            tail.insert(0, "accept-encoding")
        assert second.header_names()[-len(tail):] == tail
        # the WebSocket attempts (refused with 426) carried no cookie, though they went to the real host
        upgrades = sim.requests_to("/codex/responses", "GET")
        assert upgrades and all(r.header("cookie") is None and r.header("host") == "chatgpt.com" for r in upgrades)

        # the other account starts without cookies and gets its own, never this account's
        other = next(a for a in gateway.services.pool.accounts() if a.account_id != chosen).account_id
        sim.script({"match": {"account_id": chosen}, "reply": {"rate_limit": {"resets_in_seconds": 60}}})
        for text in ("third", "fourth"):
            response = await client.post("/v1/chat/completions", json=chat(text, user="jar"))
            assert response.status_code == 200
        third, fourth = sim.requests_to("/codex/responses", "POST")[-2:]
        assert third.header("chatgpt-account-id") == fourth.header("chatgpt-account-id") == other
        assert cookie_of(third) == {}
        own = jar_of(gateway, other)
        assert list(own) == ["__cf_bm"] and own["__cf_bm"] != stored["__cf_bm"]
        assert cookie_of(fourth) == own
        assert jar_of(gateway, chosen) == stored  # untouched by the other account's answers


async def test_cookies_of_a_host_that_is_not_the_backend_are_not_kept(data_dir):
    # the plain sim setup: the backend is https://127.0.0.1:PORT, whose cookies the jar refuses
    async with running_sim(accounts=1, websocket=False) as sim:
        async with gateway_on_sim(data_dir, sim, clock=sim.clock.now) as (gateway, url):
            async with httpx.AsyncClient(base_url=url, timeout=30,
                                         headers={"authorization": f"Bearer {api_key(gateway)}"}) as client:
                sim.script({"reply": {"set_cookies": True}})
                for text in ("one", "two"):
                    response = await client.post("/v1/chat/completions", json=chat(text, user="jar"))
                    assert response.status_code == 200
                assert gateway.services.pool.accounts()[0].cookies == []
                assert all(r.header("cookie") is None for r in sim.requests_to("/codex/responses", "POST"))
