"""Both engines behind the one store interface: the same migrations, the same store code, and `codex-trio store
migrate|copy` through the executable (SQLite → PostgreSQL → SQLite keeps every row)."""

from __future__ import annotations

import sqlite3
import time

import psycopg
import pytest

from codex_trio.accounts.model import Account, AccountStatus, Tokens
from codex_trio.accounts.proxies import ProxyPool, ProxyStore
from codex_trio.accounts.store import SCHEMA as ACCOUNTS, AccountStore, StoreError
from codex_trio.store.location import StoreLocation
from codex_trio.telemetry.client_keys import ClientKey, hash_key, insert_key, new_key, read_keys
from codex_trio.telemetry.record import RequestRecord
from codex_trio.telemetry.store import SCHEMA as OPERATOR, HistoryQuery, OperatorStore, read_history, read_summary
from codex_trio.telemetry.store import write_batch
from tests.test_cli_errors import codex_trio


def _account(n: int) -> Account:
    return Account(id=f"acct-{n}", tokens=Tokens(f"access-{n}", f"refresh-{n}", f"id-{n}"), account_id=f"ws-{n}",
                   email=f"user{n}@example.com", plan="plus", user_id=f"user-{n}", installation_id=f"inst-{n}",
                   cookies=[{"name": "__cf_bm", "value": f"c{n}", "domain": "chatgpt.com"}],
                   quota={"primary": {"used_percent": n}}, request_count=n, input_tokens=2**40 + n,
                   access_expires_at=1_900_000_000.5 + n, status=AccountStatus.RATE_LIMITED if n % 2 else
                   AccountStatus.ACTIVE, cooldown_until=1_900_000_100.25 if n % 2 else None)


def _record(n: int, now: float) -> RequestRecord:
    return RequestRecord(id=f"req-{n}", started_at=now - n * 61, protocol="openai", path="/v1/chat/completions",
                         key_id=f"key-{n % 3}", requested_model="gpt-5.5", model="gpt-5.5", account=f"acct-{n % 4}",
                         status=200 if n % 5 else 502, outcome="ok" if n % 5 else "error", input_tokens=100 + n,
                         output_tokens=n, duration_ms=12.5 + n, cost_usd=0.001 * n,
                         error_kind="" if n % 5 else "upstream")


async def _populate(location: StoreLocation, now: float, key_dir) -> None:
    accounts = await AccountStore.open_at(location)
    try:
        await accounts.insert_many([_account(n) for n in range(12)])
        pool = ProxyPool(ProxyStore.of(accounts, key_dir), default_proxy=lambda: None)
        await pool.load()
        await pool.add("socks5://user:secret@127.0.0.1:1080")
        await pool.add("http://127.0.0.1:3128")
    finally:
        await accounts.close()
    operator = await OperatorStore.open_at(location)
    try:
        records = [_record(n, now) for n in range(40)]
        await operator.write(lambda c: write_batch(c, records, [r for r in records if r.outcome == "error"]))
        for n in range(3):
            key = new_key()
            await operator.write(lambda c, n=n, key=key: insert_key(c, ClientKey(
                id=f"key-{n}", name=f"key {n}", prefix=key[:12], key_hash=hash_key(key), created_at=now)))
    finally:
        await operator.close()


def _dump_sqlite(directory) -> dict[str, list[tuple]]:
    out = {}
    for schema in (ACCOUNTS, OPERATOR):
        db = sqlite3.connect(directory / {"accounts": "accounts.sqlite3", "operator": "operator.sqlite3"}[schema.name])
        for table in schema.tables():
            columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
            out[table] = sorted(db.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall(), key=repr)
        db.close()
    return out


