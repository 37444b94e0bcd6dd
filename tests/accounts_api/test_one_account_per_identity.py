"""One account per ChatGPT identity (issue 11.7): concurrent adds through the admin route, two processes
importing the same logins at once, and stores written before the rule (merged by the migration)."""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing

import orjson
import trio

from codex_trio.accounts.model import Account, Tokens
from codex_trio.accounts.store import AccountStore
from codex_trio.sim import running_sim

from .conftest import Cli, admin_client


async def test_twenty_simultaneous_adds_of_one_token_make_one_account(data_dir, sim):
    token = sim.accounts[0]
    async with admin_client(data_dir, sim) as (_gateway, client):
        answers = []

        async def add() -> None:
            answers.append(await client.post("/auth/accounts", json={"token": token.access_token,
                                                                     "refreshToken": token.refresh_token}))

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(add)
        assert sorted(a.status_code for a in answers) == [200] * 19 + [201], [a.text for a in answers]
        assert len({a.json()["account"]["id"] for a in answers}) == 1
        listing = (await client.get("/auth/accounts")).json()["accounts"]
        assert [a["account_id"] for a in listing] == [token.account_id]


async def test_processes_importing_the_same_logins_at_once_make_one_row_each(tmp_path):
    async with running_sim(accounts=60) as sim:
        cli = Cli(tmp_path / "data", sim)
        logins = [{"token": a.access_token, "refreshToken": a.refresh_token} for a in sim.accounts]
        # two walk the list forwards, two backwards: every pair meets on some login at the same moment
        payloads = [orjson.dumps({"accounts": order}) for order in (logins, logins[::-1]) * 2]
        # all wait on stdin; closing it releases them together
        processes = [await cli.start("accounts", "import", "-") for _ in payloads]
        for process, payload in zip(processes, payloads):
            await process.proc.stdin.send_all(payload)
        for process in processes:
            await process.proc.stdin.aclose()
        for process in processes:
            code, out, err = await process.finish(timeout=60)
            assert code == 0 and b"failed 0" in out, err
        with closing(sqlite3.connect(cli.data_dir / "accounts.sqlite3")) as db:
            rows = db.execute("SELECT account_id, count(*) FROM accounts GROUP BY account_id").fetchall()
        assert sorted(rows) == sorted((a.account_id, 1) for a in sim.accounts)


def _old_store_with_duplicates(path, sim) -> list[str]:
    """A version-1 store (before the unique index) holding three rows of one login, as main wrote them."""
    with closing(sqlite3.connect(path)) as db:
        from codex_trio.accounts.store import MIGRATIONS

        for statement in MIGRATIONS[0]:
            db.execute(statement)
        db.execute("INSERT INTO schema_version (version) VALUES (1)")
        account = sim.accounts[0]
        ids = []
        for n, (expires, label, requests) in enumerate(((100.0, "old", 5), (300.0, None, 7), (200.0, None, 1))):
            ids.append(f"dup{n}")
            db.execute("INSERT INTO accounts (id, access_token, refresh_token, account_id, user_id, label, "
                       "access_expires_at, installation_id, request_count, created_at, updated_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (ids[-1], f"at{n}", f"rt{n}", account.account_id, account.user_id, label, expires,
                        str(uuid.uuid4()), requests, 1000.0 + n, 1000.0 + n))
        db.commit()
    return ids


async def test_migration_merges_duplicate_rows_and_keeps_the_folded_ones(tmp_path, sim):
    path = tmp_path / "accounts.sqlite3"
    _old_store_with_duplicates(path, sim)
    store = await AccountStore.open(path)
    [kept] = await store.list()
    # the newest tokens win; the usage adds up; the label of an older row is not lost
    assert (kept.id, kept.tokens.refresh_token, kept.request_count, kept.label) == ("dup1", "rt1", 13, "old")
    duplicate = Account(id="other", tokens=Tokens("at9", "rt9"), account_id=kept.account_id,
                        user_id=kept.user_id, installation_id="x")
    try:
        await store.insert(duplicate)
    except sqlite3.IntegrityError:
        pass
    else:
        raise AssertionError("the store accepted a second row for one ChatGPT identity")
    await store.close()
    with closing(sqlite3.connect(path)) as db:
        folded = {row[0]: (row[1], orjson.loads(row[2])["refresh_token"])
                  for row in db.execute("SELECT id, merged_into, row FROM merged_accounts")}
    assert folded == {"dup0": ("dup1", "rt0"), "dup2": ("dup1", "rt2")}
