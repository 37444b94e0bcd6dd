"""Shared pieces of the dispatch end-to-end tests: a gateway on a simulator (on the simulator's clock) and
the questions the tests ask the simulator (which account served, how often)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import httpx

from codex_trio.sim import running_sim
from codex_trio.identity_check.tls_fingerprint import parse_client_hello
from tests.conftest import api_key, gateway_on_sim

TURN_PATH = "/codex/responses"


@asynccontextmanager
async def gateway_and_sim(data_dir, *, accounts: int = 2, local: dict[str, Any] | None = None,
                          real_hosts: bool = False, **sim_options: Any
                          ) -> AsyncIterator[tuple[Any, Any, httpx.AsyncClient]]:
    """(sim, gateway, client): the gateway's accounts run on the simulator's clock, so moving the sim's
    clock moves cooldowns and token expiry on both sides. `real_hosts`: the gateway reaches the sim as
    chatgpt.com / auth.openai.com (real SNI and Host; see `sim_settings`)."""
    async with running_sim(accounts=accounts, **sim_options) as sim:
        async with gateway_on_sim(data_dir, sim, local=local, clock=sim.clock.now, real_hosts=real_hosts) as (
                gateway, url):
            async with httpx.AsyncClient(base_url=url, timeout=30,
                                         headers={"authorization": f"Bearer {api_key(gateway)}"}) as client:
                yield sim, gateway, client


def turn_requests(sim) -> list[Any]:
    """Every turn the sim was asked for: SSE POSTs and WebSocket `response.create` frames that generate."""
    out = []
    for record in sim.requests:
        if not record.path.endswith(TURN_PATH):
            continue
        if record.method == "POST":
            out.append(record)
        else:
            out.extend(record for m in record.ws_messages if isinstance(m, dict) and m.get("generate") is not False)
    return out


def accounts_asked(sim) -> list[str]:
    """The ChatGPT account ids of the turns the sim saw, in order."""
    return [r.header("chatgpt-account-id") for r in turn_requests(sim)]


def sni_of(record) -> str | None:
    """The server name a recorded request's TLS ClientHello asked for (None without TLS or SNI)."""
    hello = record.connection.client_hello if record.connection else None
    return parse_client_hello(hello).sni if hello else None


def pool_account(gateway, chatgpt_account_id: str):
    pool = gateway.services.pool
    return next(a for a in pool.accounts() if a.account_id == chatgpt_account_id)


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-5.5", "messages": [{"role": "user", "content": text}], **extra}
