"""A provider's refusal relayed untranslated still carries what the client protocol's own errors carry: an
Anthropic client is told by `x-should-retry: false` that asking again cannot cure a 4xx (Claude Code would
otherwise retry it for minutes), as on the backend path."""

from __future__ import annotations

import httpx

from .helpers import provider_stack



async def test_a_provider_404_relayed_to_an_anthropic_client_says_do_not_retry(data_dir):
    async with provider_stack(data_dir) as stack:
        async with httpx.AsyncClient(base_url=stack.url, timeout=30) as raw:
            # the fake provider, like Anthropic's API, answers a model it does not have with 404
            response = await raw.post("/v1/messages", json={
                "model": "fakeclaude/claude-nope", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]},
                headers={"x-api-key": stack.key, "anthropic-version": "2023-06-01"})
        assert response.status_code == 404, response.text
        assert response.content == stack.fakes.sent[-1]  # the provider's own envelope, unchanged
        assert response.headers["x-codex-trio-provider"] == "fakeclaude"
        assert response.headers["x-should-retry"] == "false"


async def test_a_provider_400_relayed_to_an_openai_client_has_no_anthropic_header(data_dir):
    async with provider_stack(data_dir) as stack:
        async with httpx.AsyncClient(base_url=stack.url, timeout=30) as raw:
            response = await raw.post("/v1/responses", json={"model": "fakeresp/fake-resp"},
                                      headers={"authorization": f"Bearer {stack.key}"})
        assert response.status_code == 400, response.text
        assert "x-should-retry" not in response.headers
