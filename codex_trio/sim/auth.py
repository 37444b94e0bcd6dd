"""The auth.openai.com side: browser OAuth with PKCE, token grants, device-code login.

`/oauth/authorize` checks the request (client, redirect URI, S256 challenge, state) and auto-approves as the
chosen test account, redirecting with `code` and `state`. `/oauth/token` accepts JSON and form bodies for
authorization_code (PKCE verified), refresh_token (single use: a reused one gets `refresh_token_reused`)
and the RFC 8693 id_token → API key exchange; `/oauth/revoke` kills a token. Device login follows the official (non-RFC 8628) flow and
stays pending until a test approves it through the control API.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import trio

from .backend import banned_body, json_response
from .state import AuthCode, DeviceGrant, RecordedRequest, SimState
from .tokens import CLIENT_ID, b64url
from .wire import HTTPRequest, HTTPResponse

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
DEVICE_CALLBACK = "https://auth.openai.com/deviceauth/callback"
CODE_TTL = 600
DEVICE_TTL = 900


def oauth_error(status: int, error: str, description: str) -> HTTPResponse:
    return json_response(status, {"error": error, "error_description": description})


def _refresh_error(code: str, message: str) -> HTTPResponse:
    return json_response(401, {"error": {"message": message, "type": "invalid_request_error", "param": None,
                                         "code": code}})


def pkce_challenge(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def _loopback_callback(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1") and parts.port is not None \
        and parts.path == "/auth/callback"


class Auth:
    def __init__(self, state: SimState) -> None:
        self.state = state

    def device_callbacks(self, own_base: str) -> tuple[str, ...]:
        return DEVICE_CALLBACK, own_base.rstrip("/") + "/deviceauth/callback"

    async def handle(self, request: HTTPRequest, record: RecordedRequest, own_base: str) -> HTTPResponse:
        route = (request.method, request.path)
        if route == ("GET", "/oauth/authorize"):
            return self.authorize(request)
        if route == ("POST", "/oauth/token"):
            answer = self.token(record)  # the grant takes effect at once, like the real issuer's
            if self.state.config.token_delay_seconds:
                await trio.sleep(self.state.config.token_delay_seconds)  # while the answer travels back
            return answer
        if route == ("POST", "/oauth/revoke"):
            return self.revoke(record)
        if route == ("POST", "/api/accounts/deviceauth/usercode"):
            return self.device_usercode(record)
        if route == ("POST", "/api/accounts/deviceauth/token"):
            return self.device_token(record, own_base)
        return json_response(404, {"detail": "Not Found"})

    def authorize(self, request: HTTPRequest) -> HTTPResponse:
        query = dict(parse_qsl(request.query, keep_blank_values=True))
        if query.get("response_type") != "code":
            return oauth_error(400, "unsupported_response_type", "response_type must be code")
        if query.get("client_id") != CLIENT_ID:
            return oauth_error(400, "invalid_client", "Unknown client_id")
        redirect_uri = query.get("redirect_uri", "")
        if not _loopback_callback(redirect_uri):
            return oauth_error(400, "invalid_request", "redirect_uri is not registered for this client")
        if query.get("code_challenge_method") != "S256":
            return oauth_error(400, "invalid_request", "code_challenge_method must be S256")
        challenge = query.get("code_challenge", "")
        if len(challenge) != 43 or any(c not in string.ascii_letters + string.digits + "-_" for c in challenge):
            return oauth_error(400, "invalid_request", "code_challenge must be a base64url SHA-256 digest")
        if not query.get("state"):
            return oauth_error(400, "invalid_request", "state is required")
        account_id = self.state.login_account_id
        if account_id is None or account_id not in self.state.accounts:
            return json_response(403, {"error": "access_denied", "error_description": "No test account to log in"})
        code = "ac_" + secrets.token_urlsafe(32)
        self.state.auth_codes[code] = AuthCode(account_id, CLIENT_ID, (redirect_uri,), challenge,
                                               self.state.clock.now() + CODE_TTL)
        location = redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(
            {"code": code, "scope": query.get("scope", ""), "state": query["state"]})
        return HTTPResponse(302, [("location", location)])

    def _params(self, record: RecordedRequest) -> dict[str, Any] | None:
        if isinstance(record.body, dict):
            return record.body
        if isinstance(record.body, list):
            return {k: v for k, v in record.body}
        return None

    def token(self, record: RecordedRequest) -> HTTPResponse:
        params = self._params(record)
        if params is None:
            return oauth_error(400, "invalid_request", "Expected a JSON or form-encoded body")
        if params.get("client_id") != CLIENT_ID:
            return oauth_error(401, "invalid_client", "Unknown client_id")
        grant = params.get("grant_type")
        if grant == "authorization_code":
            return self._code_grant(params)
        if grant == "refresh_token":
            return self._refresh_grant(params)
        if grant == TOKEN_EXCHANGE:
            return self._exchange_grant(params)
        return oauth_error(400, "unsupported_grant_type", f"Unsupported grant_type: {grant}")

    def _code_grant(self, params: dict[str, Any]) -> HTTPResponse:
        code = self.state.auth_codes.pop(str(params.get("code", "")), None)
        if code is None or self.state.clock.now() >= code.expires_at:
            return oauth_error(400, "invalid_grant", "Invalid or expired authorization code")
        if params.get("redirect_uri") not in code.redirect_uris:
            return oauth_error(400, "invalid_grant", "redirect_uri does not match the authorization request")
        verifier = params.get("code_verifier")
        if not isinstance(verifier, str) or not 43 <= len(verifier) <= 128 or pkce_challenge(verifier) != code.challenge:
            return oauth_error(400, "invalid_grant", "PKCE verification failed")
        account = self.state.accounts[code.account_id]
        if account.banned:
            return json_response(403, banned_body())
        return HTTPResponse(200, [("content-type", "application/json")],
                            self.state.token_response(self.state.reissue(account)))

    def _refresh_grant(self, params: dict[str, Any]) -> HTTPResponse:
        account_id, problem = self.state.issuer.use_refresh(str(params.get("refresh_token", "")))
        if account_id is None:
            if problem == "refresh_token_reused":
                return _refresh_error(problem, "Your refresh token has already been used to generate a new access "
                                               "token. Please try signing in again.")
            return _refresh_error("refresh_token_invalidated", "Your refresh token has been invalidated. "
                                                               "Please try signing in again.")
        account = self.state.accounts[account_id]
        if account.banned:
            return _refresh_error("account_deactivated", banned_body()["error"]["message"])
        return HTTPResponse(200, [("content-type", "application/json")],
                            self.state.token_response(self.state.reissue(account)))

    def _exchange_grant(self, params: dict[str, Any]) -> HTTPResponse:
        if params.get("requested_token") != "openai-api-key" or params.get("subject_token_type") != ID_TOKEN_TYPE:
            return oauth_error(400, "invalid_request", "Only id_token → openai-api-key exchange is supported")
        if self.state.issuer.account_of_id_token(str(params.get("subject_token", ""))) is None:
            return oauth_error(400, "invalid_grant", "subject_token is not a valid id_token")
        return json_response(200, {"access_token": "sk-proj-sim-" + secrets.token_urlsafe(36), "token_type": "Bearer"})

    def revoke(self, record: RecordedRequest) -> HTTPResponse:
        params = self._params(record)
        if params is None or not isinstance(params.get("token"), str):
            return oauth_error(400, "invalid_request", "token is required")
        self.state.issuer.revoke(params["token"])  # RFC 7009: unknown tokens are not an error
        return json_response(200, {})

    def device_usercode(self, record: RecordedRequest) -> HTTPResponse:
        params = self._params(record)
        if params is None or params.get("client_id") != CLIENT_ID:
            return oauth_error(400, "invalid_client", "Unknown client_id")
        letters = string.ascii_uppercase
        user_code = "".join(secrets.choice(letters) for _ in range(4)) + "-" + "".join(
            secrets.choice(letters) for _ in range(4))
        grant = DeviceGrant("deviceauth_" + secrets.token_hex(12), user_code, self.state.clock.now() + DEVICE_TTL)
        self.state.devices[user_code] = grant
        return json_response(200, {"device_auth_id": grant.device_auth_id, "user_code": user_code,
                                   "interval": self.state.config.device_poll_interval})

    def device_token(self, record: RecordedRequest, own_base: str) -> HTTPResponse:
        params = self._params(record) or {}
        grant = self.state.devices.get(str(params.get("user_code", "")))
        if grant is None or grant.device_auth_id != params.get("device_auth_id"):
            return json_response(404, {"error": "not_found", "error_description": "Unknown device authorization"})
        if self.state.clock.now() >= grant.expires_at:
            return json_response(403, {"error": "expired_token"})
        if grant.approved_account is None:
            return json_response(403, {"error": "authorization_pending"})
        if grant.issued is None:
            verifier = b64url(secrets.token_bytes(64))
            challenge = pkce_challenge(verifier)
            code = "ac_" + secrets.token_urlsafe(32)
            self.state.auth_codes[code] = AuthCode(grant.approved_account, CLIENT_ID, self.device_callbacks(own_base),
                                                   challenge, self.state.clock.now() + CODE_TTL)
            grant.issued = {"authorization_code": code, "code_challenge": challenge, "code_verifier": verifier}
        return json_response(200, grant.issued)

    def approve_device(self, user_code: str, account_id: str) -> bool:
        grant = self.state.devices.get(user_code)
        if grant is None or account_id not in self.state.accounts:
            return False
        grant.approved_account = account_id
        return True
