"""The OAuth flows of the real client (sans-IO): PKCE, the authorize URL, the issuer's addresses, and the reading
of its answers. Byte-for-byte as captured in fixtures/chatgpt-mode/oauth/ (spec/chatgpt-mode.md §7, §8 win over
upstream.md §2 where they differ: `+` for spaces, 127.0.0.1 redirect).

The requests themselves (bodies and headers of `/oauth/token` and `/api/accounts/deviceauth/*`) are upstream wire
artefacts of one identity, with its client id: they live in upstream/body.py and upstream/headers.py, next to
every other request the gateway sends, and are golden-tested there.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode

import orjson

from ..upstream.body import RefreshReason  # noqa: F401 - the one definition; the refresher's callers name it here

DEFAULT_ISSUER = "https://auth.openai.com"
SCOPES = "openid profile email offline_access api.connectors.read api.connectors.invoke"
LOGIN_ORIGINATOR = "codex_cli_rs"  # sent by `codex login` too (measured)
CALLBACK_PORTS = (1455, 1457)  # 1457 is the registered fallback
CALLBACK_PATH = "/auth/callback"
DEVICE_VERIFY_PATH = "/codex/device"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class Pkce:
    verifier: str
    challenge: str


def challenge_for(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def new_pkce() -> Pkce:
    """64 random bytes → 86-char verifier, S256 challenge (as codex-rs)."""
    verifier = _b64url(secrets.token_bytes(64))
    return Pkce(verifier, challenge_for(verifier))


def new_state() -> str:
    return _b64url(secrets.token_bytes(32))


def redirect_uri_for(port: int) -> str:
    return f"http://127.0.0.1:{port}{CALLBACK_PATH}"


def device_redirect_uri(issuer: str = DEFAULT_ISSUER) -> str:
    return issuer.rstrip("/") + "/deviceauth/callback"


def token_url(issuer: str = DEFAULT_ISSUER) -> str:
    return issuer.rstrip("/") + "/oauth/token"


def authorize_url(
    redirect_uri: str, pkce: Pkce, state: str, *, client_id: str, issuer: str = DEFAULT_ISSUER,
    originator: str = LOGIN_ORIGINATOR,
) -> str:
    query = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("code_challenge", pkce.challenge),
        ("code_challenge_method", "S256"),
        ("state", state),
        ("scope", SCOPES),
        ("id_token_add_organizations", "true"),
        ("codex_cli_simplified_flow", "true"),
        ("originator", originator),
    ]
    return issuer.rstrip("/") + "/oauth/authorize?" + urlencode(query, quote_via=quote_plus)


def device_usercode_url(issuer: str = DEFAULT_ISSUER) -> str:
    return issuer.rstrip("/") + "/api/accounts/deviceauth/usercode"


def device_token_url(issuer: str = DEFAULT_ISSUER) -> str:
    return issuer.rstrip("/") + "/api/accounts/deviceauth/token"


# ---- reading answers ----------------------------------------------------------------------------------------

PERMANENT_REFRESH_CODES = frozenset({
    "refresh_token_reused", "refresh_token_expired", "refresh_token_invalidated", "invalid_grant",
    "account_deactivated",
})
BANNED_REFRESH_CODES = frozenset({"account_deactivated"})


class OAuthError(Exception):
    """The issuer answered with an error. `permanent` = the credential is dead, a new login is needed."""

    def __init__(self, status: int, code: str, message: str, *, permanent: bool) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.status = status
        self.code = code
        self.message = message
        self.permanent = permanent


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def error_code(body: bytes) -> tuple[str, str]:
    """(code, message) from `{"error":"x","error_description":…}` or `{"error":{"code":…,"message":…}}`."""
    data = _json_object(body)
    if data is None:
        return "http_error", body[:200].decode("utf-8", "replace")
    err = data.get("error")
    if isinstance(err, dict):
        code = err.get("code") or err.get("type") or "unknown_error"
        return str(code), str(err.get("message") or "")
    if isinstance(err, str):
        return err, str(data.get("error_description") or "")
    return "unknown_error", str(data.get("detail") or data.get("message") or "")


def classify_refresh_error(status: int, body: bytes) -> OAuthError:
    """Only the issuer's explicit verdicts are permanent. Anything else (5xx, 429, an edge HTML page, an
    unknown 4xx code) means the issuer answered without issuing tokens, so the same token may be sent again."""
    code, message = error_code(body)
    return OAuthError(status, code, message, permanent=code in PERMANENT_REFRESH_CODES)


@dataclass(frozen=True, slots=True)
class TokenGrant:
    access_token: str
    refresh_token: str | None
    id_token: str | None
    expires_in: float | None


def parse_token_grant(status: int, body: bytes) -> TokenGrant:
    """A 200 token answer. Every field but access_token may be absent on refresh (keep the old one)."""
    if status != 200:
        raise classify_refresh_error(status, body)
    data = _json_object(body)
    if data is None or not isinstance(data.get("access_token"), str):
        raise OAuthError(status, "malformed_token_response", "token endpoint answered without access_token",
                         permanent=False)

    def opt(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) and value else None

    expires = data.get("expires_in")
    return TokenGrant(data["access_token"], opt("refresh_token"), opt("id_token"),
                      float(expires) if isinstance(expires, (int, float)) else None)


@dataclass(frozen=True, slots=True)
class DeviceCode:
    device_auth_id: str
    user_code: str
    interval: float
    verification_url: str


def parse_device_usercode(status: int, body: bytes, issuer: str = DEFAULT_ISSUER) -> DeviceCode:
    if status == 404:
        raise OAuthError(status, "device_login_disabled", "this issuer does not offer device-code login; "
                         "use the browser login or paste the callback URL", permanent=True)
    data = _json_object(body) if status == 200 else None
    if data is None:
        code, message = error_code(body)
        raise OAuthError(status, code, message, permanent=False)
    user_code = data.get("user_code") or data.get("usercode")
    try:
        interval = float(data.get("interval", 5))  # a string number on the wire
    except (TypeError, ValueError):
        interval = 5.0
    if not isinstance(data.get("device_auth_id"), str) or not isinstance(user_code, str):
        raise OAuthError(status, "malformed_device_code", "usercode answer lacks device_auth_id/user_code",
                         permanent=False)
    return DeviceCode(data["device_auth_id"], user_code, max(interval, 0.0),
                      issuer.rstrip("/") + DEVICE_VERIFY_PATH)


@dataclass(frozen=True, slots=True)
class DeviceAuthorization:
    authorization_code: str
    code_verifier: str


def parse_device_poll(status: int, body: bytes) -> DeviceAuthorization | None:
    """None while pending (403/404), the server-issued code + verifier when done."""
    if status in (403, 404):
        return None
    data = _json_object(body) if status == 200 else None
    if data is None:
        code, message = error_code(body)
        raise OAuthError(status, code, message, permanent=400 <= status < 500 and status != 429)
    code, verifier = data.get("authorization_code"), data.get("code_verifier")
    if not isinstance(code, str) or not isinstance(verifier, str):
        raise OAuthError(status, "malformed_device_token", "device token answer lacks authorization_code",
                         permanent=False)
    return DeviceAuthorization(code, verifier)