async def test_the_stores_work_the_same_on_postgresql(pg_url, tmp_path):
    location = StoreLocation.parse(pg_url, tmp_path)
    now = time.time()
    await _populate(location, now, tmp_path)
    accounts = await AccountStore.open_at(location)
    try:
        listed = await accounts.list()
        by_id = {a.id: a for a in listed}
        assert [a.id for a in listed] == sorted(f"acct-{n}" for n in range(12))  # created together: by id
        assert by_id["acct-3"].cookies == _account(3).cookies and by_id["acct-3"].input_tokens == 2**40 + 3
        assert by_id["acct-3"].status is AccountStatus.RATE_LIMITED
        assert by_id["acct-3"].cooldown_until == 1_900_000_100.25
        # one row per ChatGPT identity, across processes: the unique index holds on PostgreSQL too
        stored, created = await accounts.upsert_identity(_account(3), lambda old: {"label": "again"}, lambda: "x")
        assert not created and stored.id == "acct-3" and stored.label == "again"
        assert await accounts.update("acct-4", status=AccountStatus.BANNED, cooldown_until=None)
        assert (await accounts.get("acct-4")).status is AccountStatus.BANNED
        assert await accounts.integrity_check() == "ok"
    finally:
        await accounts.close()
    operator = await OperatorStore.open_at(location)
    try:
        summary = await operator.read(lambda c: read_summary(c, now - 86400 * 2, now + 60))
        assert summary["totals"]["requests"] == 40 and summary["totals"]["errors"] == 8
        assert summary["totals"]["input_tokens"] == sum(100 + n for n in range(40))
        history = await operator.read(lambda c: read_history(c, HistoryQuery(now - 86400 * 2, now + 60, "day")))
        assert sum(p["requests"] for p in history) == 40
        assert sorted(k.id for k in await operator.read(read_keys)) == ["key-0", "key-1", "key-2"]
    finally:
        await operator.close()


async def test_a_postgresql_store_of_a_newer_program_is_refused_untouched(pg_url, tmp_path):
    location = StoreLocation.parse(pg_url, tmp_path)
    await (await AccountStore.open_at(location)).close()  # migrated once
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_versions SET version = 99 WHERE component = 'accounts'")
    with pytest.raises(StoreError, match="newer than this program"):
        await AccountStore.open_at(location)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT version FROM schema_versions WHERE component = 'accounts'").fetchone()[0] == 99


def test_store_migrate_and_copy_round_trip_keep_every_row(pg_url, tmp_path):
    import trio

    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    trio.run(_populate, StoreLocation.parse("", data), time.time(), data)
    before = _dump_sqlite(data)
    assert sum(len(rows) for rows in before.values()) > 60

    migrated = codex_trio("store", "migrate", "--data-dir", str(data), env={"CODEX_TRIO__STORE__URL": pg_url})
    assert migrated.returncode == 0, migrated.stderr
    assert f"accounts store: schema version {ACCOUNTS.version}" in migrated.stdout
    assert "secret" not in migrated.stdout

    doctor = codex_trio("doctor", "--data-dir", str(data), env={"CODEX_TRIO__STORE__URL": pg_url})
    assert "is reachable" in doctor.stdout and f"accounts schema at version {ACCOUNTS.version}" in doctor.stdout
    assert "0 enabled account(s) of 0" in doctor.stdout  # nothing copied yet
    unreachable = pg_url.rsplit(":", 1)[0] + ":1/nowhere"
    down = codex_trio("doctor", "--data-dir", str(data), env={"CODEX_TRIO__STORE__URL": unreachable})
    assert down.returncode != 0 and "cannot be reached" in down.stdout, down.stdout

    copied = codex_trio("store", "copy", "--data-dir", str(data), "--to", pg_url)
    assert copied.returncode == 0, copied.stderr
    assert "accounts.accounts: 12 rows" in copied.stdout and "operator.usage_records: 40 rows" in copied.stdout
    again = codex_trio("store", "copy", "--data-dir", str(data), "--to", pg_url)
    assert again.returncode == 1 and "already holds rows" in again.stderr and "Traceback" not in again.stderr

    back = tmp_path / "back"
    returned = codex_trio("store", "copy", "--data-dir", str(data), "--from", pg_url, "--to", f"sqlite://{back}")
    assert returned.returncode == 0, returned.stderr
    assert _dump_sqlite(back) == before


def test_a_wrong_or_unreachable_store_url_is_one_line_not_a_traceback(tmp_path):
    from tests.test_cli_errors import assert_one_line_error

    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    wrong = codex_trio("run", "--data-dir", str(data), "--port", "0", env={"CODEX_TRIO__STORE__URL": "mysql://db/x"})
    assert_one_line_error(wrong, "store.url", "postgresql://")
    closed = codex_trio("run", "--data-dir", str(data), "--port", "0",
                        env={"CODEX_TRIO__STORE__URL": "postgresql://codex:secret@127.0.0.1:1/nowhere"})
    message = assert_one_line_error(closed, "could not connect to postgresql://codex@127.0.0.1:1/nowhere")
    assert "secret" not in closed.stderr and "secret" not in message
