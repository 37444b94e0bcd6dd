"""Several gateways on one PostgreSQL: a setting changed through one instance's admin API is applied by the others
within a second (and written to their local.yaml), and an instance started later adopts it."""

from __future__ import annotations

import time

import trio

from codex_trio.sim import running_sim
from tests.accounts_api.conftest import Cli
from tests.store.test_shared_state import _gateways, _stop


async def _ttl(client) -> float:
    return (await client.get("/admin/settings")).json()["auth"]["affinity_ttl_minutes"]


async def test_a_setting_changed_on_one_instance_is_applied_by_the_others_within_a_second(tmp_path, pg_url):
    async with running_sim(accounts=1) as sim:
        first, second = await _gateways(tmp_path, sim, pg_url, 2)
        later = None
        try:
            async with first.client() as a, second.client() as b:
                assert await _ttl(b) != 33
                changed = await a.patch("/admin/settings", json={"auth": {"affinity_ttl_minutes": 33}})
                assert changed.status_code == 200, changed.text
                applied = time.monotonic()
                with trio.fail_after(5):
                    while await _ttl(b) != 33:
                        await trio.sleep(0.05)
                seen_after = time.monotonic() - applied
                assert "affinity_ttl_minutes: 33" in (tmp_path / "data1" / "local.yaml").read_text()
                cli = Cli(tmp_path / "data9", sim)
                cli.env["CODEX_TRIO__STORE__URL"] = pg_url
                later = await cli.serve()
                async with later.client() as c:
                    assert await _ttl(c) == 33  # adopted at start
        finally:
            await _stop([first, second] + ([later] if later else []))
    assert seen_after < 1.0, f"the other instance applied the change after {seen_after:.2f} s"
