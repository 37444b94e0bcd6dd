import json
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import trio

from codex_trio.accounts.login import LoginError, LoginServer, OAuthClient
from codex_trio.upstream import body as bodies

from tests.conftest import FIXTURES

from .helpers import FakeClock, FakeIssuer, fixture_identity

IDENTITY = fixture_identity()


def params(url: str) -> dict:
    return dict(parse_qsl(urlsplit(url).query))


def test_paste_path_validates_state_and_errors():
    client = OAuthClient(FakeIssuer(FakeClock()), identity=IDENTITY)
    login = client.begin_browser()
    assert login.redirect_uri == "http://127.0.0.1:1455/auth/callback"
    p = params(login.url)
    assert p["state"] == login.state and p["code_challenge"] == login.pkce.challenge
    good = f"http://127.0.0.1:1455/auth/callback?code=abc&state={login.state}"
    assert client.code_from_callback(login, good) == "abc"
    assert client.code_from_callback(login, f"  code=abc&state={login.state}\n") == "abc"
    with pytest.raises(LoginError, match="state does not match"):
        client.code_from_callback(login, "http://127.0.0.1:1455/auth/callback?code=abc&state=other")
    with pytest.raises(LoginError, match="not enabled"):
        client.code_from_callback(login, "/auth/callback?error=access_denied&error_description="
                                         "missing_codex_entitlement&state=" + login.state)
    with pytest.raises(LoginError, match="no `code`"):
        client.code_from_callback(login, "?state=" + login.state)


async def test_paste_login_exchanges_the_code():
    issuer = FakeIssuer(FakeClock())
    client = OAuthClient(issuer, identity=IDENTITY)
    login = client.begin_browser()
    code = issuer.authorize(login.pkce.challenge, login.redirect_uri, "acc-7")
    grant = await client.complete_pasted(login, f"http://127.0.0.1:1455/auth/callback?code={code}&state={login.state}")
    assert grant.refresh_token in issuer.live and grant.id_token
    (url1, body1), (url2, body2) = issuer.login_calls
    assert url1 == "https://auth.openai.com/oauth/token"
    assert body1 == bodies.authorization_code_body(IDENTITY, code, login.redirect_uri, login.pkce.verifier)
    assert body2 == bodies.api_key_exchange_body(IDENTITY, grant.id_token)


async def test_login_requests_carry_the_captured_headers():
    """The code exchange, the API-key exchange and the device calls send the real client's headers (accept */*
    too, which the login's own builders once left out): the golden-tested builders are the ones that ship."""
    captured = {name: json.loads((FIXTURES / "chatgpt-mode/oauth" / name).read_text())["headers"][:-2]
                for name in ("login-authorization-code.json", "login-token-exchange-api-key.json",
                             "device-usercode.json", "device-token-poll.json")}
    issuer = FakeIssuer(FakeClock())
    client = OAuthClient(issuer, identity=IDENTITY)
    login = client.begin_browser()
    code = issuer.authorize(login.pkce.challenge, login.redirect_uri, "acc-7")
    await client.complete_pasted(login, f"?code={code}&state={login.state}")
    await client.device_complete(await client.device_begin())
    seen = [[list(h) for h in headers] for headers in issuer.headers_seen]
    (code_exchange, api_key_exchange, usercode, poll), device_exchange = seen[:4], seen[-1]  # polls until confirmed
    assert code_exchange == captured["login-authorization-code.json"]
    assert api_key_exchange == captured["login-token-exchange-api-key.json"]
    assert usercode == captured["device-usercode.json"]
    assert poll == captured["device-token-poll.json"]
    assert device_exchange == captured["login-authorization-code.json"]


async def test_callback_server_checks_state_exchanges_and_redirects():
    issuer = FakeIssuer(FakeClock())
    client = OAuthClient(issuer, identity=IDENTITY, exchange_api_key=False)
    server = await LoginServer.bind(client, ports=(0,))
    assert server.login.redirect_uri == f"http://127.0.0.1:{server.port}/auth/callback"
    code = issuer.authorize(server.login.pkce.challenge, server.login.redirect_uri, "acc-9")
    result = {}

    async def serve():
        result["grant"] = await server.serve()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient() as http:
            stale = await http.get(f"{base}/auth/callback", params={"code": code, "state": "stale"})
            assert stale.status_code == 400 and "state" in stale.text
            ok = await http.get(f"{base}/auth/callback", params={"code": code, "state": server.login.state})
            assert ok.status_code == 302
            assert ok.headers["location"] == f"{base}/success?plan_type=plus"
            page = await http.get(ok.headers["location"])
            assert page.status_code == 200 and b"Signed in" in page.content
    assert result["grant"].refresh_token in issuer.live
    await server.aclose()


async def test_callback_server_falls_back_when_the_first_port_is_busy():
    client = OAuthClient(FakeIssuer(FakeClock()), identity=IDENTITY)
    first = await LoginServer.bind(client, ports=(0,))
    second = await LoginServer.bind(client, ports=(first.port, 0))
    assert second.port != first.port and str(second.port) in second.login.redirect_uri
    with pytest.raises(LoginError, match="busy"):
        await LoginServer.bind(client, ports=(first.port,))
    await first.aclose()
    await second.aclose()


async def test_callback_server_cancel():
    client = OAuthClient(FakeIssuer(FakeClock()), identity=IDENTITY)
    server = await LoginServer.bind(client, ports=(0,))
    async with trio.open_nursery() as nursery:
        async def cancel():
            async with httpx.AsyncClient() as http:
                await http.get(f"http://127.0.0.1:{server.port}/cancel")
        nursery.start_soon(cancel)
        with pytest.raises(LoginError, match="cancelled"):
            await server.serve()
    await server.aclose()


async def test_device_login_polls_then_exchanges():
    issuer = FakeIssuer(FakeClock(), device_pending=2)
    slept = []

    async def sleep(s):
        slept.append(s)

    client = OAuthClient(issuer, identity=IDENTITY, sleep=sleep)
    code = await client.device_begin()
    assert (code.user_code, code.verification_url) == ("ABCD-EFGH", "https://auth.openai.com/codex/device")
    grant = await client.device_complete(code)
    assert slept == [1.0, 1.0] and grant.refresh_token in issuer.live
    urls = [u for u, _ in issuer.login_calls]
    assert urls == ["https://auth.openai.com/api/accounts/deviceauth/usercode"] + \
        ["https://auth.openai.com/api/accounts/deviceauth/token"] * 3 + ["https://auth.openai.com/oauth/token"]
    assert dict(parse_qsl(issuer.login_calls[-1][1].decode()))["redirect_uri"] == \
        "https://auth.openai.com/deviceauth/callback"


async def test_device_login_times_out():
    issuer = FakeIssuer(FakeClock(), device_pending=10**6)
    client = OAuthClient(issuer, identity=IDENTITY, sleep=trio.sleep)
    code = await client.device_begin()
    fast = code.__class__(code.device_auth_id, code.user_code, 0.01, code.verification_url)
    with pytest.raises(LoginError, match="not confirmed in time"):
        await client.device_complete(fast, timeout=0.2)
    assert 5 <= len(issuer.login_calls) <= 25
