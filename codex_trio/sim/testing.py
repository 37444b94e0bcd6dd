"""Helpers for tests of other parts of the project: run a simulator for the duration of a block.

    async with running_sim(accounts=2, plans=("plus", "pro")) as sim:
        sim.urls.backend_base, sim.ca_file, sim.accounts[0].access_token, sim.requests ...
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import trio

from .simulator import Simulator
from .state import SimConfig


@asynccontextmanager
async def running_sim(config: SimConfig | None = None, *, host: str = "127.0.0.1", port: int = 0,
                      **options: Any) -> AsyncIterator[Simulator]:
    """Start a simulator on host:port (0 = any free port); options are SimConfig fields."""
    sim = Simulator(config or SimConfig(**options))
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(sim.serve, host, port)
            yield sim
            nursery.cancel_scope.cancel()
    finally:
        sim.close()
