"""Several gateways on one PostgreSQL: an egress proxy added, disabled or removed through one instance's admin API is
in the other instance's pool within a second (the instances share the proxy key file, as docs/scale-out.md says)."""

from __future__ import annotations

import shutil
import time

import orjson
import trio

from codex_trio.sim import running_sim
from tests.accounts_api.conftest import Cli
from tests.store.test_shared_state import _stop


async def _listed(client) -> dict[str, dict]:
    return {p["id"]: p for p in (await client.get("/admin/proxies")).json()["proxies"]}


async def _until(check) -> float:
    started = time.monotonic()
    with trio.fail_after(5):
        while not await check():
            await trio.sleep(0.05)
    return time.monotonic() - started


async def test_a_proxy_changed_on_one_instance_is_in_the_others_pool_within_a_second(tmp_path, pg_url):
    async with running_sim(accounts=1) as sim:
        clis = [Cli(tmp_path / f"data{n}", sim) for n in range(2)]
        for cli in clis:
            cli.env["CODEX_TRIO__STORE__URL"] = pg_url
        body = orjson.dumps({"accounts": [{"token": a.access_token, "refreshToken": a.refresh_token}
                                          for a in sim.accounts]})
        assert (await clis[0].run("accounts", "import", "-", stdin=body)).returncode == 0
        first = await clis[0].serve()
        shutil.copy(tmp_path / "data0" / "proxies.key", tmp_path / "data1" / "proxies.key")
        second = await clis[1].serve()
        try:
            async with first.client() as a, second.client() as b:
                added = await a.post("/admin/proxies", json={"url": "http://user:pw@127.0.0.1:9", "label": "edge"})
                assert added.status_code == 201, added.text
                proxy_id = added.json()["id"]
                seen_added = await _until(lambda: _has(b, proxy_id))
                changed = await a.patch(f"/admin/proxies/{proxy_id}", json={"enabled": False})
                assert changed.status_code == 200, changed.text
                seen_disabled = await _until(lambda: _disabled(b, proxy_id))
                assert (await a.delete(f"/admin/proxies/{proxy_id}")).status_code == 200
                seen_removed = await _until(lambda: _gone(b, proxy_id))
        finally:
            await _stop([first, second])
    assert max(seen_added, seen_disabled, seen_removed) < 1.0, (seen_added, seen_disabled, seen_removed)


async def _has(client, proxy_id: str) -> bool:
    return proxy_id in await _listed(client)


async def _disabled(client, proxy_id: str) -> bool:
    proxy = (await _listed(client)).get(proxy_id)
    return proxy is not None and proxy["enabled"] is False


async def _gone(client, proxy_id: str) -> bool:
    return proxy_id not in await _listed(client)
