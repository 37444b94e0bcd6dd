"""The sans-IO session book and Origin rule, and the static file lookup (no browser needed)."""

from __future__ import annotations

from codex_trio.server.dashboard import web_file
from codex_trio.server.dashboard_sessions import LINK_TOKEN_SECONDS, SessionBook, origin_refusal


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_expire_after_their_ttl_and_close_on_log_out():
    clock = Clock()
    book = SessionBook(clock=clock, ttl_seconds=lambda: 60)
    session = book.open_session()
    assert book.is_live(session) and not book.is_live("forged") and not book.is_live(None)
    clock.now += 59
    assert book.is_live(session)
    clock.now += 1
    assert not book.is_live(session) and book.sessions == {}
    again = book.open_session()
    book.close_session(again)
    assert not book.is_live(again)


def test_a_link_token_is_spent_once_and_expires_unspent():
    clock = Clock()
    book = SessionBook(clock=clock, ttl_seconds=lambda: 600)
    token = book.issue_link_token()
    session = book.spend_link_token(token)
    assert session is not None and book.is_live(session)
    assert book.spend_link_token(token) is None
    late = book.issue_link_token()
    clock.now += LINK_TOKEN_SECONDS
    assert book.spend_link_token(late) is None
    assert book.spend_link_token("") is None


def test_only_the_dashboards_own_origin_may_change_things():
    host = "127.0.0.1:8080"
    assert origin_refusal("GET", host, None, frozenset()) is None
    assert origin_refusal("POST", host, "http://127.0.0.1:8080", frozenset()) is None
    assert origin_refusal("DELETE", host, "HTTP://127.0.0.1:8080/", frozenset()) is None
    assert origin_refusal("POST", host, None, frozenset()) is not None
    assert origin_refusal("POST", host, "http://127.0.0.1:3000", frozenset()) is not None  # same site, not same origin
    assert origin_refusal("PATCH", host, "null", frozenset()) is not None
    assert origin_refusal("POST", host, "https://ops.example", frozenset({"https://ops.example"})) is None


def test_static_files_never_leave_the_web_folder():
    assert web_file("index.html") is not None and web_file("public/login.html") is not None
    for escape in ("../pyproject.toml", "public/../../codex_trio/app.py", "/etc/passwd", "pages/../../README.md"):
        assert web_file(escape) is None, escape
    assert web_file("pages") is None  # a folder is not a file


async def test_the_cookie_is_secure_behind_a_trusted_tls_proxy(data_dir):
    import httpx

    from tests.conftest import api_key, running_gateway

    async with running_gateway(data_dir, install=True, local={"server": {"trust_proxy": True}}) as (gateway, url):
        async with httpx.AsyncClient(base_url=url) as client:
            body = {"key": api_key(gateway)}
            plain = await client.post("/ui/session", json=body, headers={"origin": url})
            proxied = await client.post("/ui/session", json=body, headers={"origin": url.replace("http:", "https:"),
                                                                           "x-forwarded-proto": "https"})
    assert plain.status_code == proxied.status_code == 200
    assert "secure" not in plain.headers["set-cookie"].lower()
    cookie = proxied.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie


async def test_expired_sessions_are_swept_every_cleanup_interval_without_being_looked_up(data_dir):
    """`session.cleanup_interval_minutes`: a background job removes expired sessions even when nobody presents
    them again (a browser closed for good); the cookie then no longer works either."""
    import httpx
    import trio

    from codex_trio.server.dashboard import sessions_of
    from tests.conftest import api_key, running_gateway

    local = {"session": {"ttl_minutes": 0.01, "cleanup_interval_minutes": 0.01}}  # 0.6 s each
    async with running_gateway(data_dir, install=True, local=local) as (gateway, url):
        async with httpx.AsyncClient(base_url=url) as client:
            logged_in = await client.post("/ui/session", json={"key": api_key(gateway)}, headers={"origin": url})
            assert logged_in.status_code == 200
            assert len(sessions_of(gateway).sessions) == 1
            with trio.fail_after(10):
                while sessions_of(gateway).sessions:
                    await trio.sleep(0.1)
            assert (await client.get("/admin/overview")).status_code == 401
