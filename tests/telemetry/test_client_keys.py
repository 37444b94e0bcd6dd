"""Client keys through the official SDKs: each limit answers in the client's own protocol (the SDK's error type,
a usable message), before any upstream call and without touching an account; keys never reach the admin API."""

from __future__ import annotations

import os
import subprocess
import sys

import anthropic
import httpx
import openai
import pytest
import trio
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.telemetry.helpers import stack, wait_for_records

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


async def create_key(admin: httpx.AsyncClient, name: str = "team", **limits) -> dict:
    response = await admin.post("/admin/client-keys", json={"name": name, **limits})
    assert response.status_code == 201, response.text
    return response.json()


def turns_sent(sim) -> int:
    return sum(1 if r.method == "POST" else len([m for m in r.ws_messages if isinstance(m, dict)])
               for r in sim.requests_to("/codex/responses"))


def openai_client(url: str, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30)


def say(text: str = "hello") -> dict:
    return {"model": "gpt-5.5", "messages": [{"role": "user", "content": text}]}


async def test_a_client_key_is_shown_once_stored_hashed_and_serves_the_apis(data_dir):
    async with stack(data_dir) as (sim, gateway, admin):
        created = await create_key(admin, "alice")
        secret = created["key"]
        assert secret.startswith("ctk_") and secret.startswith(created["prefix"])
        listed = (await admin.get("/admin/client-keys")).json()["keys"]
        assert [k["id"] for k in listed] == [created["id"]] and "key" not in listed[0] and "key_hash" not in listed[0]
        client = openai_client(str(admin.base_url), secret)
        reply = await client.chat.completions.create(**say())
        assert reply.choices[0].message.content
        records = await wait_for_records(admin, 1)
        assert records[0]["key_id"] == created["id"] and records[0]["key_name"] == "alice"
        summary = (await admin.get("/admin/usage-stats/summary")).json()
        assert [(r["key_id"], r["key_name"]) for r in summary["by_key"]] == [(created["id"], "alice")]
        await client.close()
    # only the hash and the prefix are on disk
    from tests.telemetry.helpers import query_db

    assert secret not in str(query_db(data_dir, "SELECT * FROM client_keys"))


async def test_client_keys_never_reach_the_admin_api_or_the_metrics(data_dir):
    async with stack(data_dir) as (sim, gateway, admin):
        secret = (await create_key(admin))["key"]
        headers = {"authorization": f"Bearer {secret}"}
        for path in ("/admin/client-keys", "/admin/settings", "/auth/accounts", "/admin/usage-stats/summary"):
            response = await admin.get(path, headers=headers)
            assert response.status_code == 403, path
            assert "admin key" in response.json()["error"]["message"]
        assert (await admin.get("/metrics", headers=headers)).status_code == 401


async def test_model_not_allowed_is_a_403_in_every_protocol(data_dir):
    async with stack(data_dir) as (sim, gateway, admin):
        url = str(admin.base_url)
        secret = (await create_key(admin, allowed_models=["gpt-5.4*"]))["key"]
        before = turns_sent(sim)
        client = openai_client(url, secret)
        with pytest.raises(openai.PermissionDeniedError) as denied:
            await client.chat.completions.create(**say())
        assert "may not use the model 'gpt-5.5'" in denied.value.message
        await client.close()
        claude = anthropic.AsyncAnthropic(api_key=secret, base_url=url, max_retries=0)
        with pytest.raises(anthropic.PermissionDeniedError) as denied:
            # sonnet is an alias of gpt-5.5: the allow-list applies after alias resolution
            await claude.messages.create(model="claude-sonnet-4-6", max_tokens=50,
                                         messages=[{"role": "user", "content": "hi"}])
        assert "gpt-5.5" in denied.value.message
        await claude.close()
        gemini = genai.Client(api_key=secret, http_options=genai_types.HttpOptions(base_url=url + "/",
                                                                                     api_version="v1beta"))
        with pytest.raises(genai_errors.ClientError) as denied:
            await trio.to_thread.run_sync(lambda: gemini.models.generate_content(model="gpt-5.5", contents="hi"))
        assert denied.value.code == 403 and "may not use the model" in denied.value.message
        gemini.close()
        compact = await admin.post("/v1/responses/compact", headers={"authorization": f"Bearer {secret}"},
                                   json={"model": "gpt-5.5", "input": [{"role": "user", "content": "hi"}]})
        assert compact.status_code == 403 and compact.json()["error"]["code"] == "model_not_allowed"
        assert turns_sent(sim) == before and not sim.requests_to("/responses/compact")  # refused before any upstream call


