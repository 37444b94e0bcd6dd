"""Anthropic clients are told whether retrying can help (issue 12 item 8), as the real API does with its
`x-should-retry` header: a wrong key or a bad request fails at once (Claude Code otherwise retried a wrong
key ~10 times over ~3 minutes), while overload and rate limits keep their retries."""

from __future__ import annotations

import anthropic
import pytest

from codex_trio.sim import running_sim
from tests.conftest import api_key, gateway_on_sim

MESSAGE = {"role": "user", "content": "hi"}


def counting_client(url: str, key: str, *, max_retries: int) -> tuple[anthropic.AsyncAnthropic, list]:
    """The official SDK, with what it put on the wire recorded."""
    wire: list = []

    async def record(request) -> None:
        wire.append(request)

    http = anthropic.DefaultAsyncHttpxClient(event_hooks={"request": [record]})
    client = anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=max_retries, timeout=30,
                                      http_client=http)
    return client, wire


@pytest.fixture
async def gateway(data_dir):
    async with running_sim(accounts=1) as sim:
        async with gateway_on_sim(data_dir, sim) as (gateway, url):
            yield sim, url, api_key(gateway)


async def test_wrong_key_fails_at_once_with_one_request(gateway):
    _, url, _ = gateway
    client, wire = counting_client(url, "sk-wrong", max_retries=3)
    async with client:
        with pytest.raises(anthropic.AuthenticationError) as failure:
            await client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=[MESSAGE])
    assert len(wire) == 1
    assert failure.value.response.headers["x-should-retry"] == "false"
    assert failure.value.body["error"]["type"] == "authentication_error"


async def test_client_mistakes_are_not_retried(gateway):
    _, url, key = gateway
    client, wire = counting_client(url, key, max_retries=3)
    async with client:
        with pytest.raises(anthropic.BadRequestError) as bad:
            await client.messages.create(model="claude-sonnet-4-6", max_tokens=0, messages=[MESSAGE])
        with pytest.raises(anthropic.BadRequestError) as empty:
            await client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=[])
    assert bad.value.response.headers["x-should-retry"] == "false"
    assert empty.value.response.headers["x-should-retry"] == "false"
    assert len(wire) == 2


async def test_rate_limits_keep_their_retries(gateway):
    sim, url, key = gateway
    sim.script({"reply": {"rate_limit": {"resets_in_seconds": 1}}})
    client, wire = counting_client(url, key, max_retries=1)
    async with client:
        with pytest.raises(anthropic.APIStatusError) as limited:
            await client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=[MESSAGE])
    assert limited.value.status_code in (429, 529)
    assert limited.value.response.headers["x-should-retry"] == "true"
    assert len(wire) == 2  # the SDK retried, as it should
