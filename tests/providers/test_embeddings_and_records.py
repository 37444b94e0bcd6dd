"""`POST /v1/embeddings` through the openai SDK (providers only; none configured → a 400 naming the fix), key
rotation on 429, and usage / request log / metrics recording the provider as the "account"."""

from __future__ import annotations

import openai
import pytest
import trio

from .fakes import LIMITED_KEY, OPENAI_KEY
from .helpers import add_providers, provider_stack


async def test_embeddings_through_the_openai_sdk(data_dir):
    async with provider_stack(data_dir) as stack:
        client = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=stack.key, max_retries=0)
        result = await client.embeddings.create(model="fake-embed", input=["one", "three"])
        assert [d.embedding for d in result.data] == [[0.25, -0.5, 3.0], [0.25, -0.5, 5.0]]
        assert result.usage.prompt_tokens == 6
        received = stack.fakes.last("/embeddings")
        assert received.headers["authorization"] == f"Bearer {OPENAI_KEY}" and received.body["model"] == "fake-embed"
        prefixed = await client.embeddings.create(model="fakeai/fake-embed", input="x")
        assert prefixed.data[0].embedding == [0.25, -0.5, 1.0]
        with pytest.raises(openai.BadRequestError) as unknown:
            await client.embeddings.create(model="no-such-embedder", input="x")
        assert "no-such-embedder" in unknown.value.message


async def test_embeddings_without_a_provider_is_a_400_naming_the_fix(data_dir):
    async with provider_stack(data_dir, register=False) as stack:
        client = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=stack.key, max_retries=0)
        with pytest.raises(openai.BadRequestError) as refused:
            await client.embeddings.create(model="text-embedding-3-small", input="x")
        assert refused.value.status_code == 400
        assert "codex-trio providers add" in refused.value.message and "/auth/api-keys" in refused.value.message


async def wait_for_records(stack, count: int) -> list:
    with trio.fail_after(10):
        while True:
            page = (await stack.admin.get("/admin/logs", params={"limit": 100})).json()
            if page["total"] >= count:
                return page["records"]
            await trio.sleep(0.05)


async def test_a_rate_limited_key_rests_and_the_next_key_serves_and_records_name_the_provider(data_dir):
    async with provider_stack(data_dir, register=False) as stack:
        await add_providers(stack.admin, [{"provider": "custom", "label": "rotating", "baseUrl": f"{stack.fakes.url}/v1",
                                           "keys": [LIMITED_KEY, OPENAI_KEY], "models": ["fake-gpt"]}])
        client = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=stack.key, max_retries=0)
        for _ in range(2):
            reply = await client.chat.completions.create(model="fake-gpt", messages=[{"role": "user", "content": "x"}])
            assert reply.choices[0].message.content == "Hello from fake-openai!"
        auths = [r.headers["authorization"] for r in stack.fakes.received if "/chat/completions" in r.path]
        # the limited key is tried once, then rests: the second request goes straight to the good key
        assert auths == [f"Bearer {LIMITED_KEY}", f"Bearer {OPENAI_KEY}", f"Bearer {OPENAI_KEY}"]
        stream = await client.chat.completions.create(model="fake-gpt", stream=True,
                                                      stream_options={"include_usage": True},
                                                      messages=[{"role": "user", "content": "x"}])
        assert [c async for c in stream]
        records = await wait_for_records(stack, 3)
        assert {r["account"] for r in records} == {"provider:rotating"}
        assert all(r["input_tokens"] == 11 and r["output_tokens"] == 7 for r in records), records
        summary = (await stack.admin.get("/admin/usage-stats/summary")).json()
        assert [(row["account"], row["requests"]) for row in summary["by_account"]] == [("provider:rotating", 3)]
        metrics = (await stack.admin.get("/metrics")).text
        assert 'codex_trio_tokens_total{kind="input",model="fake-gpt"} 33.0' in metrics
