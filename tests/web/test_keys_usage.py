"""A client key created in the page works from the official `openai` SDK; after N requests with it, the Keys,
Usage and Logs pages show exactly those N requests (and their tokens)."""

from __future__ import annotations

import openai
import pytest
from playwright.sync_api import expect

from .conftest import PageProblems, log_in, open_page

N = 4


def test_a_key_made_in_the_page_is_used_from_the_sdk_and_its_requests_are_shown_exactly(context, demo):
    page = context.new_page()
    problems = PageProblems(page)
    log_in(page, demo)
    open_page(page, "keys")
    page.fill("#key-name", "sdk-web")
    page.click("#key-create")
    secret = page.text_content("#key-secret", timeout=10_000)
    assert secret.startswith("ctk_")
    page.wait_for_selector("#key-list tr:has-text('sdk-web')")  # the list was reloaded: nothing in flight
    page.reload()
    page.wait_for_selector("main[data-ready='keys']")
    assert secret not in page.content()  # shown once: not on the list afterwards

    client = openai.OpenAI(base_url=f"{demo.url}/v1", api_key=secret, max_retries=0)
    prompt_tokens = completion_tokens = 0
    for i in range(N):
        reply = client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": f"hello {i}"}])
        assert reply.choices[0].message.content == f"Echo: hello {i}"
        prompt_tokens += reply.usage.prompt_tokens
        completion_tokens += reply.usage.completion_tokens
    with demo.admin() as admin:  # a request with another key (the admin key) must not be counted for this one
        assert admin.post("/v1/chat/completions", json={"model": "gpt-5.5", "messages": [
            {"role": "user", "content": "not with the key"}]}).status_code == 200

    open_page(page, "keys")
    row = page.locator("#key-list tr", has_text="sdk-web")
    assert row.locator(".key-requests").inner_text() == str(N)

    # switched off in the page, the key stops working at once; switched on, it works again
    row.locator(".key-toggle").click()
    page.wait_for_selector("#key-list tr:has-text('sdk-web') .key-toggle:has-text('Enable')")
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "refused"}])
    row.locator(".key-toggle").click()
    page.wait_for_selector("#key-list tr:has-text('sdk-web') .key-toggle:has-text('Disable')")

    open_page(page, "usage")
    page.select_option("#usage-range", "1h")
    page.select_option("#usage-group", "key")
    page.wait_for_selector("#usage-charts section[data-metric='requests'] tr:has-text('sdk-web')")
    section = page.locator("#usage-charts section[data-metric='requests']")
    assert section.locator("tr", has_text="sdk-web").locator(".total-requests").inner_text() == str(N)
    assert f"sdk-web: {N}" in section.locator("svg.chart path title").all_text_contents()
    inputs = page.locator("#usage-charts section[data-metric='input_tokens'] tr", has_text="sdk-web")
    assert inputs.locator(".total-input_tokens").inner_text().replace(",", "") == str(prompt_tokens)
    outputs = page.locator("#usage-charts section[data-metric='output_tokens'] tr", has_text="sdk-web")
    assert outputs.locator(".total-output_tokens").inner_text().replace(",", "") == str(completion_tokens)

    open_page(page, "logs")
    page.fill("#log-key", "sdk-web")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#log-total:has-text('{N} matching')")
    rows = page.locator("#log-list tbody tr")
    assert rows.count() == N
    assert all("sdk-web" in text and "gpt-5.5" in text for text in rows.all_inner_texts())
    rows.first.get_by_role("button").click()
    assert '"key_name": "sdk-web"' in page.text_content("#log-detail pre")
    page.keyboard.press("Escape")

    # live tail: one more request appears without reloading
    client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "live"}])
    expect(page.locator("#log-list tbody tr")).to_have_count(N + 1, timeout=10_000)
    assert problems.messages == [], "\n".join(problems.messages)


def test_a_keys_limits_are_edited_in_the_page_and_apply_at_once(context, demo):
    with demo.admin() as admin:
        created = admin.post("/admin/client-keys", json={"name": "edit-me"})
        assert created.status_code == 201
        key_id, secret = created.json()["id"], created.json()["key"]
    page = context.new_page()
    problems = PageProblems(page)
    log_in(page, demo)
    open_page(page, "keys")
    row = page.locator("#key-list tr", has_text="edit-me")
    row.locator(".key-edit").click()
    editor = page.locator("#key-editor")

    # a refused value: its message under its own field, nothing written
    editor.locator("#key-edit-requests_per_minute").fill("0")
    editor.locator("#key-edit-save").click()
    expect(page.locator("#key-edit-requests_per_minute-error")).to_contain_text("greater than or equal to 1")
    with demo.admin() as admin:
        assert admin.get(f"/admin/client-keys/{key_id}").json()["requests_per_minute"] is None

    editor.locator("#key-edit-requests_per_minute").fill("30")
    editor.locator("#key-edit-tokens_per_day").fill("100000")
    editor.locator("#key-edit-allowed_models").fill("gpt-5.4*, fakeai/*")
    editor.locator("#key-edit-save").click()
    expect(page.locator("#key-editor")).to_have_count(0)
    expect(row.locator(".key-limits")).to_contain_text("30")
    with demo.admin() as admin:
        key = admin.get(f"/admin/client-keys/{key_id}").json()
    assert key["requests_per_minute"] == 30 and key["tokens_per_day"] == 100000
    assert key["allowed_models"] == ["gpt-5.4*", "fakeai/*"]
    client = openai.OpenAI(base_url=f"{demo.url}/v1", api_key=secret, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):  # the new allow-list applies to the next request
        client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "hi"}])

    # emptied fields clear the limits
    row.locator(".key-edit").click()
    editor.locator("#key-edit-allowed_models").fill("")
    editor.locator("#key-edit-requests_per_minute").fill("")
    editor.locator("#key-edit-tokens_per_day").fill("")
    editor.locator("#key-edit-save").click()
    expect(page.locator("#key-editor")).to_have_count(0)
    expect(row.locator(".key-limits")).to_have_text("–")
    assert client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "hi"}]).choices
    # the one refused save (its 400, and Chromium's console line about it) is all that went wrong
    assert problems.messages == [f"HTTP 400: {demo.url}/admin/client-keys/{key_id}",
                                 "console: Failed to load resource: the server responded with a status of 400 ()"]
