"""End-to-end: every login flow and the refresh race against the simulator's issuer (its documented
endpoints: /oauth/authorize, /oauth/token JSON and form, /api/accounts/deviceauth/usercode and /token).
The issuer base URL comes from the `sim_issuer` fixture."""

from __future__ import annotations


import httpx
import pytest
import trio

from codex_trio.accounts import oauth
from codex_trio.accounts.login import LoginServer, OAuthClient
from codex_trio.accounts.model import AccountStatus
from codex_trio.accounts.pool import AccountPool, PoolConfig
from codex_trio.accounts.refresh import TokenRefresher
from codex_trio.accounts.service import AccountService
from codex_trio.accounts.store import AccountStore

from .conftest import HttpxOAuthHttp
from .helpers import fixture_identity

async def build(tmp_path, sim, **pool_config):
    http = HttpxOAuthHttp(verify=sim.ssl_context())
    base = sim.urls.auth_base
    store = await AccountStore.open(tmp_path / "accounts.db", clock=sim.clock.now)
    refresher = TokenRefresher(store, http, identity=fixture_identity(), token_url=oauth.token_url(base),
                               clock=sim.clock.now)
    pool = AccountPool(store, refresher, PoolConfig(**pool_config), clock=sim.clock.now)
    service = AccountService(store, pool, refresher, http, token_url=oauth.token_url(base), clock=sim.clock.now)
    return http, OAuthClient(http, identity=fixture_identity(), issuer=base), service


async def test_browser_login_through_the_local_callback_server(tmp_path, sim_issuer):
    sim = sim_issuer
    http, client, service = await build(tmp_path, sim)
    sim.login_as(sim.accounts[0].account_id)
    server = await LoginServer.bind(client, ports=(0,))
    result = {}

    async def serve():
        result["grant"] = await server.serve()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        async with httpx.AsyncClient(verify=sim.ssl_context(), follow_redirects=True) as browser:
            page = await browser.get(server.login.url)  # authorize → our callback → /success
        assert page.status_code == 200 and b"Signed in" in page.content
    await server.aclose()
    out = await service.add_from_grant(result["grant"])
    assert out["account"]["account_id"] == sim.accounts[0].account_id
    token_calls = sim.requests_to("/oauth/token", "POST")
    assert [dict(r.body if isinstance(r.body, dict) else r.body)["grant_type"] for r in token_calls] == [
        "authorization_code", "urn:ietf:params:oauth:grant-type:token-exchange"]
    await http.aclose()


async def test_paste_the_callback_url(tmp_path, sim_issuer):
    sim = sim_issuer
    http, client, service = await build(tmp_path, sim)
    sim.login_as(sim.accounts[0].account_id)
    login = client.begin_browser()  # port 1455 is never bound: the user pastes the address instead
    async with httpx.AsyncClient(verify=sim.ssl_context()) as browser:
        redirect = await browser.get(login.url)
    assert redirect.status_code == 302
    grant = await client.complete_pasted(login, redirect.headers["location"])
    out = await service.add_from_grant(grant, label="pasted")
    assert out["account"]["label"] == "pasted"
    await http.aclose()


@pytest.mark.parametrize("sim_issuer", [{"device_poll_interval": "0.05"}], indirect=True)
async def test_device_code_login(tmp_path, sim_issuer):
    sim = sim_issuer
    http, client, service = await build(tmp_path, sim)
    code = await client.device_begin()
    assert code.verification_url == sim.urls.auth_base + "/codex/device"

    async def approve():
        await trio.sleep(0.2)
        assert sim.approve_device(code.user_code, sim.accounts[0].account_id)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(approve)
        grant = await client.device_complete(code, timeout=10)
    out = await service.add_from_grant(grant)
    assert out["account"]["account_id"] == sim.accounts[0].account_id
    assert len(sim.requests_to("/deviceauth/token", "POST")) >= 2  # pending at least once
    await http.aclose()


@pytest.mark.parametrize("sim_issuer", [{"accounts": 100, "token_ttl_seconds": 3600}], indirect=True)
async def test_refresh_race_one_refresh_per_account_no_reuse(tmp_path, sim_issuer):
    """100 accounts × 50 concurrent requests at token expiry: exactly one refresh per account and no
    refresh token sent twice."""
    sim = sim_issuer
    http, client, service = await build(tmp_path, sim, max_concurrent_per_account=50)
    for account in sim.accounts:
        await service.add_tokens(access_token=account.access_token, refresh_token=account.refresh_token,
                                 id_token=account.id_token)
    before = len(sim.requests_to("/oauth/token", "POST"))
    sim.clock.advance(3600)
    served: dict[str, int] = {}

    async def request(model_conversation: int) -> None:
        async with service.pool.acquire(conversation_id=f"c{model_conversation}") as lease:
            served[lease.account.account_id] = served.get(lease.account.account_id, 0) + 1
            await lease.report_success()

    async with trio.open_nursery() as nursery:
        for i in range(100 * 50):
            nursery.start_soon(request, i)
    refreshes = sim.requests_to("/oauth/token", "POST")[before:]
    tokens = [dict(r.body)["refresh_token"] for r in refreshes]
    assert len(refreshes) == 100 and len(set(tokens)) == 100
    assert all(r.status == 200 for r in refreshes)
    listed = (await service.list())["accounts"]
    assert {a["status"] for a in listed} == {str(AccountStatus.ACTIVE)}
    assert all(a["expires_at"] > sim.clock.now() for a in listed)
    await http.aclose()
