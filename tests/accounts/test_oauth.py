import base64
import hashlib
import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from codex_trio.accounts import oauth
from codex_trio.accounts.refresh import TokenRefresher

from .helpers import fixture_identity
from tests.conftest import FIXTURES

FIX = FIXTURES / "chatgpt-mode/oauth"


def fixture(name: str) -> dict:
    return json.loads((FIX / name).read_text())


def test_authorize_url_matches_the_real_client_byte_for_byte():
    fx = fixture("login-authorize-url.json")
    q = dict(fx["query_in_order"])
    pkce = oauth.Pkce(verifier="unused", challenge=q["code_challenge"])
    url = oauth.authorize_url(oauth.redirect_uri_for(1455), pkce, q["state"],
                              client_id=fixture_identity().oauth_client_id)
    assert url == fx["url"]
    assert parse_qsl(urlsplit(url).query) == [tuple(p) for p in fx["query_in_order"]]


def test_authorize_url_follows_issuer_and_fallback_port():
    pkce = oauth.new_pkce()
    url = oauth.authorize_url(oauth.redirect_uri_for(1457), pkce, "s", client_id="app_x", issuer="http://127.0.0.1:9/")
    assert url.startswith("http://127.0.0.1:9/oauth/authorize?response_type=code&")
    assert dict(parse_qsl(urlsplit(url).query))["redirect_uri"] == "http://127.0.0.1:1457/auth/callback"


# The token-endpoint and device-auth requests themselves are golden-tested where they are built:
# tests/upstream/test_golden_requests.py (test_login_code_exchange_and_api_key_exchange, test_device_auth_calls).


def test_pkce_shapes_match_codex():
    p = oauth.new_pkce()
    assert len(p.verifier) == 86 and "=" not in p.verifier
    digest = hashlib.sha256(p.verifier.encode()).digest()
    assert p.challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert len(oauth.new_state()) == 43
    assert oauth.new_pkce().verifier != p.verifier


@pytest.mark.parametrize("name,reason", [
    ("refresh-proactive-expiry.json", oauth.RefreshReason.PROACTIVE_EXPIRY),
    ("refresh-unauthorized-recovery.json", oauth.RefreshReason.UNAUTHORIZED_RECOVERY),
])
def test_refresh_request_matches_fixture_bytes(name, reason):
    """What the refresher hands the transport: the fixture's headers without the two hyper appends (host,
    content-length), and its body byte for byte."""
    fx = fixture(name)
    refresher = TokenRefresher(None, None, identity=fixture_identity())  # type: ignore[arg-type]
    headers, body = refresher.refresh_request("<REFRESH_TOKEN>", reason)
    assert [list(h) for h in headers] == fx["headers"][:-2]
    assert body == json.dumps(fx["body"], separators=(",", ":"), ensure_ascii=False).encode()


def test_device_answers_parse():
    code = oauth.parse_device_usercode(200, b'{"device_auth_id":"d1","user_code":"AB-CD","interval":"1"}')
    assert (code.device_auth_id, code.user_code, code.interval) == ("d1", "AB-CD", 1.0)
    assert code.verification_url == "https://auth.openai.com/codex/device"
    assert oauth.parse_device_usercode(200, b'{"device_auth_id":"d","usercode":"X"}').user_code == "X"
    with pytest.raises(oauth.OAuthError) as exc:
        oauth.parse_device_usercode(404, b"")
    assert exc.value.code == "device_login_disabled"
    assert oauth.parse_device_poll(403, b'{"error":"authorization_pending"}') is None
    done = oauth.parse_device_poll(200, b'{"authorization_code":"c","code_verifier":"v","code_challenge":"x"}')
    assert (done.authorization_code, done.code_verifier) == ("c", "v")


@pytest.mark.parametrize("status,body,code,permanent", [
    (401, b'{"error":{"code":"refresh_token_reused","message":"x"}}', "refresh_token_reused", True),
    (401, b'{"error":{"code":"refresh_token_expired"}}', "refresh_token_expired", True),
    (401, b'{"error":{"code":"refresh_token_invalidated"}}', "refresh_token_invalidated", True),
    (400, b'{"error":"invalid_grant","error_description":"bad"}', "invalid_grant", True),
    (500, b'{"error":{"code":"server_error"}}', "server_error", False),
    (503, b"<html>edge</html>", "http_error", False),
    (429, b'{"error":"slow_down"}', "slow_down", False),
])
def test_refresh_error_classification(status, body, code, permanent):
    with pytest.raises(oauth.OAuthError) as exc:
        oauth.parse_token_grant(status, body)
    assert (exc.value.code, exc.value.permanent) == (code, permanent)


def test_token_grant_keeps_missing_fields_missing():
    grant = oauth.parse_token_grant(200, b'{"access_token":"a","expires_in":10}')
    assert (grant.access_token, grant.refresh_token, grant.id_token, grant.expires_in) == ("a", None, None, 10.0)
    with pytest.raises(oauth.OAuthError):
        oauth.parse_token_grant(200, b'{"token_type":"Bearer"}')
