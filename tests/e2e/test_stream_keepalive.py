"""Keep-alives during a long upstream silence, in a form each protocol's real clients accept (issue 12 item 1).

The simulator answers with a pause before the first text (after the turn has started, so the response head
is already out); the gateway's heartbeat interval is shortened so the pause spans several heartbeats."""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import anthropic
import httpx
import openai
import orjson
import trio
from google import genai
from google.genai import types

from codex_trio.sim import running_sim
from tests.conftest import api_key, gateway_on_sim

HEARTBEAT_SECONDS = 0.2
TEXT = "After a long think: forty-two."
# Silent for 1.2 s after `response.output_item.added` (the turn has started, nothing to show yet).
PAUSED_REPLY = {"match": {"user_text": "think"}, "reply": {"text": TEXT, "idle_gap_ms": 1200, "idle_gap_after": 3}}
GEMINI_MODEL = "gemini-2.5-pro"
# @google/genai (bundled by Gemini CLI) reads an SSE stream with this expression, anchored at the start of its
# buffer: one `data:` event at a time. Bytes that are not such an event are never consumed and stall it.
GEMINI_CLI_EVENT = re.compile(r"^data: (.*)(?:\n\n|\r\r|\r\n\r\n)")


@asynccontextmanager
async def paused_gateway(data_dir) -> AsyncIterator[tuple[Any, str, str]]:
    async with running_sim(accounts=1) as sim:
        sim.script(PAUSED_REPLY)
        local = {"server": {"heartbeat_seconds": HEARTBEAT_SECONDS}}
        async with gateway_on_sim(data_dir, sim, local=local) as (gateway, url):
            yield sim, url, api_key(gateway)


def gemini_cli_parse(body: bytes) -> list[dict]:
    """Gemini CLI's parsing rule applied to a whole body as it arrived; fails if anything is left unparsed."""
    buffer, events = body.decode(), []
    while (match := GEMINI_CLI_EVENT.match(buffer)) is not None:
        events.append(orjson.loads(match.group(1)))
        buffer = buffer[match.end():]
    assert buffer.strip() == "", f"Gemini CLI would stall on {buffer[:60]!r}"
    return events


async def test_gemini_sse_keepalive_is_accepted_by_google_genai_and_gemini_cli(data_dir):
    async with paused_gateway(data_dir) as (_, url, key):
        transport = httpx.Client(timeout=30)
        client = genai.Client(api_key=key, http_options=types.HttpOptions(base_url=url + "/", api_version="v1beta",
                                                                          httpx_client=transport))
        try:
            chunks = await trio.to_thread.run_sync(lambda: list(client.models.generate_content_stream(
                model=GEMINI_MODEL, contents="think hard")))
        finally:
            client.close()
            transport.close()
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            raw = await http.post(f"/v1beta/models/{GEMINI_MODEL}:streamGenerateContent?alt=sse",
                                  headers={"x-goog-api-key": key},
                                  json={"contents": [{"role": "user", "parts": [{"text": "think again"}]}]})
    assert "".join(c.text or "" for c in chunks) == TEXT
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    events = gemini_cli_parse(raw.content)
    texts = [p.get("text") for e in events for p in e["candidates"][0]["content"]["parts"]]
    assert "".join(texts) == TEXT and events[-1]["candidates"][0]["finishReason"] == "STOP"
    keepalives = texts[: texts.index(next(t for t in texts if t))]
    assert len(keepalives) >= 3  # the pause was kept alive with (empty) chunks, several times
    assert all("finishReason" not in e["candidates"][0] for e in events[:-1])


async def test_gemini_json_array_stream_stays_one_json_document(data_dir):
    async with paused_gateway(data_dir) as (_, url, key):
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            raw = await http.post(f"/v1beta/models/{GEMINI_MODEL}:streamGenerateContent",
                                  headers={"x-goog-api-key": key},
                                  json={"contents": [{"role": "user", "parts": [{"text": "think"}]}]})
    chunks = orjson.loads(raw.content)
    assert "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"]) == TEXT


async def test_openai_and_anthropic_sdks_read_through_their_keepalives(data_dir):
    async with paused_gateway(data_dir) as (_, url, key):
        chat = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30)
        claude = anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0, timeout=30)
        try:
            stream = await chat.chat.completions.create(model="gpt-5.5", stream=True,
                                                        messages=[{"role": "user", "content": "think"}])
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            async with claude.messages.stream(model="claude-sonnet-4-6", max_tokens=100,
                                              messages=[{"role": "user", "content": "think"}]) as events:
                message = await events.get_final_message()
        finally:
            await chat.close()
            await claude.close()
    assert text == TEXT
    assert message.content[0].text == TEXT
