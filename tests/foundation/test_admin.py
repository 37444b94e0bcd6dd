"""Admin settings API: validated edits written back to local.yaml round-trip; Ollama controls."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import api_key, running_gateway
from tests.foundation.test_serving import _free_port


async def test_settings_patch_is_validated_and_written_back_keeping_comments(data_dir: Path):
    (data_dir / "local.yaml").write_text("# keep me\nmodel:\n  default: gpt-5.4  # my default\n")
    async with running_gateway(data_dir, install=True) as (gateway, url):
        headers = {"authorization": f"Bearer {api_key(gateway)}"}
        async with httpx.AsyncClient(base_url=url, headers=headers) as client:
            current = (await client.get("/admin/settings")).json()
            assert current["server"]["proxy_api_key"] == "********"
            bad = await client.patch("/admin/settings", json={"server": {"port": 70000}})
            unknown = await client.patch("/admin/settings", json={"modle": {}})
            good = await client.patch("/admin/settings", json={"model": {"default_reasoning_effort": "high"}})
            not_json = await client.patch("/admin/settings", content=b"{nope")
    assert bad.status_code == 400 and "server.port" in bad.json()["error"]["message"]
    assert unknown.status_code == 400 and "modle" in unknown.json()["error"]["message"]
    assert not_json.status_code == 400 and not_json.json()["error"]["type"] == "invalid_request_error"
    assert good.status_code == 200 and good.json()["settings"]["model"]["default_reasoning_effort"] == "high"
    text = (data_dir / "local.yaml").read_text()
    assert "# keep me" in text and "default: gpt-5.4  # my default" in text and "default_reasoning_effort: high" in text


async def test_ollama_admin_endpoints_start_and_stop_the_listener(data_dir: Path):
    port = _free_port()
    async with running_gateway(data_dir, install=True) as (gateway, url):
        headers = {"authorization": f"Bearer {api_key(gateway)}"}
        async with httpx.AsyncClient(base_url=url, headers=headers) as client:
            assert (await client.get("/admin/ollama-status")).json()["running"] is False
            started = await client.post("/admin/ollama-settings", json={"enabled": True, "port": port})
            assert started.json()["status"]["running"] is True
            assert (await client.get(f"http://127.0.0.1:{port}/api/version")).status_code == 200
            assert "enabled: true" in (data_dir / "local.yaml").read_text()
            refused = await client.post("/admin/ollama-settings", json={"host": "0.0.0.0"})
            assert refused.json()["status"]["state"] == "error"
            assert "allow_non_loopback" in (await client.get("/admin/ollama-status")).json()["error"]
            stopped = await client.post("/admin/ollama-settings", json={"enabled": False, "host": "127.0.0.1"})
            assert stopped.json()["status"]["running"] is False
            typo = await client.post("/admin/ollama-settings", json={"enable": True})
            assert typo.status_code == 400
