"""The `resolve` option: host names pinned to the simulator's address. The socket goes there; the ClientHello's
server name, the certificate check and Host keep the real name, for both HTTPS profiles and the WebSocket."""

from __future__ import annotations

import pytest

from codex_trio.native import Client, ProtocolError
from codex_trio.sim import running_sim
from tests.e2e.dispatch_helpers import sni_of


@pytest.mark.parametrize("profile", ["openssl", "rustls"])
async def test_https_reaches_the_pinned_address_under_the_real_name(profile):
    async with running_sim(accounts=1) as sim:
        client = Client(profile=profile, ca_file=sim.ca_file, resolve=sim.urls.resolve)
        response = await client.request("GET", "https://chatgpt.com/backend-api/wham/usage", [("accept", "*/*")])
        assert response.status == 401  # the sim's own answer to a request without a token
        record = sim.requests_to("/wham/usage")[-1]
        assert (record.header("host") or record.header(":authority")) == "chatgpt.com"
        assert sni_of(record) == "chatgpt.com"
        issuer = await client.request("GET", "https://auth.openai.com/.well-known/openid-configuration", [])
        assert issuer.status in (200, 404)
        assert (sim.requests[-1].header("host") or sim.requests[-1].header(":authority")) == "auth.openai.com"


async def test_the_websocket_connects_to_the_pinned_address():
    async with running_sim(accounts=1) as sim:
        account = sim.accounts[0]
        client = Client(profile="rustls", ca_file=sim.ca_file, resolve=sim.urls.resolve)
        headers = [("authorization", f"Bearer {account.access_token}"), ("chatgpt-account-id", account.account_id),
                   ("openai-beta", "responses_websockets=2026-02-06")]
        ws = await client.websocket("wss://chatgpt.com/backend-api/codex/responses", headers)
        await ws.close()
        upgrade = sim.requests_to("/codex/responses", "GET")[-1]
        assert upgrade.status == 101 and upgrade.header("host") == "chatgpt.com" and sni_of(upgrade) == "chatgpt.com"


async def test_an_address_without_a_port_is_refused():
    with pytest.raises(ProtocolError, match="not an IP address with a port"):
        Client(profile="rustls", resolve={"chatgpt.com": "127.0.0.1"})
