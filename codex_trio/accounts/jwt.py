"""Reading the claims of the backend's JWTs (spec/upstream.md §2.5). No signature check: nobody does one."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson

AUTH_CLAIM = "https://api.openai.com/auth"
PROFILE_CLAIM = "https://api.openai.com/profile"


class NotAJwt(ValueError):
    pass


def decode_claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3 or not parts[1]:
        raise NotAJwt("not a JWT (expected three dot-separated parts)")
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = orjson.loads(payload)
    except (binascii.Error, ValueError) as exc:
        raise NotAJwt(f"JWT payload is not base64url JSON: {exc}") from None
    if not isinstance(claims, dict):
        raise NotAJwt("JWT payload is not a JSON object")
    return claims


@dataclass(frozen=True, slots=True)
class Identity:
    """What the tokens say about the login (any field may be missing)."""

    account_id: str | None = None
    plan: str | None = None
    user_id: str | None = None
    email: str | None = None
    expires_at: float | None = None  # of the access token


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def identity_from_tokens(access_token: str | None, id_token: str | None = None) -> Identity:
    """Merge the claims of the access token and the id_token; the id_token wins for identity fields."""
    found: dict[str, Any] = {}
    expires_at: float | None = None
    for token, is_access in ((access_token, True), (id_token, False)):
        if not token:
            continue
        try:
            claims = decode_claims(token)
        except NotAJwt:
            continue
        if is_access and isinstance(claims.get("exp"), (int, float)):
            expires_at = float(claims["exp"])
        auth = claims.get(AUTH_CLAIM) if isinstance(claims.get(AUTH_CLAIM), dict) else {}
        profile = claims.get(PROFILE_CLAIM) if isinstance(claims.get(PROFILE_CLAIM), dict) else {}
        candidates = {
            "account_id": _str(auth.get("chatgpt_account_id")),
            "plan": _str(auth.get("chatgpt_plan_type")),
            "user_id": _str(auth.get("chatgpt_user_id")) or _str(auth.get("user_id")),
            "email": _str(claims.get("email")) or _str(profile.get("email")),
        }
        for key, value in candidates.items():
            if value is not None:
                found[key] = value
    return Identity(expires_at=expires_at, **found)
