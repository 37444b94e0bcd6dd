from __future__ import annotations

import pytest

from codex_trio.sim import running_sim

from ..accounts_api.conftest import Cli


@pytest.fixture
async def sim():
    async with running_sim(accounts=3) as simulator:
        yield simulator


class ProxiesCli(Cli):
    """`codex-trio proxies SUBCOMMAND --data-dir DIR …` (the data dir option belongs to the subcommand)."""

    def argv(self, *args: str) -> list[str]:
        program = super().argv("run")[:-3]  # the executable (or python -m codex_trio.cli)
        return [*program, "proxies", args[0], "--data-dir", str(self.data_dir), *args[1:]]
