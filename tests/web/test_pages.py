"""Every dashboard page loads in Chromium with no console error, no exception and no failed request, in light
and dark theme, in English and Chinese, and at 360 px; screenshots of each are saved (tests/web/screenshots/)."""

from __future__ import annotations

import openai
import pytest

from .conftest import PAGES, SCREENSHOTS, PageProblems, log_in, open_page, sim_control


@pytest.fixture(scope="module", autouse=True)
def traffic(demo):
    """Something on every page: a few more accounts with their quota read, a client key, some requests."""
    with demo.admin() as admin:
        for plan in ("pro", "team", "plus"):
            account = sim_control(demo, "POST", "/_sim/accounts", {"plan": plan}).json()
            assert admin.post("/auth/accounts", json={"refresh_token": account["refresh_token"],
                                                      "label": f"{plan} seat"}).status_code == 201
        assert admin.post("/auth/accounts/health-check", json={}).status_code == 200
        key = admin.post("/admin/client-keys", json={"name": "laptop", "requests_per_minute": 60}).json()["key"]
    client = openai.OpenAI(base_url=f"{demo.url}/v1", api_key=key, max_retries=0)
    for prompt in ("tell a story", "weather in Paris and Tokyo", "hello"):
        client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": prompt}])
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_page_loads_cleanly_and_is_photographed(context, demo, theme):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = context.new_page()
    problems = PageProblems(page)
    log_in(page, demo)
    page.evaluate(f"localStorage.setItem('theme', '{theme}')")
    for name in PAGES:
        open_page(page, name)
        page.reload()
        page.wait_for_selector(f"main[data-ready='{name}']")
        assert page.evaluate("document.documentElement.dataset.theme") == theme
        page.wait_for_load_state("networkidle") if name != "overview" else None
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{theme}.png"), full_page=True)
    assert problems.messages == [], "\n".join(problems.messages)


def test_pages_fit_a_360_px_screen_and_speak_chinese(chromium, demo):
    context = chromium.new_context(base_url=demo.url, viewport={"width": 360, "height": 740})
    try:
        page = context.new_page()
        problems = PageProblems(page)
        log_in(page, demo)
        page.click("#lang")
        page.wait_for_selector("html[lang='zh-CN']")
        for name in PAGES:
            open_page(page, name)
            # nothing wider than the screen except inside a horizontally scrolling table wrapper
            overflow = page.evaluate("document.documentElement.scrollWidth")
            assert overflow <= 360, f"{name} is {overflow} px wide"
            page.screenshot(path=str(SCREENSHOTS / f"{name}-360-zh.png"), full_page=True)
        assert page.text_content("#nav a[href='#/accounts']") == "账号"
        assert problems.messages == [], "\n".join(problems.messages)
    finally:
        context.close()


def test_every_page_is_reachable_with_the_keyboard(context, demo):
    page = context.new_page()
    log_in(page, demo)
    reached = set()
    for _ in range(30):
        page.keyboard.press("Tab")
        href = page.evaluate("document.activeElement.getAttribute('href')")
        if href and href.startswith("#/"):
            reached.add(href[2:])
    assert reached == set(PAGES)
    page.focus("#nav a[href='#/keys']")
    page.keyboard.press("Enter")
    page.wait_for_selector("main[data-ready='keys']")


def test_overview_shows_the_store_engine_and_that_it_is_available(context, demo):
    page = context.new_page()
    problems = PageProblems(page)
    log_in(page, demo)
    open_page(page, "overview")
    assert page.text_content("#ov-store-engine") == "SQLite"
    assert page.text_content("#ov-store-state") == "available"
    assert problems.messages == [], "\n".join(problems.messages)
