"""Each account leaves through its own route, checked at the far end: a real HTTP CONNECT proxy and a real SOCKS5
proxy (tests/proxies/local_proxies.py) each open their connections from their own loopback address, and the
simulator records the address every request came from. Turns (WebSocket), HTTPS calls (usage), token refreshes
and cookie-carrying requests of an account all arrive from its proxy; a direct account from 127.0.0.1."""

from __future__ import annotations

from collections import defaultdict

import httpx
import pytest

from codex_trio.sim import running_sim
from tests.conftest import api_key, gateway_on_sim

from ..e2e.dispatch_helpers import chat
from .local_proxies import local_proxy

HTTP_EXIT, SOCKS_EXIT, DIRECT_EXIT = "127.0.0.2", "127.0.0.3", "127.0.0.1"


def peer(record) -> str | None:
    return record.connection.peer if record.connection else None


def peers_by_account(records, accounts_by_refresh_token: dict[str, str]) -> dict[str, set[str]]:
    """ChatGPT account id → the addresses its requests came from (token refreshes matched by refresh token)."""
    seen: dict[str, set[str]] = defaultdict(set)
    for record in records:
        account = record.header("chatgpt-account-id")
        if account is None and record.path.endswith("/oauth/token") and isinstance(record.body, dict):
            account = accounts_by_refresh_token.get(record.body.get("refresh_token"))
        if account is not None:
            seen[account].add(peer(record))
    return seen


@pytest.mark.parametrize("websocket", [True, False], ids=["websocket-turns", "https-turns"])
async def test_each_account_goes_through_its_route_for_every_kind_of_call(data_dir, websocket):
    async with running_sim(accounts=3, websocket=websocket) as sim, \
            local_proxy("http", HTTP_EXIT, resolve=sim.urls.resolve) as http_proxy, \
            local_proxy("socks5", SOCKS_EXIT, resolve=sim.urls.resolve) as socks_proxy:
        local = {"auth": {"rotation_strategy": "round_robin"}, "proxies": {"check_interval_seconds": 0}}
        async with gateway_on_sim(data_dir, sim, local=local, clock=sim.clock.now, real_hosts=True) as (gateway, url):
            async with httpx.AsyncClient(base_url=url, timeout=60,
                                         headers={"authorization": f"Bearer {api_key(gateway)}"}) as client:
                ids = {a.account_id: a.id for a in await gateway.services.store.list()}
                first, second, third = sorted(ids)
                pinned = (await client.post("/admin/proxies", json={"url": http_proxy.url})).json()
                await client.post("/admin/proxies", json={"url": socks_proxy.url, "group": "socks"})
                for account, route in ((first, pinned["id"]), (second, "auto:socks"), (third, "direct")):
                    answer = await client.post("/admin/proxies/assign", json={"account_id": ids[account],
                                                                               "proxy": route})
                    assert answer.status_code == 200, answer.text
                routes = {r["account_id"]: r for r in (await client.get("/admin/proxies/assignments")).json()[
                    "assignments"]}
                assert routes[ids[second]]["mode"] == "auto" and routes[ids[second]]["paused"] is False
                assert "pw-123" not in str(routes)

                start = len(sim.requests)
                sim.script({"reply": {"set_cookies": True}})
                for n in range(6):  # round robin: every account serves turns
                    response = await client.post("/v1/chat/completions", json=chat(f"turn {n}", user=f"u{n}"))
                    assert response.status_code == 200, response.text
                refresh_tokens = {a.tokens.refresh_token: a.account_id for a in await gateway.services.store.list()}
                for account_id in ids.values():
                    assert (await client.get(f"/auth/accounts/{account_id}/quota")).status_code == 200
                    refreshed = await client.post(f"/auth/accounts/{account_id}/refresh")
                    assert refreshed.json()["success"] is True, refreshed.text

                records = sim.requests[start:]
                kinds = {(r.method, r.path.rsplit("/", 1)[-1]) for r in records}
                turn = ("GET", "responses") if websocket else ("POST", "responses")
                assert {turn, ("GET", "usage"), ("POST", "token")} <= kinds, kinds
                assert peers_by_account(records, refresh_tokens) == {
                    first: {HTTP_EXIT}, second: {SOCKS_EXIT}, third: {DIRECT_EXIT}}
                # cookies the backend set went back on later HTTPS calls, through the same proxy
                with_cookies = [r for r in records if r.header("cookie")]
                assert bool(with_cookies) is not websocket  # the WebSocket carries none (codex-rs skips wss)
                assert all(
                    peer(r) == {first: HTTP_EXIT, second: SOCKS_EXIT, third: DIRECT_EXIT}[r.header(
                        "chatgpt-account-id")] for r in with_cookies)
                assert {t.user for t in http_proxy.tunnels} == {"tester"} and http_proxy.refused == 0
                assert socks_proxy.tunnels and socks_proxy.refused == 0
