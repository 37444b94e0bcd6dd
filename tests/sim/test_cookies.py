"""The simulator answers like Cloudflare in front of chatgpt.com: every backend answer to a request without a live
`__cf_bm` sets one (30 minutes, for .chatgpt.com); a request that sends the live one gets none."""

from __future__ import annotations

import httpx

from codex_trio.sim import Simulator

from .helpers import auth_headers, turn_body


def bot_cookies(response: httpx.Response) -> list[str]:
    return [v for v in response.headers.get_list("set-cookie") if v.startswith("__cf_bm=")]


async def test_every_backend_path_sets_a_bot_management_cookie(sim: Simulator, client: httpx.AsyncClient):
    account = sim.accounts[0]
    headers = auth_headers(account)
    answers = [await client.get("/wham/usage", headers=headers),
               await client.get("/codex/models", params={"client_version": "0.169.0"}, headers=headers),
               await client.get("/wham/accounts/check", headers=headers),
               await client.post("/codex/responses", json=turn_body(), headers=headers),
               await client.get("/wham/usage")]  # a refusal (401) comes through the edge too
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 401]
    for answer in answers:
        (cookie,) = bot_cookies(answer)
        assert "domain=.chatgpt.com" in cookie and "Secure" in cookie and "HttpOnly" in cookie


async def test_a_live_cookie_is_not_replaced_and_an_expired_one_is(sim: Simulator, client: httpx.AsyncClient):
    headers = auth_headers(sim.accounts[0])
    first = await client.get("/wham/usage", headers=headers)
    value = bot_cookies(first)[0].split(";", 1)[0]
    again = await client.get("/wham/usage", headers={**headers, "cookie": value})
    assert bot_cookies(again) == []
    forged = await client.get("/wham/usage", headers={**headers, "cookie": "__cf_bm=made-up"})
    assert len(bot_cookies(forged)) == 1
    sim.clock.advance(31 * 60)
    late = await client.get("/wham/usage", headers={**headers, "cookie": value})
    assert len(bot_cookies(late)) == 1 and not bot_cookies(late)[0].startswith(value + ";")
