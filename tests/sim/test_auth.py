"""auth.openai.com: authorize + PKCE, token grants (JSON and form), single-use refresh, device login."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx

from codex_trio.sim import Simulator
from codex_trio.sim.tokens import AUTH_CLAIM, CLIENT_ID, decode_jwt_claims

from .helpers import auth_headers

REDIRECT = "http://127.0.0.1:1455/auth/callback"


def pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(challenge: str, **overrides: str) -> dict[str, str]:
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT,
              "code_challenge": challenge, "code_challenge_method": "S256", "state": "st4te",
              "scope": "openid profile email offline_access api.connectors.read api.connectors.invoke",
              "id_token_add_organizations": "true", "codex_cli_simplified_flow": "true", "originator": "codex_cli_rs"}
    params.update(overrides)
    return params


async def login(auth_client: httpx.AsyncClient, verifier: str, challenge: str) -> httpx.Response:
    r = await auth_client.get("/oauth/authorize", params=authorize_params(challenge))
    assert r.status_code == 302
    location = urlsplit(r.headers["location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT and query["state"] == ["st4te"]
    return await auth_client.post("/oauth/token", data={
        "grant_type": "authorization_code", "client_id": CLIENT_ID, "code": query["code"][0],
        "redirect_uri": REDIRECT, "code_verifier": verifier})


async def test_browser_login_issues_real_claim_layout(sim: Simulator, auth_client: httpx.AsyncClient,
                                                      client: httpx.AsyncClient) -> None:
    target = sim.accounts[2]
    sim.login_as(target.account_id)
    verifier, challenge = pkce()
    r = await login(auth_client, verifier, challenge)
    assert r.status_code == 200
    tokens = r.json()
    assert list(tokens) == ["id_token", "access_token", "refresh_token", "token_type", "expires_in", "scope"]
    access = decode_jwt_claims(tokens["access_token"])
    assert access[AUTH_CLAIM]["chatgpt_account_id"] == target.account_id
    assert access[AUTH_CLAIM]["chatgpt_plan_type"] == "pro"
    assert access[AUTH_CLAIM]["chatgpt_user_id"] == target.user_id
    assert access["exp"] - access["iat"] == 3600 and tokens["expires_in"] == 3600
    identity = decode_jwt_claims(tokens["id_token"])
    assert identity["email"] == target.email and identity[AUTH_CLAIM]["chatgpt_account_id"] == target.account_id
    header = base64.urlsafe_b64decode(tokens["access_token"].split(".")[0] + "==")
    assert b'"alg":"RS256"' in header and b'"typ":"JWT"' in header
    r = await client.get("/wham/usage", headers={"authorization": "Bearer " + tokens["access_token"],
                                                 "chatgpt-account-id": target.account_id})
    assert r.status_code == 200 and r.json()["plan_type"] == "pro"
    exchange = await auth_client.post("/oauth/token", data={
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "client_id": CLIENT_ID,
        "requested_token": "openai-api-key", "subject_token": tokens["id_token"],
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token"})
    assert exchange.status_code == 200 and exchange.json()["access_token"].startswith("sk-")


async def test_pkce_failures(sim: Simulator, auth_client: httpx.AsyncClient) -> None:
    verifier, challenge = pkce()
    for overrides in ({"code_challenge_method": "plain"}, {"code_challenge": "short"},
                      {"client_id": "app_other"}, {"redirect_uri": "https://evil.example/cb"}, {"state": ""}):
        r = await auth_client.get("/oauth/authorize", params=authorize_params(challenge, **overrides))
        assert r.status_code == 400, overrides
    r = await auth_client.get("/oauth/authorize", params=authorize_params(challenge))
    code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
    wrong_verifier, _ = pkce()
    bad = await auth_client.post("/oauth/token", data={"grant_type": "authorization_code", "client_id": CLIENT_ID,
                                                       "code": code, "redirect_uri": REDIRECT,
                                                       "code_verifier": wrong_verifier})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    # the code died with the failed attempt; the right verifier no longer helps
    again = await auth_client.post("/oauth/token", data={"grant_type": "authorization_code", "client_id": CLIENT_ID,
                                                         "code": code, "redirect_uri": REDIRECT,
                                                         "code_verifier": verifier})
    assert again.status_code == 400
    r = await login(auth_client, verifier, challenge)
    assert r.status_code == 200


async def test_refresh_tokens_are_single_use(sim: Simulator, auth_client: httpx.AsyncClient,
                                             client: httpx.AsyncClient) -> None:
    account = sim.accounts[0]
    old_refresh, old_access = account.refresh_token, account.access_token
    body = {"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_reason": "proactive_expiry",
            "refresh_token": old_refresh}
    r = await auth_client.post("/oauth/token", json=body)
    assert r.status_code == 200
    fresh = r.json()
    assert fresh["refresh_token"] != old_refresh and account.refresh_token == fresh["refresh_token"]
    reused = await auth_client.post("/oauth/token", json=body)
    assert reused.status_code == 401 and reused.json()["error"]["code"] == "refresh_token_reused"
    # form bodies work too, and rotate again
    r = await auth_client.post("/oauth/token", data={"grant_type": "refresh_token", "client_id": CLIENT_ID,
                                                     "refresh_token": fresh["refresh_token"]})
    assert r.status_code == 200
    unknown = await auth_client.post("/oauth/token", json={**body, "refresh_token": "oaistb_rt_unknown"})
    assert unknown.status_code == 401 and unknown.json()["error"]["code"] == "refresh_token_invalidated"
    # access tokens from before the refresh keep working until they expire
    r = await client.get("/wham/usage", headers={"authorization": "Bearer " + old_access,
                                                 "chatgpt-account-id": account.account_id})
    assert r.status_code == 200
    recorded = sim.requests_to("/oauth/token")[0]
    assert recorded.body == body


async def test_expired_token_then_refresh_recovers(sim: Simulator, auth_client: httpx.AsyncClient,
                                                   client: httpx.AsyncClient) -> None:
    account = sim.accounts[0]
    sim.clock.advance(3600)
    assert (await client.get("/wham/usage", headers=auth_headers(account))).status_code == 401
    r = await auth_client.post("/oauth/token", json={"client_id": CLIENT_ID, "grant_type": "refresh_token",
                                                     "refresh_token": account.refresh_token})
    assert r.status_code == 200
    assert (await client.get("/wham/usage", headers=auth_headers(account))).status_code == 200


async def test_device_code_login(sim: Simulator, auth_client: httpx.AsyncClient) -> None:
    r = await auth_client.post("/api/accounts/deviceauth/usercode", json={"client_id": CLIENT_ID})
    grant = r.json()
    assert set(grant) == {"device_auth_id", "user_code", "interval"} and grant["interval"] == "1"
    poll = {"device_auth_id": grant["device_auth_id"], "user_code": grant["user_code"]}
    pending = await auth_client.post("/api/accounts/deviceauth/token", json=poll)
    assert pending.status_code == 403
    assert sim.approve_device(grant["user_code"], sim.accounts[1].account_id)
    done = (await auth_client.post("/api/accounts/deviceauth/token", json=poll)).json()
    assert set(done) == {"authorization_code", "code_challenge", "code_verifier"}
    challenge = base64.urlsafe_b64encode(hashlib.sha256(done["code_verifier"].encode()).digest()).rstrip(b"=")
    assert challenge.decode() == done["code_challenge"]
    r = await auth_client.post("/oauth/token", data={
        "grant_type": "authorization_code", "client_id": CLIENT_ID, "code": done["authorization_code"],
        "redirect_uri": "https://auth.openai.com/deviceauth/callback", "code_verifier": done["code_verifier"]})
    assert r.status_code == 200
    claims = decode_jwt_claims(r.json()["access_token"])
    assert claims[AUTH_CLAIM]["chatgpt_account_id"] == sim.accounts[1].account_id
    assert claims[AUTH_CLAIM]["chatgpt_plan_type"] == "free"


async def test_device_approval_through_control_api(sim: Simulator, auth_client: httpx.AsyncClient) -> None:
    grant = (await auth_client.post("/api/accounts/deviceauth/usercode", json={"client_id": CLIENT_ID})).json()
    r = await auth_client.post("/_sim/device/approve", json={"user_code": grant["user_code"]})
    assert r.status_code == 200
    poll = {"device_auth_id": grant["device_auth_id"], "user_code": grant["user_code"]}
    assert (await auth_client.post("/api/accounts/deviceauth/token", json=poll)).status_code == 200
    sim.clock.advance(901)
    assert (await auth_client.post("/api/accounts/deviceauth/token", json=poll)).json() == {"error": "expired_token"}


async def test_revoke_kills_refresh_and_access_tokens(sim: Simulator, auth_client: httpx.AsyncClient,
                                                      client: httpx.AsyncClient) -> None:
    account = sim.accounts[0]
    r = await auth_client.post("/oauth/revoke", json={"token": account.refresh_token,
                                                      "token_type_hint": "refresh_token", "client_id": CLIENT_ID})
    assert r.status_code == 200
    refresh = await auth_client.post("/oauth/token", json={"client_id": CLIENT_ID, "grant_type": "refresh_token",
                                                           "refresh_token": account.refresh_token})
    assert refresh.status_code == 401 and refresh.json()["error"]["code"] == "refresh_token_invalidated"
    await auth_client.post("/oauth/revoke", data={"token": account.access_token, "client_id": CLIENT_ID})
    assert (await client.get("/wham/usage", headers=auth_headers(account))).status_code == 401
    assert (await auth_client.post("/oauth/revoke", json={})).status_code == 400
