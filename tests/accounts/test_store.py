import os
import signal
import sqlite3
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import trio

from codex_trio.accounts.model import Account, AccountStatus, Tokens
from codex_trio.accounts.store import SCHEMA_VERSION, AccountStore, StoreError

ROOT = Path(__file__).resolve().parents[2]


def new_account(**kw) -> Account:
    return Account(id=str(uuid.uuid4()), tokens=Tokens("at", "rt", "it"), installation_id=str(uuid.uuid4()), **kw)


async def test_roundtrip_update_delete_and_private_file(tmp_path):
    path = tmp_path / "data" / "accounts.db"
    store = await AccountStore.open(path)
    a = new_account(label="one", cookies=[{"name": "cf_clearance", "value": "v"}], quota={"primary": None})
    await store.insert(a)
    assert await store.update(a.id, refresh_token="rt2", status=AccountStatus.BANNED, status_reason="403",
                              enabled=False, quota={"limit_reached": True})
    await store.add_usage(a.id, input_tokens=5, output_tokens=7)
    got = await store.get(a.id)
    assert got.tokens == Tokens("at", "rt2", "it")
    assert (got.status, got.status_reason, got.enabled, got.label) == (AccountStatus.BANNED, "403", False, "one")
    assert got.cookies == [{"name": "cf_clearance", "value": "v"}] and got.quota == {"limit_reached": True}
    assert (got.request_count, got.input_tokens, got.output_tokens) == (1, 5, 7)
    assert not await store.update("missing", label="x")
    with pytest.raises(ValueError):
        await store.update(a.id, no_such_column=1)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for side in (Path(str(path) + "-wal"), Path(str(path) + "-shm")):
        if side.exists():
            assert stat.S_IMODE(os.stat(side).st_mode) == 0o600
    assert await store.delete([a.id, "missing"]) == 1
    assert await store.list() == []
    await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_reopen_keeps_data_and_concurrent_writes_are_serialised(tmp_path):
    path = tmp_path / "a.db"
    store = await AccountStore.open(path)
    accounts = [new_account() for _ in range(20)]
    async with trio.open_nursery() as nursery:
        for a in accounts:
            nursery.start_soon(store.insert, a)
    for _ in range(3):
        async with trio.open_nursery() as nursery:
            for a in accounts:
                nursery.start_soon(lambda i=a.id: store.add_usage(i, input_tokens=1))
    await store.close()
    store = await AccountStore.open(path)
    listed = await store.list()
    assert sorted(a.id for a in listed) == sorted(a.id for a in accounts)
    assert {a.request_count for a in listed} == {3}
    await store.close()


async def test_unreadable_file_is_never_overwritten(tmp_path):
    path = tmp_path / "accounts.db"
    garbage = b"this is not sqlite " * 100
    path.write_bytes(garbage)
    with pytest.raises(StoreError, match="left untouched"):
        await AccountStore.open(path)
    assert path.read_bytes() == garbage


async def test_foreign_or_newer_schema_is_refused_without_writing(tmp_path):
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="no schema_version"):
        await AccountStore.open(foreign)
    newer = tmp_path / "newer.db"
    store = await AccountStore.open(newer)
    await store.insert(new_account())
    await store.close()
    conn = sqlite3.connect(newer)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        await AccountStore.open(newer)
    conn = sqlite3.connect(newer)
    assert conn.execute("SELECT count(*) FROM accounts").fetchone()[0] == 1


async def test_undecodable_row_is_skipped_and_kept(tmp_path):
    path = tmp_path / "a.db"
    store = await AccountStore.open(path)
    good, bad = new_account(), new_account()
    await store.insert_many([good, bad])
    await store.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE accounts SET status = 'nonsense' WHERE id = ?", (bad.id,))
    conn.commit()
    conn.close()
    store = await AccountStore.open(path)
    assert [a.id for a in await store.list()] == [good.id] and store.skipped_rows == [bad.id]
    await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT status FROM accounts WHERE id = ?", (bad.id,)).fetchone() == ("nonsense",)


def test_kill_9_mid_writes_loses_no_committed_account(tmp_path):
    path = tmp_path / "accounts.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("store_writer.py")), str(path)],
                            stdout=subprocess.PIPE, env=env, text=True)
    committed = []
    try:
        while len(committed) < 150:
            line = proc.stdout.readline()
            assert line, "writer died early"
            committed.append(line.strip())
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    committed += [ln.strip() for ln in proc.stdout.read().splitlines() if ln.strip()]

    async def check() -> None:
        store = await AccountStore.open(path)
        assert await store.integrity_check() == "ok"
        accounts = {a.id: a for a in await store.list()}
        missing = [i for i in committed if i not in accounts]
        assert missing == []
        assert all(accounts[i].tokens.refresh_token.endswith("-rotated") for i in committed)
        assert store.skipped_rows == []
        await store.close()

    trio.run(check)
