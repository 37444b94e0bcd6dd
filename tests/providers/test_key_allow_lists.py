"""Client-key model allow-lists name a provider's model as the clients do, `<provider label>/<model>`: a key
allowed only `fakeai/fake-gpt` may use it (by either name), a key allowed other models is refused before the
provider is asked, and a bare model name in an allow-list does not open a provider's model of that name."""

from __future__ import annotations

import anthropic
import openai
import pytest

from .helpers import provider_stack


async def new_key(admin, *allowed: str) -> str:
    response = await admin.post("/admin/client-keys", json={"name": "team", "allowed_models": list(allowed)})
    assert response.status_code == 201, response.text
    return response.json()["key"]


def provider_calls(fakes, path: str) -> int:
    return len([r for r in fakes.received if r.path.endswith(path)])


async def test_a_key_allowed_the_prefixed_provider_model_may_use_it(data_dir):
    async with provider_stack(data_dir) as stack:
        secret = await new_key(stack.admin, "fakeai/fake-gpt")
        client = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=secret, max_retries=0)
        for name in ("fakeai/fake-gpt", "fake-gpt"):  # explicit prefix, and found in the provider's model list
            reply = await client.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}])
            assert reply.choices[0].message.content == "Hello from fake-openai!"
        wildcard = await new_key(stack.admin, "fakeclaude/*")
        claude = anthropic.AsyncAnthropic(base_url=stack.url, api_key=wildcard, max_retries=0)
        message = await claude.messages.create(model="claude-fake-1", max_tokens=50,
                                               messages=[{"role": "user", "content": "hi"}])
        assert message.content[0].text == "Hello from fake-anthropic!"
        await client.close()
        await claude.close()


async def test_a_key_not_allowed_the_provider_model_is_refused_before_the_provider_is_asked(data_dir):
    async with provider_stack(data_dir) as stack:
        before = provider_calls(stack.fakes, "/chat/completions")
        for allowed in (["gpt-5.5"], ["fake-gpt"], ["fakeclaude/*"]):
            secret = await new_key(stack.admin, *allowed)
            client = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=secret, max_retries=0)
            for name in ("fakeai/fake-gpt", "fake-gpt"):
                with pytest.raises(openai.PermissionDeniedError) as denied:
                    await client.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}])
                assert "may not use the model 'fakeai/fake-gpt'" in denied.value.message, allowed
            await client.close()
        embeddings = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=await new_key(stack.admin, "fake-embed"),
                                        max_retries=0)
        with pytest.raises(openai.PermissionDeniedError):
            await embeddings.embeddings.create(model="fake-embed", input="hi")
        await embeddings.close()
        assert provider_calls(stack.fakes, "/chat/completions") == before
        assert provider_calls(stack.fakes, "/embeddings") == 0
