"""Fixtures for the end-to-end OpenAI surface tests: a simulator, the whole gateway on it, and the official SDK."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

from codex_trio.app import Gateway
from codex_trio.sim import Simulator, running_sim
from tests.conftest import api_key, gateway_on_sim


@dataclass
class Stack:
    sim: Simulator
    gateway: Gateway
    url: str
    key: str
    client: openai.AsyncOpenAI

    def upstream_turns(self) -> list[dict]:
        """Every turn the sim received, in order: POST bodies and `response.create` WebSocket frames."""
        turns: list[dict] = []
        for record in self.sim.requests_to("/codex/responses"):
            if record.method == "POST":
                turns.append(record.body)
            else:
                turns.extend(m for m in record.ws_messages if isinstance(m, dict))
        return turns

    def sockets(self) -> list:
        """The upstream WebSocket connections the sim accepted."""
        return self.sim.requests_to("/codex/responses", "GET")


async def open_stack(data_dir: Path, accounts: int = 1):
    async with running_sim(accounts=accounts) as sim:
        async with gateway_on_sim(data_dir, sim) as (gateway, url):
            key = api_key(gateway)
            client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30)
            try:
                yield Stack(sim, gateway, url, key, client)
            finally:
                await client.close()


@pytest.fixture
async def stack(data_dir: Path):
    async for item in open_stack(data_dir):
        yield item


@pytest.fixture
async def stack2(data_dir: Path):
    async for item in open_stack(data_dir, accounts=2):
        yield item
