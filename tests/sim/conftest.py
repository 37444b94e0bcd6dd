from __future__ import annotations

from typing import AsyncIterator

import httpx
import pytest

from codex_trio.sim import Simulator, running_sim


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with running_sim(accounts=["plus", "free", "pro"], token_ttl_seconds=3600, ws_age_cap_seconds=3600) as s:
        yield s


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    assert sim.urls is not None
    async with httpx.AsyncClient(base_url=sim.urls.backend_base, verify=sim.ssl_context(), timeout=10) as c:
        yield c


@pytest.fixture
async def auth_client(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    assert sim.urls is not None
    async with httpx.AsyncClient(base_url=sim.urls.auth_base, verify=sim.ssl_context(), timeout=10) as c:
        yield c
