"""A PostgreSQL refresh lock ends early when its connection drops in the middle of a refresh. The refresher confirms
the lock before it writes the new tokens: taken back with the row unchanged, it writes them; held by another
process now, it writes nothing (that process re-reads the account and goes on from what the store holds)."""

from __future__ import annotations

import orjson
import psycopg
import pytest
import trio

from codex_trio.accounts import oauth
from codex_trio.accounts.refresh import RefreshFailed, TokenRefresher
from codex_trio.accounts.store import AccountStore
from codex_trio.sim import running_sim
from codex_trio.store.location import StoreLocation
from codex_trio.store.sql import lock_key
from tests.accounts.conftest import HttpxOAuthHttp
from tests.accounts.helpers import fixture_identity
from tests.accounts_api.conftest import Cli


def _drop_lock_connections(pg_url: str) -> int:
    """Terminate every session holding an advisory lock (what a network cut does to the lock connection)."""
    with psycopg.connect(pg_url, autocommit=True) as db:
        pids = [r[0] for r in db.execute("SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory' "
                                         "AND granted AND pid <> pg_backend_pid()").fetchall()]
        for pid in pids:
            # with a timeout it returns once the session is gone (and its locks with it); without, it only
            # signals it, and a loaded machine still shows the lock held to the next statement
            assert db.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()[0]
    return len(pids)


@pytest.mark.parametrize("taken_by_another", [True, False])
async def test_a_refresh_that_lost_its_lock_writes_no_tokens_over_another_holder(tmp_path, pg_url, taken_by_another):
    async with running_sim(accounts=1, token_delay_seconds=1.0) as sim:
        cli = Cli(tmp_path / "data", sim)
        cli.env["CODEX_TRIO__STORE__URL"] = pg_url
        body = orjson.dumps({"accounts": [{"token": a.access_token, "refreshToken": a.refresh_token}
                                          for a in sim.accounts]})
        imported = await cli.run("accounts", "import", "-", stdin=body)
        assert imported.returncode == 0, imported.stderr
        store = await AccountStore.open_at(StoreLocation.parse(pg_url, tmp_path), clock=sim.clock.now)
        http = HttpxOAuthHttp(verify=sim.ssl_context())
        other = psycopg.connect(pg_url, autocommit=True)
        try:
            refresher = TokenRefresher(store, http, identity=fixture_identity(),
                                       token_url=oauth.token_url(sim.urls.auth_base), clock=sim.clock.now)
            (account,) = await store.list()
            before = account.tokens.refresh_token
            outcome: dict = {}

            async def refresh() -> None:
                try:
                    outcome["account"] = await refresher.refresh(account.id, oauth.RefreshReason.PROACTIVE_EXPIRY,
                                                                 force=True)
                except RefreshFailed as exc:
                    outcome["failed"] = exc

            async with trio.open_nursery() as nursery:
                nursery.start_soon(refresh)
                with trio.fail_after(10):  # the grant is on its way (the issuer answers 1 s late)
                    while not any(r.path == "/oauth/token" for r in sim.requests):
                        await trio.sleep(0.02)
                assert await trio.to_thread.run_sync(_drop_lock_connections, pg_url) == 1
                if taken_by_another:
                    key = lock_key(f"codex-trio lock refresh-{account.id}")
                    assert other.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
        finally:
            other.close()
            (stored,) = await store.list()
            await store.close()
            await http.client.aclose()
    if taken_by_another:
        assert "failed" in outcome and "lock" in str(outcome["failed"])
        assert stored.tokens.refresh_token == before  # the other holder goes on from what the store holds
    else:
        assert outcome["account"].tokens.refresh_token != before
        assert stored.tokens.refresh_token == outcome["account"].tokens.refresh_token  # taken back: written
