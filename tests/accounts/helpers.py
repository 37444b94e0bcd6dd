"""Test helpers: JWT minting in the real layout and an in-process OAuth issuer with single-use refresh
tokens (the same rules as the simulator's /oauth/token), reachable through the OAuthHttp interface."""

from __future__ import annotations

import base64
import itertools
import secrets
from urllib.parse import parse_qsl
from dataclasses import dataclass, field
from typing import Callable

import orjson
import trio

from codex_trio.accounts import oauth
from codex_trio.accounts.http import DeliveryUnknown, HttpResponse, NotDelivered
from codex_trio.accounts.jwt import AUTH_CLAIM, PROFILE_CLAIM
from codex_trio.upstream.identity import Identity, Platform, load_fingerprint


def fixture_identity(release: str = "0.169.0") -> Identity:
    """The client of the captures: codex exec `release` (0.169.0: tests/fixtures/chatgpt-mode; 0.171.0:
    chatgpt-mode-0.171.0) on Debian 12, x86_64, in xterm."""
    return Identity.from_config(load_fingerprint(), "codex-exec", release=release,
                                platform=Platform("Debian", "12.0.0", "x86_64", "xterm"))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: dict) -> str:
    header = {"alg": "RS256", "kid": "test", "typ": "JWT"}
    return ".".join((b64(orjson.dumps(header)), b64(orjson.dumps(claims)), b64(secrets.token_bytes(32))))


def access_token(account_id: str, exp: float, *, plan: str = "plus", user_id: str = "user-1",
                 email: str = "a@example.com") -> str:
    return make_jwt({
        "exp": int(exp), "iat": int(exp) - 864000, "iss": "https://auth.openai.com",
        AUTH_CLAIM: {"chatgpt_account_id": account_id, "chatgpt_plan_type": plan, "chatgpt_user_id": user_id,
                     "user_id": user_id},
        PROFILE_CLAIM: {"email": email},
    })


@dataclass
class FakeIssuer:
    """Implements OAuthHttp in-process. Refresh tokens are single-use: a second use → 401
    refresh_token_reused. `script` can inject failures for the next calls."""

    clock: Callable[[], float]
    ttl: float = 864000
    live: dict[str, tuple[str, str]] = field(default_factory=dict)  # refresh token -> (account_id, plan)
    used: set[str] = field(default_factory=set)
    refresh_calls: list[dict] = field(default_factory=list)
    headers_seen: list[list[tuple[str, str]]] = field(default_factory=list)
    script: list[str] = field(default_factory=list)  # "not_delivered" | "lost" | "500" per upcoming call
    delay: float = 0.0
    _n: itertools.count = field(default_factory=itertools.count)

    def mint(self, account_id: str, plan: str = "plus", exp: float | None = None) -> dict:
        rt = f"rt_{account_id}_{next(self._n)}_{secrets.token_hex(4)}"
        self.live[rt] = (account_id, plan)
        exp = self.clock() + self.ttl if exp is None else exp
        return {"access_token": access_token(account_id, exp, plan=plan, user_id="u-" + account_id),
                "refresh_token": rt,
                "id_token": make_jwt({"email": f"{account_id}@example.com",
                                      AUTH_CLAIM: {"chatgpt_account_id": account_id, "chatgpt_plan_type": plan,
                                                   "chatgpt_user_id": "u-" + account_id}})}

    # login side: authorization codes (code -> (challenge, redirect_uri, account_id)) and device logins
    codes: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    device_pending: int = 1
    login_calls: list[tuple[str, bytes]] = field(default_factory=list)

    def authorize(self, challenge: str, redirect_uri: str, account_id: str) -> str:
        code = "code_" + secrets.token_hex(6)
        self.codes[code] = (challenge, redirect_uri, account_id)
        return code

    def _login(self, url: str, body: bytes) -> HttpResponse:
        self.login_calls.append((url, body))
        if url.endswith("/deviceauth/usercode"):
            return HttpResponse(200, b'{"device_auth_id":"deviceauth_1","user_code":"ABCD-EFGH","interval":"1"}')
        if url.endswith("/deviceauth/token"):
            if self.device_pending > 0:
                self.device_pending -= 1
                return HttpResponse(403, b'{"error":"authorization_pending"}')
            verifier = "v" * 86
            code = self.authorize(oauth.challenge_for(verifier), oauth.device_redirect_uri(), "acc-device")
            return HttpResponse(200, orjson.dumps({"authorization_code": code, "code_verifier": verifier,
                                                   "code_challenge": oauth.challenge_for(verifier)}))
        form = dict(parse_qsl(body.decode()))
        if form.get("grant_type") == "urn:ietf:params:oauth:grant-type:token-exchange":
            return HttpResponse(200, b'{"access_token":"sk-test","token_type":"Bearer"}')
        entry = self.codes.pop(form.get("code", ""), None)
        if entry is None or entry[1] != form.get("redirect_uri") \
                or oauth.challenge_for(form.get("code_verifier", "")) != entry[0]:
            return HttpResponse(400, b'{"error":"invalid_grant","error_description":"bad code or verifier"}')
        return HttpResponse(200, orjson.dumps({**self.mint(entry[2]), "token_type": "Bearer", "expires_in": 1}))

    async def post(self, url: str, headers: list[tuple[str, str]], body: bytes) -> HttpResponse:
        self.headers_seen.append(headers)
        if "/deviceauth/" in url or ("application/x-www-form-urlencoded" in dict(headers).get("content-type", "")):
            return self._login(url, body)
        if self.delay:
            await trio.sleep(self.delay)
        action = self.script.pop(0) if self.script else None
        if action == "not_delivered":
            raise NotDelivered("connection refused")
        if action == "500":
            return HttpResponse(500, b'{"error":{"code":"server_error","message":"boom"}}')
        data = orjson.loads(body)
        self.refresh_calls.append(data)
        rt = data["refresh_token"]
        if rt in self.used:
            answer = HttpResponse(401, b'{"error":{"code":"refresh_token_reused","message":"already used"}}')
        elif rt not in self.live:
            answer = HttpResponse(400, b'{"error":"invalid_grant","error_description":"unknown"}')
        else:
            account_id, plan = self.live.pop(rt)
            self.used.add(rt)
            answer = HttpResponse(200, orjson.dumps({**self.mint(account_id, plan), "token_type": "Bearer",
                                                     "expires_in": int(self.ttl)}))
        if action == "lost":
            raise DeliveryUnknown("connection reset after the request was sent")
        return answer

    async def get(self, url: str, headers: list[tuple[str, str]]) -> HttpResponse:
        raise AssertionError(f"the in-process issuer answers only POST /oauth/token, not GET {url}")


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


REFRESH_URL = oauth.token_url()
