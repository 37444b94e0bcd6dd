"""The request log over the admin API: filters and pages, the live tail (SSE), persisted errors, body capture
with secrets and images redacted, and the overhead header on every response."""

from __future__ import annotations

import base64

import orjson
import trio

from tests.telemetry.helpers import stack, wait_for_records

CHAT = "/v1/chat/completions"


def chat(text: str, model: str = "gpt-5.5", **extra):
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


async def test_filters_pages_and_the_fields_of_a_record(data_dir):
    async with stack(data_dir) as (sim, gateway, client):
        for i in range(4):
            assert (await client.post(CHAT, json=chat(f"number {i}"), headers={"user-agent": "agent/1.0"})).status_code == 200
        assert (await client.post(CHAT, json=chat("x", model="nope"))).status_code == 404
        response = await client.post("/v1/messages", json={"model": "gpt-5.5", "max_tokens": 20,
                                                            "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 200
        await wait_for_records(client, 6)

        page = (await client.get("/admin/logs", params={"limit": 2})).json()
        assert page["total"] == 6 and len(page["records"]) == 2
        assert page["records"][0]["protocol"] == "anthropic"  # newest first
        second = (await client.get("/admin/logs", params={"limit": 2, "offset": 2})).json()["records"]
        assert [r["id"] for r in second] != [r["id"] for r in page["records"]]

        errors = (await client.get("/admin/logs", params={"status": "4xx"})).json()["records"]
        assert len(errors) == 1
        error = errors[0]
        assert error["status"] == 404 and error["outcome"] == "error" and "nope" in error["error_text"]
        assert (await client.get("/admin/logs", params={"protocol": "openai", "model": "gpt-5.5"})).json()["total"] == 4
        found = (await client.get("/admin/logs", params={"text": "number 2"})).json()
        assert found["total"] == 0  # bodies are not searched unless captured; the text filter sees paths, models, UA
        assert (await client.get("/admin/logs", params={"text": "agent/1.0"})).json()["total"] == 4
        ok = (await client.get("/admin/logs", params={"status": "200", "protocol": "openai"})).json()["records"][0]
        account = gateway.services.pool.accounts()[0].id
        assert ok["account"] == account and ok["transport"] in ("websocket", "sse") and ok["client_ip"] == "127.0.0.1"
        assert ok["ttfb_ms"] > 0 and ok["duration_ms"] >= ok["ttfb_ms"] and ok["overhead_ms"] >= 0
        assert (await client.get("/admin/logs", params={"account": account})).json()["total"] == 5
        assert (await client.get("/admin/logs", params={"limit": 0})).status_code == 400


async def test_every_response_carries_the_overhead_header(data_dir):
    async with stack(data_dir) as (sim, gateway, client):
        for response in (await client.post(CHAT, json=chat("hi")), await client.get("/health"),
                         await client.get("/v1/models"), await client.get("/admin/logs"),
                         await client.post(CHAT, json=chat("hi", model="nope"))):
            assert float(response.headers["x-codex-trio-overhead-ms"]) >= 0, response.request.url
        async with client.stream("POST", CHAT, json=chat("hi", stream=True)) as streamed:
            assert float(streamed.headers["x-codex-trio-overhead-ms"]) >= 0
            await streamed.aread()


async def test_live_tail_streams_each_record_as_it_finishes(data_dir):
    async with stack(data_dir) as (sim, gateway, client):
        seen = []
        async with client.stream("GET", "/admin/logs/stream") as tail:
            assert tail.headers["content-type"].startswith("text/event-stream")
            lines = tail.aiter_lines()
            assert (await lines.__anext__()).startswith(":")
            with trio.fail_after(10):
                while gateway.services.telemetry.request_log.subscribers == 0:
                    await trio.sleep(0.01)
            assert (await client.post(CHAT, json=chat("tail me"))).status_code == 200
            with trio.fail_after(10):
                async for line in lines:
                    if line.startswith("data: "):
                        seen.append(orjson.loads(line[6:]))
                        break
        assert seen[0]["path"] == CHAT and seen[0]["status"] == 200 and seen[0]["output_tokens"] > 0
        with trio.fail_after(5):  # the reader went away: its subscription is gone
            while gateway.services.telemetry.request_log.subscribers:
                await trio.sleep(0.01)


async def test_errors_are_persisted_across_a_restart(data_dir):
    async with stack(data_dir) as (sim, gateway, client):
        assert (await client.post(CHAT, json=chat("x", model="missing-model"))).status_code == 404
        await wait_for_records(client, 1)
    async with stack(data_dir) as (sim, gateway, client):
        assert (await client.get("/admin/logs")).json()["total"] == 0  # the ring is memory only
        persisted = (await client.get("/admin/logs", params={"source": "errors"})).json()["records"]
        assert [r["status"] for r in persisted] == [404] and "missing-model" in persisted[0]["error_text"]


async def test_body_capture_is_off_by_default_and_redacts_images_and_secrets(data_dir):
    image = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + bytes(3000)).decode()
    async with stack(data_dir) as (sim, gateway, client):
        assert (await client.post(CHAT, json=chat("plain"))).status_code == 200
        record = (await wait_for_records(client, 1))[0]
        assert "bodies" not in record
        state = (await client.post("/admin/logs/state", json={"capture_bodies": True})).json()
        assert state["capture_bodies"] is True and state["enabled"] is True
        assert (await client.get("/admin/logs/state")).json()["capture_bodies"] is True
        message = {"role": "user", "content": [{"type": "text", "text": "what is this"},
                                               {"type": "image_url", "image_url": {"url": image}}]}
        body = {"model": "gpt-5.5", "messages": [message], "user": "someone"}
        assert (await client.post(CHAT, json=body)).status_code == 200
        captured = (await wait_for_records(client, 2))[0]["bodies"]
        assert "what is this" in captured["request"] and "[image redacted" in captured["request"]
        assert "base64," not in captured["request"]
        assert "chat.completion" in captured["response"]
        bad = await client.post("/admin/logs/state", json={"capture_bodies": "yes"})
        assert bad.status_code == 400
    # the switch is a setting: it was written to local.yaml
    assert "request_log_bodies: true" in (data_dir / "local.yaml").read_text()


def test_redaction_of_secrets_and_long_base64():
    from codex_trio.telemetry.redact import redact_body

    raw = orjson.dumps({"api_key": "sk-secret", "nested": {"refresh_token": "rt"}, "b64_json": "A" * 600,
                        "text": "keep me"})
    text = redact_body(raw, 10_000)
    assert "sk-secret" not in text and '"rt"' not in text and "A" * 600 not in text and "keep me" in text
    capped = redact_body(orjson.dumps({"text": "word " * 1000}), 300)
    assert len(capped.encode()) <= 300 + len("…[truncated]".encode()) and capped.endswith("…[truncated]")


async def test_each_turn_on_a_responses_websocket_is_recorded(data_dir):
    from wsproto.events import AcceptConnection

    from tests.e2e.test_openai_surfaces import WsClient
    from tests.conftest import api_key

    async with stack(data_dir) as (sim, gateway, client):
        socket = await WsClient.connect(str(client.base_url), "/v1/responses", api_key(gateway))
        assert isinstance(await socket.handshake(), AcceptConnection)
        first = await socket.turn({"type": "response.create", "model": "gpt-5.5", "input": "Socket turn one"})
        second = await socket.turn({"type": "response.create", "model": "gpt-5.5", "input": "Socket turn two"})
        await socket.stream.aclose()
        records = await wait_for_records(client, 2)
    usages = [turn[-1]["response"]["usage"] for turn in (second, first)]  # the log is newest first
    assert [r["protocol"] for r in records] == ["responses", "responses"]
    assert [r["path"] for r in records] == ["/v1/responses"] * 2 and records[0]["method"] == "WEBSOCKET"
    assert [(r["input_tokens"], r["output_tokens"]) for r in records] == [
        (u["input_tokens"], u["output_tokens"]) for u in usages]
    assert all(r["outcome"] == "ok" and r["status"] == 200 and r["account"] for r in records)


async def test_the_log_filters_by_client_key_under_client_key(data_dir):
    # `?key=` is read by the key check as the caller's API key (Gemini clients send it there), so a filter under
    # that name turned every call into a 401; the filter has its own name
    async with stack(data_dir) as (sim, gateway, client):
        created = (await client.post("/admin/client-keys", json={"name": "alice"})).json()
        keyed = {"authorization": f"Bearer {created['key']}"}
        assert (await client.post(CHAT, json=chat("with the key"), headers=keyed)).status_code == 200
        assert (await client.post(CHAT, json=chat("with the admin key"))).status_code == 200
        await wait_for_records(client, 2)
        for value in ("alice", created["id"]):
            page = (await client.get("/admin/logs", params={"client_key": value})).json()
            assert page["total"] == 1 and page["records"][0]["key_name"] == "alice"
