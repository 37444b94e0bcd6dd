"""Refresh exactly once across processes: refresh tokens are single-use (the simulator's issuer answers a second
use with `refresh_token_reused`, as the real one does), so every token the issuer saw must be distinct and every
answer a success — with the CLI racing a gateway on one SQLite data dir, and with three gateways on one
PostgreSQL."""

from __future__ import annotations

import time

import orjson
import psycopg
import trio

from codex_trio.sim import running_sim
from tests.accounts_api.conftest import Cli

TOKEN_PATH = "/oauth/token"


def _refresh_token_uses(sim, since: int) -> list[tuple[str, int | None]]:
    """(refresh token sent, issuer status) of every refresh grant after request number `since`."""
    uses = []
    for request in sim.requests[since:]:
        if request.path != TOKEN_PATH:
            continue
        body = request.body if isinstance(request.body, dict) else dict(request.body or [])
        if body.get("grant_type") == "refresh_token":
            uses.append((body["refresh_token"], request.status))
    return uses


def _import_body(sim) -> bytes:
    return orjson.dumps({"accounts": [{"token": a.access_token, "refreshToken": a.refresh_token}
                                      for a in sim.accounts]})


async def test_cli_refreshes_racing_a_gateway_on_sqlite_spend_every_token_once(tmp_path):
    # the issuer answers 0.3 s after rotating: long enough for a second process to read the spent token
    async with running_sim(accounts=6, token_delay_seconds=0.3) as sim:
        cli = Cli(tmp_path / "data", sim)
        imported = await cli.run("accounts", "import", "-", stdin=_import_body(sim))
        assert imported.returncode == 0, imported.stderr
        gateway = await cli.serve()
        try:
            async with gateway.client() as client:
                ids = [a["id"] for a in (await client.get("/auth/accounts")).json()["accounts"]]
                assert len(ids) == 6
                since = len(sim.requests)
                results: list = []

                async def cli_refresh() -> None:
                    results.append(await cli.run("accounts", "refresh"))

                async def gateway_refresh(account_id: str) -> None:
                    results.append(await client.post(f"/auth/accounts/{account_id}/refresh"))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(cli_refresh)
                    nursery.start_soon(cli_refresh)
                    for account_id in ids:
                        nursery.start_soon(gateway_refresh, account_id)
                listed = (await client.get("/auth/accounts")).json()["accounts"]
        finally:
            gateway.proc.terminate()
            await gateway.proc.wait()
        uses = _refresh_token_uses(sim, since)
        # every refresh is forced (3 per account), each sent the token the previous one stored
        assert len(uses) == 3 * len(ids), uses
        assert len({token for token, _ in uses}) == len(uses), "a refresh token was sent twice"
        assert {status for _, status in uses} == {200}
        assert all(getattr(r, "returncode", 0) == 0 for r in results)
        assert all(r.json()["success"] for r in results if hasattr(r, "json")), [r.text for r in results
                                                                               if hasattr(r, "json")]
        assert {a["status"] for a in listed} == {"active"}


async def test_three_gateways_on_one_postgresql_refresh_each_account_once_under_load(tmp_path, pg_url):
    async with running_sim(accounts=100) as sim:
        clis = [Cli(tmp_path / f"data{n}", sim) for n in range(3)]
        for cli in clis:
            cli.env["CODEX_TRIO__STORE__URL"] = pg_url
        imported = await clis[0].run("accounts", "import", "-", stdin=_import_body(sim))
        assert imported.returncode == 0, imported.stderr
        # every access token is past its expiry as the gateways see it (the same as the clock running out)
        with psycopg.connect(pg_url, autocommit=True) as db:
            assert db.execute("UPDATE accounts SET access_expires_at = %s", (time.time() - 60,)).rowcount == 100
        since = len(sim.requests)
        gateways: list = [None] * 3
        statuses: list[int] = []

        async def start(n: int) -> None:
            gateways[n] = await clis[n].serve()

        async def load(n: int, requests: int) -> None:
            async with gateways[n].client() as client:
                for i in range(requests):
                    reply = await client.post("/v1/chat/completions", json={
                        "model": "gpt-5.5", "messages": [{"role": "user", "content": f"load {n}.{i}"}]})
                    statuses.append(reply.status_code)

        try:
            async with trio.open_nursery() as nursery:
                for n in range(3):
                    nursery.start_soon(start, n)
            with trio.fail_after(120):
                async with trio.open_nursery() as nursery:
                    for n in range(3):
                        for _ in range(4):
                            nursery.start_soon(load, n, 10)
                while True:  # the background jobs refresh whatever the load did not pick
                    with psycopg.connect(pg_url) as db:
                        stale = db.execute("SELECT count(*) FROM accounts WHERE access_expires_at < %s",
                                           (time.time(),)).fetchone()[0]
                    if not stale:
                        break
                    await trio.sleep(0.2)
        finally:
            for gateway in gateways:
                if gateway is not None:
                    gateway.proc.terminate()
            for gateway in gateways:
                if gateway is not None:
                    await gateway.proc.wait()
        uses = _refresh_token_uses(sim, since)
        assert len(uses) == 100, f"{len(uses)} refreshes for 100 accounts"
        assert len({token for token, _ in uses}) == 100
        assert {status for _, status in uses} == {200}
        assert statuses and set(statuses) == {200}, sorted(set(statuses))
        with psycopg.connect(pg_url) as db:
            assert db.execute("SELECT DISTINCT status FROM accounts").fetchall() == [("active",)]
