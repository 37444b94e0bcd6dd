"""A whole gateway (no accounts needed) with the fake providers registered through the admin API."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Mapping

import httpx

from codex_trio.app import Gateway
from tests.conftest import api_key, running_gateway

from .fakes import ANTHROPIC_KEY, GEMINI_KEY, OPENAI_KEY, FakeProviders, running_fakes


@dataclass
class ProviderStack:
    gateway: Gateway
    url: str
    key: str
    fakes: FakeProviders
    admin: httpx.AsyncClient  # with the admin key


def provider_bodies(fakes: FakeProviders) -> list[dict[str, Any]]:
    return [
        {"provider": "custom", "label": "fakeai", "baseUrl": f"{fakes.url}/v1", "apiKey": OPENAI_KEY,
         "models": ["fake-gpt", "fake-embed", "fake-cut"]},
        {"provider": "custom", "label": "fakeresp", "wire": "responses", "baseUrl": f"{fakes.url}/v1",
         "apiKey": OPENAI_KEY, "models": ["fake-resp"]},
        {"provider": "anthropic", "label": "fakeclaude", "baseUrl": fakes.url, "apiKey": ANTHROPIC_KEY,
         "models": ["claude-fake-1"]},
        {"provider": "gemini", "label": "fakegem", "baseUrl": fakes.url, "apiKey": GEMINI_KEY,
         "models": ["gemini-fake"]},
    ]


async def add_providers(admin: httpx.AsyncClient, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    added = []
    for body in bodies:
        response = await admin.post("/auth/api-keys", json=body)
        assert response.status_code == 201, response.text
        added.append(response.json()["provider"])
    return added


@asynccontextmanager
async def provider_stack(data_dir: Path, *, local: Mapping[str, Any] | None = None,
                         register: bool = True) -> AsyncIterator[ProviderStack]:
    async with running_fakes() as fakes:
        async with running_gateway(data_dir, install=True, local=local) as (gateway, url):
            key = api_key(gateway)
            async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {key}"},
                                         timeout=30) as admin:
                if register:
                    await add_providers(admin, provider_bodies(fakes))
                yield ProviderStack(gateway, url, key, fakes, admin)
