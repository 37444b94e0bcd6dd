"""A provider's calls go through its own egress proxy when it has one, and a key the provider refuses becomes
a 502 naming the provider (never the client's 401: the client's gateway key was fine)."""

from __future__ import annotations

import openai
import pytest

from .fakes import OPENAI_KEY
from .helpers import add_providers, provider_stack


async def test_a_providers_egress_proxy_carries_its_calls(data_dir):
    async with provider_stack(data_dir, register=False) as stack:
        # The base URL's host does not resolve: only a proxy can reach it. The fake listener plays the HTTP proxy
        # (an absolute-form request line reaches its routes) and records the Host the gateway asked for.
        await add_providers(stack.admin, [{"provider": "custom", "label": "proxied", "apiKey": OPENAI_KEY,
                                           "baseUrl": "http://provider.invalid/v1", "proxy": stack.fakes.url,
                                           "models": ["fake-gpt"]}])
        client = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=stack.key, max_retries=0)
        reply = await client.chat.completions.create(model="fake-gpt", messages=[{"role": "user", "content": "x"}])
        assert reply.choices[0].message.content == "Hello from fake-openai!"
        assert stack.fakes.last("/chat/completions").headers["host"] == "provider.invalid"


async def test_a_refused_key_is_a_502_that_names_the_provider(data_dir):
    async with provider_stack(data_dir, register=False) as stack:
        await add_providers(stack.admin, [{"provider": "custom", "label": "wrongkey", "apiKey": "sk-not-the-right-one",
                                           "baseUrl": f"{stack.fakes.url}/v1", "models": ["fake-gpt"]}])
        client = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=stack.key, max_retries=0)
        with pytest.raises(openai.APIStatusError) as refused:
            await client.chat.completions.create(model="fake-gpt", messages=[{"role": "user", "content": "x"}])
        assert refused.value.status_code == 502
        assert "wrongkey refused its API key" in refused.value.message
        listed = (await stack.admin.get("/auth/api-keys")).json()["keys"]
        assert listed[0]["keysResting"][0] > 0  # the refused key rests
