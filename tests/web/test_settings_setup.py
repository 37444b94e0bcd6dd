"""Settings saved from the page reach local.yaml and take effect at once; a refused value is explained next to
its field. The Set-up page's snippets carry this gateway's address, and its test button makes a real request."""

from __future__ import annotations

import httpx
import openai
from ruamel.yaml import YAML

from .conftest import PageProblems, log_in, open_page


def test_a_settings_change_reaches_local_yaml_and_takes_effect(context, demo):
    client = openai.OpenAI(base_url=f"{demo.url}/v1", api_key=demo.key, max_retries=0)
    try:
        client.chat.completions.create(model="web-alias", messages=[{"role": "user", "content": "hi"}])
        raise AssertionError("web-alias should not exist yet")
    except openai.NotFoundError:
        pass
    page = context.new_page()
    log_in(page, demo)
    open_page(page, "settings")
    aliases = page.locator("#set-model-aliases")
    aliases.fill(aliases.input_value() + "\nweb-alias = gpt-5.5")
    page.click("#set-model-aliases-save")
    page.wait_for_selector("#set-model-aliases-save + span:has-text('Saved')")
    local = YAML(typ="safe").load((demo.data_dir / "local.yaml").read_text())
    assert local["model"]["aliases"]["web-alias"] == "gpt-5.5"
    reply = client.chat.completions.create(model="web-alias", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Echo: hi"


def test_a_refused_value_is_explained_next_to_its_field_and_not_written(context, demo):
    before = (demo.data_dir / "local.yaml").read_text()
    page = context.new_page()
    log_in(page, demo)
    open_page(page, "settings")
    page.fill("#set-ollama-port", "70000")
    page.click("#set-ollama-port-save")
    page.wait_for_selector("#set-ollama-port-error:not(:empty)")
    assert "port" in page.text_content("#set-ollama-port-error")
    assert (demo.data_dir / "local.yaml").read_text() == before


def test_setup_snippets_use_this_gateway_and_the_test_button_answers(context, demo):
    page = context.new_page()
    problems = PageProblems(page)
    log_in(page, demo)
    open_page(page, "setup")
    assert f'base_url="{demo.url}/v1"' in page.text_content("#setup-cards")
    page.fill("#setup-key", demo.key)
    assert demo.key in page.text_content("#setup-cards")
    page.click("#test-connection")
    page.wait_for_selector("#test-answer:not([hidden])")
    assert page.text_content("#test-answer") == "gpt-5.5: Echo: Say hello from the dashboard."
    assert problems.messages == [], "\n".join(problems.messages)


def test_the_ollama_listener_is_switched_on_and_off_from_the_page(context, demo):
    from tests.foundation.test_serving import _free_port

    port = _free_port()
    page = context.new_page()
    log_in(page, demo)
    open_page(page, "settings")
    page.fill("#set-ollama-port", str(port))
    page.click("#set-ollama-port-save")
    page.check("#set-ollama-enabled")
    page.click("#set-ollama-enabled-save")
    page.wait_for_selector(f"#ollama-state:has-text('running — http://127.0.0.1:{port}')")
    assert httpx.get(f"http://127.0.0.1:{port}/api/version").status_code == 200
    page.uncheck("#set-ollama-enabled")
    page.click("#set-ollama-enabled-save")
    page.wait_for_selector("#ollama-state:has-text('stopped')")
    local = YAML(typ="safe").load((demo.data_dir / "local.yaml").read_text())
    assert local["ollama"]["enabled"] is False and local["ollama"]["port"] == port


def test_custom_models_and_the_default_effort_are_edited_in_the_page(context, demo):
    """model.custom_models (names or objects) saved from the page reach local.yaml and the model list at once;
    a value the schema refuses, or text that is not JSON, is explained under the field and nothing is written."""
    with demo.admin() as admin:
        assert "web-custom" not in [m["id"] for m in admin.get("/v1/models").json()["data"]]
    page = context.new_page()
    problems = PageProblems(page)
    log_in(page, demo)
    open_page(page, "settings")
    field = page.locator("#set-model-custom_models")
    assert field.input_value().strip() == "[]"
    before = (demo.data_dir / "local.yaml").read_text()

    field.fill('[{"id": "web-custom", "context_window": 0}]')
    page.click("#set-model-custom_models-save")
    page.wait_for_selector("#set-model-custom_models-error:not(:empty)")
    assert "context_window" in page.text_content("#set-model-custom_models-error")
    field.fill('["web-custom",')
    page.click("#set-model-custom_models-save")
    page.wait_for_selector("#set-model-custom_models-error:has-text('Not valid JSON')")
    assert (demo.data_dir / "local.yaml").read_text() == before

    field.fill('["web-plain", {"id": "web-custom", "display_name": "Web custom", "context_window": 100000}]')
    page.click("#set-model-custom_models-save")
    page.wait_for_selector("#set-model-custom_models-save + span:has-text('Saved')")
    assert page.text_content("#set-model-custom_models-error") == ""
    page.select_option("#set-model-default_reasoning_effort", "high")
    page.click("#set-model-default_reasoning_effort-save")
    page.wait_for_selector("#set-model-default_reasoning_effort-save + span:has-text('Saved')")

    local = YAML(typ="safe").load((demo.data_dir / "local.yaml").read_text())
    assert local["model"]["default_reasoning_effort"] == "high"
    custom = local["model"]["custom_models"]
    assert custom[0] == "web-plain" and custom[1]["id"] == "web-custom" and custom[1]["context_window"] == 100000
    with demo.admin() as admin:
        listed = [m["id"] for m in admin.get("/v1/models").json()["data"]]
    assert "web-custom" in listed and "web-plain" in listed

    page.reload()  # the page shows what was saved; unset again, the effort leaves local.yaml's value null
    page.wait_for_selector("main[data-ready='settings']")
    assert '"web-custom"' in page.locator("#set-model-custom_models").input_value()
    page.select_option("#set-model-default_reasoning_effort", "")
    page.click("#set-model-default_reasoning_effort-save")
    page.wait_for_selector("#set-model-default_reasoning_effort-save + span:has-text('Saved')")
    local = YAML(typ="safe").load((demo.data_dir / "local.yaml").read_text())
    assert local["model"].get("default_reasoning_effort") is None
    # the one refusal from the store (its 400 and Chromium's console line) is all that went wrong
    assert len(problems.messages) == 2 and all("400" in m for m in problems.messages), problems.messages
