import pytest

from codex_trio.accounts.jwt import NotAJwt, decode_claims, identity_from_tokens

from .helpers import access_token, make_jwt


def test_identity_from_access_and_id_token():
    at = access_token("acc-1", 1_800_000_000, plan="pro", user_id="user-9", email="p@example.com")
    ident = identity_from_tokens(at)
    assert (ident.account_id, ident.plan, ident.user_id, ident.email, ident.expires_at) == \
        ("acc-1", "pro", "user-9", "p@example.com", 1_800_000_000.0)
    id_token = make_jwt({"email": "id@example.com", "exp": 1,
                         "https://api.openai.com/auth": {"chatgpt_plan_type": "team"}})
    merged = identity_from_tokens(at, id_token)
    assert (merged.email, merged.plan, merged.account_id, merged.expires_at) == \
        ("id@example.com", "team", "acc-1", 1_800_000_000.0)


def test_user_id_falls_back_to_user_id_claim():
    at = make_jwt({"https://api.openai.com/auth": {"user_id": "u-2"}})
    assert identity_from_tokens(at).user_id == "u-2"


@pytest.mark.parametrize("token", ["abc", "a..c", "a.!!!.c", "a." + "WzFd" + ".c"])
def test_garbage_is_not_a_jwt(token):
    with pytest.raises(NotAJwt):
        decode_claims(token)
    assert identity_from_tokens(token).account_id is None
