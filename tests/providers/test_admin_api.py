"""The `/auth/api-keys*` admin API (the reference gateway's paths) and the provider store behind it: keys
encrypted at rest with a 0600 key file, masked in lists and exports unless asked, import / export round trip,
label, status, batch delete, model fetching, routing settings; the admin key required."""

from __future__ import annotations

import stat

import httpx

from codex_trio.providers.store import PROVIDERS_KEY

from .fakes import ANTHROPIC_KEY, GEMINI_KEY, OPENAI_KEY
from .helpers import provider_stack


async def test_keys_are_encrypted_at_rest_and_masked_unless_asked(data_dir):
    async with provider_stack(data_dir) as stack:
        listed = (await stack.admin.get("/auth/api-keys")).json()["keys"]
        assert {p["label"] for p in listed} == {"fakeai", "fakeresp", "fakeclaude", "fakegem"}
        text = (await stack.admin.get("/auth/api-keys")).text + (await stack.admin.get("/auth/api-keys/export")).text
        for secret in (OPENAI_KEY, ANTHROPIC_KEY, GEMINI_KEY):
            assert secret not in text
            for path in data_dir.iterdir():
                if path.is_file():
                    assert secret.encode() not in path.read_bytes(), path
        assert stat.S_IMODE((data_dir / PROVIDERS_KEY).stat().st_mode) == 0o600
        assert stat.S_IMODE((data_dir / "operator.sqlite3").stat().st_mode) == 0o600
        revealed = (await stack.admin.get("/auth/api-keys/export?reveal=true")).json()
        assert {k for p in revealed["providers"] for k in p["keys"]} == {OPENAI_KEY, ANTHROPIC_KEY, GEMINI_KEY}


async def test_export_import_round_trip_into_another_gateway(data_dir, tmp_path):
    async with provider_stack(data_dir) as stack:
        exported = (await stack.admin.get("/auth/api-keys/export?reveal=true")).json()
        old_url = stack.fakes.url
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    async with provider_stack(other, register=False) as stack:
        for entry in exported["providers"]:  # the fakes of this stack listen elsewhere
            entry["baseUrl"] = entry["baseUrl"].replace(old_url, stack.fakes.url)
        result = (await stack.admin.post("/auth/api-keys/import", json=exported)).json()
        assert result == {"added": 4, "updated": 0, "failed": 0, "errors": []}
        again = (await stack.admin.post("/auth/api-keys/import", json=exported)).json()
        assert again["updated"] == 4 and again["added"] == 0
        client = httpx.AsyncClient(base_url=stack.url, headers={"authorization": f"Bearer {stack.key}"})
        reply = await client.post("/v1/chat/completions", json={"model": "fake-gpt", "messages": [
            {"role": "user", "content": "hi"}]})
        assert reply.json()["choices"][0]["message"]["content"] == "Hello from fake-openai!"
        await client.aclose()


async def test_label_status_batch_delete_and_model_fetch(data_dir):
    async with provider_stack(data_dir) as stack:
        providers = {p["label"]: p for p in (await stack.admin.get("/auth/api-keys")).json()["keys"]}
        fakeai = providers["fakeai"]["id"]
        renamed = await stack.admin.patch(f"/auth/api-keys/{fakeai}/label", json={"label": "mine"})
        assert renamed.json()["provider"]["label"] == "mine"
        chat = {"model": "mine/fake-gpt", "messages": [{"role": "user", "content": "hi"}]}
        assert (await stack.admin.post("/v1/chat/completions", json=chat)).status_code == 200
        disabled = await stack.admin.patch(f"/auth/api-keys/{fakeai}/status", json={"status": "disabled"})
        assert disabled.json()["provider"]["enabled"] is False
        refused = await stack.admin.post("/v1/chat/completions", json=chat)
        assert refused.status_code == 404 and refused.json()["error"]["param"] == "model"
        await stack.admin.patch(f"/auth/api-keys/{fakeai}/status", json={"status": "active"})
        fetched = await stack.admin.post("/auth/api-keys/models", json={"id": fakeai})
        assert fetched.json()["models"] == ["fake-gpt", "fake-embed"]
        candidate = await stack.admin.post("/auth/api-keys/models", json={
            "provider": "anthropic", "baseUrl": stack.fakes.url, "apiKey": ANTHROPIC_KEY})
        assert candidate.json()["models"] == ["claude-fake-1"]
        bad = await stack.admin.post("/auth/api-keys/models", json={
            "provider": "custom", "baseUrl": f"{stack.fakes.url}/v1", "apiKey": "sk-wrong-key-12345"})
        assert bad.status_code == 502 and "HTTP 401" in bad.json()["error"]["message"]
        ids = [p["id"] for p in providers.values() if p["label"] != "fakeai"]
        deleted = await stack.admin.post("/auth/api-keys/batch-delete", json={"ids": ids})
        assert deleted.json() == {"deleted": 3}
        assert [p["label"] for p in (await stack.admin.get("/auth/api-keys")).json()["keys"]] == ["mine"]
        assert (await stack.admin.delete(f"/auth/api-keys/{fakeai}")).json() == {"deleted": 1}
        assert (await stack.admin.delete(f"/auth/api-keys/{fakeai}")).status_code == 404


async def test_bad_input_gets_a_4xx_that_says_what_to_do(data_dir):
    async with provider_stack(data_dir, register=False) as stack:
        for body, field in (({"provider": "nope", "apiKey": "k"}, "provider"),
                            ({"provider": "custom", "apiKey": "k"}, "baseUrl"),
                            ({"provider": "openai"}, "apiKey"),
                            ({"provider": "openai", "apiKey": "k", "label": "has space"}, "label")):
            response = await stack.admin.post("/auth/api-keys", json=body)
            assert response.status_code == 400 and response.json()["error"]["param"] == field, response.text
        await stack.admin.post("/auth/api-keys", json={"provider": "openai", "apiKey": "k1", "label": "x",
                                                       "models": ["m"]})
        duplicate = await stack.admin.post("/auth/api-keys", json={"provider": "openai", "apiKey": "k2",
                                                                   "label": "x", "models": ["m"]})
        assert duplicate.status_code == 409 and "label" in duplicate.json()["error"]["message"]


async def test_routing_settings_and_admin_key_required(data_dir):
    async with provider_stack(data_dir, register=False) as stack:
        changed = await stack.admin.patch("/auth/api-keys/settings", json={"fallback": True,
                                                                           "fallback_model": "fakeai/fake-gpt"})
        assert changed.json()["fallback"] is True
        assert stack.gateway.config.settings.providers.fallback_model == "fakeai/fake-gpt"
        invalid = await stack.admin.patch("/auth/api-keys/settings", json={"key_cooldown_seconds": -1})
        assert invalid.status_code == 400
        async with httpx.AsyncClient(base_url=stack.url) as anonymous:
            for method, path in (("GET", "/auth/api-keys"), ("GET", "/auth/api-keys/export"),
                                 ("POST", "/auth/api-keys"), ("DELETE", "/auth/api-keys/x")):
                assert (await anonymous.request(method, path)).status_code == 401
