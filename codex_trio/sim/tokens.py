"""Token minting and the issuer's bookkeeping (pure logic, clock passed in).

JWTs have the layout of the real ones (header `{"alg":"RS256","kid":…,"typ":"JWT"}`, claims as in
spec/upstream.md §2.5 and the capture's fake login) with a random signature: nobody verifies it, the
issuer recognises its own tokens by lookup. Refresh tokens are single-use: using one retires it, and a
second use is answered with the real `refresh_token_reused` error.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass, field

import orjson

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
ISSUER = "https://auth.openai.com"
AUTH_CLAIM = "https://api.openai.com/auth"
PROFILE_CLAIM = "https://api.openai.com/profile"
_KID = "sim-" + "b1f0c2"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_jwt(claims: dict) -> str:
    header = {"alg": "RS256", "kid": _KID, "typ": "JWT"}
    return ".".join((b64url(orjson.dumps(header)), b64url(orjson.dumps(claims)), b64url(secrets.token_bytes(256))))


def decode_jwt_claims(token: str) -> dict:
    """The payload of a JWT, unverified (as every client of this backend reads it)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT")
    claims = orjson.loads(b64url_decode(parts[1]))
    if not isinstance(claims, dict):
        raise ValueError("JWT payload is not an object")
    return claims


@dataclass(slots=True)
class Identity:
    """Who a token speaks for."""

    account_id: str
    user_id: str
    email: str
    plan: str


@dataclass(slots=True)
class TokenSet:
    id_token: str
    access_token: str
    refresh_token: str
    expires_at: float
    expires_in: int


@dataclass(slots=True)
class _AccessGrant:
    account_id: str
    expires_at: float


@dataclass
class TokenIssuer:
    """Issues and recognises tokens. `ttl_seconds` is the access-token lifetime (configurable for expiry tests)."""

    ttl_seconds: int = 864000
    _access: dict[str, _AccessGrant] = field(default_factory=dict)
    _refresh: dict[str, str] = field(default_factory=dict)  # live refresh token -> account id
    _used_refresh: set[str] = field(default_factory=set)
    _id_tokens: dict[str, str] = field(default_factory=dict)  # id token -> account id

    def issue(self, who: Identity, now: float) -> TokenSet:
        iat = int(now)
        exp = iat + self.ttl_seconds
        auth = {
            "chatgpt_account_id": who.account_id,
            "chatgpt_plan_type": who.plan,
            "chatgpt_user_id": who.user_id,
            "user_id": who.user_id,
        }
        access_claims = {
            "aud": ["https://api.openai.com/v1"],
            "client_id": CLIENT_ID,
            "exp": exp,
            "iat": iat,
            "iss": ISSUER,
            "jti": str(uuid.uuid4()),
            "nbf": iat,
            "scp": ["openid", "profile", "email", "offline_access"],
            "sub": "auth0|" + who.user_id,
            AUTH_CLAIM: auth,
            PROFILE_CLAIM: {"email": who.email, "email_verified": True},
        }
        id_claims = {
            "aud": [CLIENT_ID],
            "auth_provider": "password",
            "email": who.email,
            "email_verified": True,
            "exp": iat + 3600,
            "iat": iat,
            "iss": ISSUER,
            "sub": "auth0|" + who.user_id,
            AUTH_CLAIM: {
                **auth,
                "organization_id": "org-" + who.account_id.replace("-", "")[:24],
                "project_id": "",
                "completed_platform_onboarding": False,
                "is_org_owner": True,
            },
        }
        access = encode_jwt(access_claims)
        id_token = encode_jwt(id_claims)
        refresh = "oaistb_rt_" + secrets.token_urlsafe(32)
        self._access[access] = _AccessGrant(who.account_id, float(exp))
        self._refresh[refresh] = who.account_id
        self._id_tokens[id_token] = who.account_id
        return TokenSet(id_token, access, refresh, float(exp), self.ttl_seconds)

    def check_access(self, token: str, now: float) -> tuple[str | None, str | None]:
        """(account id, None) for a live token, else (None, "token_invalid" | "token_expired")."""
        grant = self._access.get(token)
        if grant is None:
            return None, "token_invalid"
        if now >= grant.expires_at:
            return None, "token_expired"
        return grant.account_id, None

    def use_refresh(self, token: str) -> tuple[str | None, str | None]:
        """Retire a refresh token: (account id, None), or (None, "refresh_token_reused" | "invalid_grant")."""
        account_id = self._refresh.pop(token, None)
        if account_id is not None:
            self._used_refresh.add(token)
            return account_id, None
        if token in self._used_refresh:
            return None, "refresh_token_reused"
        return None, "invalid_grant"

    def account_of_id_token(self, token: str) -> str | None:
        return self._id_tokens.get(token)

    def revoke(self, token: str) -> bool:
        """Kill an access or refresh token (RFC 7009 revocation); False when it was not live."""
        if self._access.pop(token, None) is not None:
            return True
        return self._refresh.pop(token, None) is not None