async def test_requests_per_minute_and_concurrency_are_429_with_retry_after(data_dir):
    async with stack(data_dir, clock=True) as (sim, gateway, admin):
        # a stream that would run for a minute: the test hangs up long before
        sim.script({"match": {"user_text": "SLOW"}, "reply": {"text_length": 48000, "chunk_size": 4, "pacing_ms": 5}})
        url = str(admin.base_url)
        limited = (await create_key(admin, "rpm", requests_per_minute=2))["key"]
        client = openai_client(url, limited)
        for _ in range(2):
            await client.chat.completions.create(**say())
        sent = turns_sent(sim)
        with pytest.raises(openai.RateLimitError) as limited_error:
            await client.chat.completions.create(**say())
        assert "2 requests per minute" in limited_error.value.message
        assert 1 <= int(limited_error.value.response.headers["retry-after"]) <= 60
        assert turns_sent(sim) == sent
        sim.clock.advance(61)  # the minute passes (the gateway runs on the simulator's clock)
        await client.chat.completions.create(**say())
        await client.close()

        single = (await create_key(admin, "single", max_concurrency=1))["key"]
        headers = {"authorization": f"Bearer {single}"}

        async def hold_a_stream(task_status=trio.TASK_STATUS_IGNORED) -> None:
            # keeps reading (a client that stops reading could be taken for one that left)
            async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as http:
                async with http.stream("POST", "/v1/chat/completions", json={**say("SLOW"), "stream": True}) as r:
                    assert r.status_code == 200
                    async for _ in r.aiter_bytes():
                        task_status.started()
                        task_status = trio.TASK_STATUS_IGNORED

        async with trio.open_nursery() as nursery:
            await nursery.start(hold_a_stream)
            claude = anthropic.AsyncAnthropic(api_key=single, base_url=url, max_retries=0)
            with pytest.raises(anthropic.RateLimitError) as busy:
                await claude.messages.create(model="gpt-5.5", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
            assert "already has 1 requests running" in busy.value.message
            assert busy.value.response.headers["retry-after"] == "1"
            await claude.close()
            nursery.cancel_scope.cancel()
        # the slot is given back when the stream ends
        async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as http:
            with trio.fail_after(10):
                while (await http.post("/v1/chat/completions", json=say())).status_code == 429:
                    await trio.sleep(0.05)


async def test_token_budget_resets_at_the_window_edge(data_dir):
    async with stack(data_dir, clock=True) as (sim, gateway, admin):
        # start well inside a UTC day, so the first requests and the refusal share it
        now = sim.clock.now()
        sim.clock.advance((now // 86400 + 1) * 86400 + 3600 - now)
        key = await create_key(admin, "budget", tokens_per_day=10)
        client = openai_client(str(admin.base_url), key["key"])
        first = await client.chat.completions.create(**say("a question long enough to use the budget"))
        assert first.usage.total_tokens >= 10
        await wait_for_records(admin, 1)
        with pytest.raises(openai.RateLimitError) as spent:
            await client.chat.completions.create(**say())
        assert "token budget for this day" in spent.value.message
        retry_after = int(spent.value.response.headers["retry-after"])
        assert 22 * 3600 - 5 <= retry_after <= 23 * 3600  # until the next UTC midnight
        shown = (await admin.get(f"/admin/client-keys/{key['id']}")).json()
        assert shown["tokens_this_day"] == first.usage.total_tokens
        sim.clock.advance(retry_after + 1)
        again = await client.chat.completions.create(**say())
        assert again.choices[0].message.content
        await client.close()


async def test_expired_disabled_and_revoked_keys_are_401(data_dir):
    async with stack(data_dir, clock=True) as (sim, gateway, admin):
        url = str(admin.base_url)
        expiring = await create_key(admin, "short", expires_at=sim.clock.now() + 60)
        client = openai_client(url, expiring["key"])
        await client.chat.completions.create(**say())
        sim.clock.advance(61)
        with pytest.raises(openai.AuthenticationError) as expired:
            await client.chat.completions.create(**say())
        assert "expired" in expired.value.message
        await client.close()

        other = await create_key(admin, "other")
        patched = await admin.patch(f"/admin/client-keys/{other['id']}", json={"enabled": False})
        assert patched.status_code == 200 and patched.json()["enabled"] is False
        client = openai_client(url, other["key"])
        with pytest.raises(openai.AuthenticationError) as disabled:
            await client.models.list()
        assert "disabled" in disabled.value.message
        assert (await admin.delete(f"/admin/client-keys/{other['id']}")).status_code == 200
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()
        await client.close()
        bad = await admin.patch(f"/admin/client-keys/{expiring['id']}", json={"rpm": 5})
        assert bad.status_code == 400 and "Unknown client-key field" in bad.json()["error"]["message"]


async def test_a_key_made_with_the_cli_works_on_the_running_gateway_and_revoking_it_stops_it(data_dir):
    async with stack(data_dir) as (sim, gateway, admin):
        env = {**os.environ, "PYTHONPATH": REPO}

        def cli(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "codex_trio.cli", *args, "--data-dir", str(data_dir)],
                                  capture_output=True, text=True, env=env, timeout=60)

        created = await trio.to_thread.run_sync(cli, "keys", "create", "from-cli", "--rpm", "100")
        assert created.returncode == 0, created.stderr
        secret = next(line.strip() for line in created.stdout.splitlines() if line.strip().startswith("ctk_"))
        headers = {"authorization": f"Bearer {secret}"}
        with trio.fail_after(10):
            while (await admin.post("/v1/chat/completions", json=say(), headers=headers)).status_code == 401:
                await trio.sleep(0.1)
        listed = await trio.to_thread.run_sync(cli, "keys", "list")
        assert "from-cli" in listed.stdout and secret not in listed.stdout
        key_id = next(k["id"] for k in (await admin.get("/admin/client-keys")).json()["keys"])
        revoked = await trio.to_thread.run_sync(cli, "keys", "revoke", key_id)
        assert revoked.returncode == 0, revoked.stderr
        with trio.fail_after(10):
            while (await admin.post("/v1/chat/completions", json=say(), headers=headers)).status_code == 200:
                await trio.sleep(0.1)
        assert (await admin.post("/v1/chat/completions", json=say(), headers=headers)).status_code == 401
        missing = await trio.to_thread.run_sync(cli, "keys", "revoke", "key_nope")
        assert missing.returncode == 1 and "no client key" in missing.stderr


async def test_client_keys_never_reach_the_proxy_pool_under_its_reference_paths(data_dir):
    async with stack(data_dir) as (sim, gateway, admin):
        secret = (await create_key(admin))["key"]
        response = await admin.get("/api/proxies", headers={"authorization": f"Bearer {secret}"})
        assert response.status_code == 403 and "admin key" in response.json()["error"]["message"]
