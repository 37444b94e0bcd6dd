"""Shared pieces of the telemetry tests: the whole gateway on a simulator with an httpx client, and waiting
for records (a streamed request is recorded when its stream ends, after the client has its last byte)."""

from __future__ import annotations

import sqlite3
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import trio

from codex_trio.sim import running_sim
from codex_trio.telemetry.store import OPERATOR_DB
from tests.conftest import api_key, gateway_on_sim


@asynccontextmanager
async def stack(data_dir: Path, *, accounts: int = 1, local: dict[str, Any] | None = None, clock=False,
                **sim_options: Any) -> AsyncIterator[tuple[Any, Any, httpx.AsyncClient]]:
    """(sim, gateway, admin client). With `clock`, the gateway runs on the simulator's movable clock."""
    async with running_sim(accounts=accounts, **sim_options) as sim:
        async with gateway_on_sim(data_dir, sim, local=local, clock=sim.clock.now if clock else None) as (gateway, url):
            async with httpx.AsyncClient(base_url=url, timeout=30,
                                         headers={"authorization": f"Bearer {api_key(gateway)}"}) as client:
                yield sim, gateway, client


async def wait_for_records(client: httpx.AsyncClient, count: int, *, timeout: float = 15.0) -> list[dict]:
    """Every record of the request log once it holds `count` (read a page of 1,000 at a time)."""
    with trio.fail_after(timeout):
        while (await client.get("/admin/logs", params={"limit": 1})).json()["total"] < count:
            await trio.sleep(0.05)
    records: list[dict] = []
    while True:
        page = (await client.get("/admin/logs", params={"limit": 1000, "offset": len(records)})).json()
        records += page["records"]
        if not page["records"] or len(records) >= page["total"]:
            return records


def query_db(data_dir: Path, sql: str, *params: Any) -> list[tuple]:
    with closing(sqlite3.connect(data_dir / OPERATOR_DB)) as conn:
        return conn.execute(sql, params).fetchall()
