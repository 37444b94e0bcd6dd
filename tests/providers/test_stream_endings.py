"""A provider stream that ends before its terminal event reaches the client with its protocol's terminal
error, passed through or translated, exactly as a cut backend stream would."""

from __future__ import annotations

import anthropic
import httpx
import orjson
import pytest

from .fakes import CUT_MODEL
from .helpers import provider_stack


async def test_a_cut_passthrough_stream_ends_with_the_openai_error_frame(data_dir):
    async with provider_stack(data_dir) as stack:
        async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
            response = await client.post("/v1/chat/completions", headers={"authorization": f"Bearer {stack.key}"},
                                         json={"model": CUT_MODEL, "stream": True,
                                               "messages": [{"role": "user", "content": "hi"}]})
        sent = stack.fakes.sent[-1]
        assert response.content.startswith(sent)  # what the provider said, unchanged …
        tail = response.content[len(sent):].decode()
        frames = [line[6:] for line in tail.splitlines() if line.startswith("data: ")]
        assert frames[-1] == "[DONE]"  # … then the terminal error and the end
        assert orjson.loads(frames[-2])["error"]["code"] == "premature_close"


async def test_a_cut_translated_stream_ends_with_the_anthropic_error_event(data_dir):
    async with provider_stack(data_dir) as stack:
        client = anthropic.AsyncAnthropic(base_url=stack.url, api_key=stack.key, max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as broken:
            async with client.messages.stream(model=CUT_MODEL, max_tokens=50,
                                              messages=[{"role": "user", "content": "hi"}]) as stream:
                async for _ in stream:
                    pass
        assert "before it was complete" in str(broken.value)
        with pytest.raises(anthropic.InternalServerError) as collected:
            await client.messages.create(model=CUT_MODEL, max_tokens=50, messages=[{"role": "user", "content": "hi"}])
        assert collected.value.status_code == 502 and collected.value.body["type"] == "error"
