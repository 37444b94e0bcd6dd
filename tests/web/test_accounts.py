"""Adding accounts from the Accounts page against the demo's simulator (device code, paste-callback), and the
bulk health check's progress bar."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from playwright.sync_api import expect

from .conftest import log_in, open_page, sim_control


def new_sim_account(demo, plan: str) -> dict:
    response = sim_control(demo, "POST", "/_sim/accounts", {"plan": plan})
    assert response.status_code == 200, response.text
    return response.json()


def account_rows(page) -> list[str]:
    return page.locator("#acc-list tbody tr").all_inner_texts()


def test_add_an_account_with_a_device_code(context, demo):
    account = new_sim_account(demo, "pro")
    page = context.new_page()
    log_in(page, demo)
    open_page(page, "accounts")
    page.fill("#add-label", "from the device page")
    page.click("#add-device")
    code = page.text_content("#device-code", timeout=10_000)
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4,5}", code), code
    approved = sim_control(demo, "POST", "/_sim/device/approve", {"user_code": code, "account_id": account["account_id"]})
    assert approved.status_code == 200, approved.text
    page.wait_for_selector("#add-result.ok", timeout=20_000)
    page.wait_for_selector("#acc-list tbody tr:has-text('from the device page')")
    row = next(r for r in account_rows(page) if "from the device page" in r)
    assert "pro" in row and account["email"] in row


def test_add_an_account_by_pasting_the_callback_address(context, demo):
    account = new_sim_account(demo, "team")
    assert sim_control(demo, "POST", "/_sim/login-as", {"account_id": account["account_id"]}).status_code == 200
    page = context.new_page()
    log_in(page, demo)
    open_page(page, "accounts")
    page.fill("#add-label", "from the paste page")
    page.click("#add-paste")
    authorize = page.get_attribute("#authorize-url", "href", timeout=10_000)
    # what the user's browser does on the real log-in page: the issuer approves and redirects to the callback
    parts = urlsplit(authorize)
    answer = sim_control(demo, "GET", f"{parts.path}?{parts.query}")
    assert answer.status_code in (302, 303), answer.text
    callback = answer.headers["location"]
    assert callback.startswith("http://127.0.0.1:1455/auth/callback?")
    page.fill("#paste-url", "http://127.0.0.1:1455/auth/callback?code=wrong&state=wrong")
    page.click("#paste-submit")
    page.wait_for_selector("#paste-error:not(:empty)")  # a wrong address is refused next to the field
    page.fill("#paste-url", callback)
    page.click("#paste-submit")
    page.wait_for_selector("#add-result.ok", timeout=20_000)
    page.wait_for_selector("#acc-list tbody tr:has-text('from the paste page')")
    row = next(r for r in account_rows(page) if "from the paste page" in r)
    assert "team" in row and account["email"] in row


def test_bulk_health_check_shows_progress(context, demo):
    for _ in range(7):  # more than one batch, so the bar moves before the end
        new_sim_account(demo, "plus")
    with demo.admin() as admin:
        for account in sim_control(demo, "GET", "/_sim/accounts").json()[-7:]:
            added = admin.post("/auth/accounts", json={"access_token": account["access_token"],
                                                        "refresh_token": account["refresh_token"],
                                                        "id_token": account["id_token"]})
            assert added.status_code in (200, 201), added.text
        total = len(admin.get("/auth/accounts").json()["accounts"])
    page = context.new_page()
    log_in(page, demo)
    open_page(page, "accounts")
    # record every value the page gives the progress bar
    page.evaluate("""() => { window.__progress = []; const p = document.getElementById('health-progress');
        const set = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, 'value').set;
        Object.defineProperty(p, 'value', {get() { return Number(this.getAttribute('value')); },
            set(v) { set.call(this, v); window.__progress.push(v); }}); }""")
    page.click("#health-check")
    page.wait_for_selector("#acc-status:has-text('Health check finished')", timeout=60_000)
    progress = page.evaluate("window.__progress")
    steps = [v for v in progress if v > 0]
    assert steps[-1] == total and len(steps) >= 2 and steps == sorted(steps), progress
    assert f"{total} of {total} healthy" in page.text_content("#acc-status")
    # the quota the check read is shown with its last-checked time
    assert "checked –" not in page.locator("#acc-list tbody tr").first.inner_text()


def test_relabel_disable_and_delete_with_confirmation(context, demo):
    account = new_sim_account(demo, "plus")
    with demo.admin() as admin:
        added = admin.post("/auth/accounts", json={"refresh_token": account["refresh_token"], "label": "to relabel"})
        assert added.status_code == 201, added.text
        account_id = added.json()["account"]["id"]
    page = context.new_page()
    log_in(page, demo)
    open_page(page, "accounts")
    row = page.locator(f"#acc-list tr[data-id='{account_id}']")
    page.once("dialog", lambda dialog: dialog.accept("relabelled in the page"))
    row.get_by_role("button", name="Relabel").click()
    page.wait_for_selector(f"#acc-list tr[data-id='{account_id}']:has-text('relabelled in the page')")
    row.get_by_role("button", name="Disable").click()
    page.wait_for_selector(f"#acc-list tr[data-id='{account_id}'] .badge.disabled")
    # bulk: select it, answer "no" to the confirmation first (nothing is deleted), then "yes"
    row.get_by_role("checkbox").check()
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#bulk-delete")
    page.wait_for_timeout(300)
    assert row.count() == 1
    row.get_by_role("checkbox").check()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#bulk-delete")
    page.wait_for_selector(f"#acc-list tr[data-id='{account_id}']", state="detached")
    with demo.admin() as admin:
        assert admin.get(f"/auth/accounts/{account_id}").status_code == 404


def test_import_an_auth_json_file(context, demo, tmp_path):
    account = new_sim_account(demo, "pro")
    auth_json = tmp_path / "auth.json"
    auth_json.write_text(json.dumps({"OPENAI_API_KEY": None, "tokens": {
        "id_token": account["id_token"], "access_token": account["access_token"],
        "refresh_token": account["refresh_token"], "account_id": account["account_id"]}, "last_refresh": None}))
    page = context.new_page()
    log_in(page, demo)
    open_page(page, "accounts")
    page.set_input_files("#import-file", str(auth_json))
    page.wait_for_selector("#import-result")
    assert page.text_content("#import-result") == "Imported: 1 added, 0 updated."
    page.fill("#acc-search", account["email"])
    expect(page.locator("#acc-list tbody tr")).to_have_count(1)
    assert "pro" in page.locator("#acc-list tbody tr").inner_text()


def test_check_quota_now_shows_the_backends_numbers_and_when_they_were_read(context, demo):
    account = new_sim_account(demo, "plus")
    with demo.admin() as admin:
        added = admin.post("/auth/accounts", json={"refresh_token": account["refresh_token"], "label": "quota seat"})
        account_id = added.json()["account"]["id"]
    page = context.new_page()
    log_in(page, demo)
    open_page(page, "accounts")
    row = page.locator(f"#acc-list tr[data-id='{account_id}']")
    assert "checked –" in row.inner_text()
    row.locator(".check-quota").click()
    page.wait_for_selector("#acc-status:has-text('Quota checked.')")
    # the row is redrawn after the status line: wait for it (a loaded machine showed the old row for a moment)
    expect(row).not_to_contain_text("checked –")
    expect(row).to_contain_text("0%")
    exhausted = sim_control(demo, "POST", f"/_sim/accounts/{account['account_id']}/exhaust", {})
    assert exhausted.status_code == 200, exhausted.text
    row.locator(".check-quota").click()
    expect(row).to_contain_text("100%")
