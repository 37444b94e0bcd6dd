"""The dashboard's log-in gate in a real browser: no session → log-in page; a wrong key is refused; the one-time
link works once; a cross-origin request with the session is refused; log-out ends the session. And API clients
probing / keep what they got before the dashboard existed."""

from __future__ import annotations

import re
import time

import httpx

from .conftest import PageProblems, log_in


def test_without_a_session_the_browser_gets_the_log_in_page_and_api_probes_are_unchanged(context, demo):
    page = context.new_page()
    problems = PageProblems(page)
    page.goto("/")
    page.wait_for_selector("#admin-key")
    assert page.locator("#login-form").is_visible()
    assert problems.messages == []
    # the dashboard's files need the session; the log-in page's do not
    assert context.request.get("/ui/app.js").status == 401
    assert context.request.get("/ui/public/login.js").status == 200
    # what an API client probing / gets is what it always got
    assert httpx.get(demo.url + "/").status_code == 401
    with demo.admin() as admin:
        assert admin.get("/").json() == {"name": "codex-trio", "status": "ok"}


def test_a_wrong_key_is_refused_and_the_right_one_logs_in(context, demo):
    page = context.new_page()
    page.goto("/")
    page.fill("#admin-key", "ct-not-the-key")
    page.click("button[type=submit]")
    page.wait_for_selector("#login-error:not(:empty)")
    assert "not the admin key" in page.text_content("#login-error")
    assert context.cookies() == []
    page.fill("#admin-key", demo.key)
    page.click("button[type=submit]")
    page.wait_for_selector("main[data-ready='overview']")
    cookie, = context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_the_one_time_link_logs_in_once(chromium, demo):
    first = chromium.new_context(base_url=demo.url)
    second = chromium.new_context(base_url=demo.url)
    try:
        page = first.new_page()
        page.goto(demo.link)
        page.wait_for_selector("main[data-ready='overview']")
        assert "token" not in page.url  # the token does not stay in the address bar (or history)
        again = second.new_page()
        again.goto(demo.link)
        again.wait_for_selector("#login-error:not(:empty)")
        assert "already used" in again.text_content("#login-error")
        assert second.cookies() == []
    finally:
        first.close()
        second.close()


def test_a_cross_origin_request_with_the_session_is_refused(context, demo):
    page = context.new_page()
    log_in(page, demo)
    same_origin = context.request.post("/admin/logs/state", data={"enabled": True},
                                       headers={"origin": demo.url, "content-type": "application/json"})
    assert same_origin.status == 200
    for origin in ("http://evil.example", "http://127.0.0.1:1"):  # another site; another port of this host
        refused = context.request.post("/admin/logs/state", data={"enabled": False},
                                       headers={"origin": origin, "content-type": "application/json"})
        assert refused.status == 403, refused.text()
        assert "may not use the dashboard session" in refused.json()["error"]["message"]
    no_origin = context.request.post("/admin/logs/state", data={"enabled": False},
                                     headers={"content-type": "application/json"})
    assert no_origin.status == 403
    # DNS rebinding: the page's name resolves to us, but the Host header gives it away
    rebound = context.request.get("/admin/settings", headers={"host": "evil.example"})
    assert rebound.status == 403 and "DNS rebinding" in rebound.json()["error"]["message"]
    # reading with the session needs no Origin; the setting was not changed by the refused calls
    assert context.request.get("/admin/logs/state").json()["enabled"] is True


def test_log_out_ends_the_session(context, demo):
    page = context.new_page()
    log_in(page, demo)
    cookie = context.cookies()[0]["value"]
    page.click("#logout")
    page.wait_for_selector("#admin-key")
    replay = httpx.get(demo.url + "/admin/settings", cookies={"codex_trio_session": cookie})
    assert replay.status_code == 401  # the old cookie is dead on the server, not only deleted in the browser


def test_codex_trio_run_prints_a_one_time_link(tmp_path):
    from tests.gateway_process import gateway_process

    log = tmp_path / "run.log"
    with log.open("wb") as stderr, gateway_process(tmp_path / "data", "ct-" + "k" * 40, stderr=stderr) as (_, port):
        deadline = time.monotonic() + 20
        while "dashboard:" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        link = re.search(r"dashboard: (\S+)", log.read_text()).group(1)
        assert link.startswith(f"http://127.0.0.1:{port}/?token=")
        browser = {"accept": "text/html"}
        first = httpx.get(link, headers=browser)
        assert first.status_code == 303 and first.headers["location"] == "/"
        session = first.cookies["codex_trio_session"]
        assert httpx.get(f"http://127.0.0.1:{port}/admin/settings", cookies={"codex_trio_session": session}).status_code == 200
        second = httpx.get(link, headers=browser)
        assert second.status_code == 303 and second.headers["location"] == "/?link=used"
        assert "codex_trio_session" not in second.cookies
