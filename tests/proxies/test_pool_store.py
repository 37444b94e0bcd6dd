"""The proxy pool in the account store: credentials encrypted at rest with a 0600 key file beside the store,
masked wherever shown, kept across reopening; a store of the previous version migrates without losing a row."""

from __future__ import annotations

import sqlite3
import stat

import pytest

from codex_trio.accounts.model import Account, Tokens
from codex_trio.accounts.proxies import KEY_FILE, NoRoute, ProxyPool, ProxyStore, mask_url
from codex_trio.accounts.store import AccountStore
from codex_trio.errors import GatewayError

SECRET = "s3cr3t-pass"


async def open_pool(path, default=None) -> tuple[AccountStore, ProxyPool]:
    store = await AccountStore.open(path)
    pool = ProxyPool(ProxyStore.of(store), default_proxy=lambda: default)
    await pool.load()
    return store, pool


def account(account_id: str, proxy: str | None) -> Account:
    return Account(id=account_id, tokens=Tokens("at"), proxy=proxy, installation_id="i")


async def test_credentials_are_encrypted_at_rest_with_a_private_key_file_and_survive_reopening(tmp_path):
    path = tmp_path / "accounts.sqlite3"
    store, pool = await open_pool(path)
    added = await pool.add(f"socks5h://alice:{SECRET}@127.0.0.1:1080", label="eu-1", group="eu")
    await store.close()

    key_file = tmp_path / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    raw = path.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("accounts.sqlite3-*"))
    assert SECRET.encode() not in raw and b"alice" not in raw

    store, pool = await open_pool(path)
    try:
        again = pool.get(added.id)
        assert (again.url, again.label, again.group) == (f"socks5h://alice:{SECRET}@127.0.0.1:1080", "eu-1", "eu")
        shown = str(pool.list())
        assert SECRET not in shown and "alice" not in shown and "socks5h://a***:***@127.0.0.1:1080" in shown
    finally:
        await store.close()


async def test_a_wrong_key_file_leaves_the_rows_alone_instead_of_failing_the_store(tmp_path):
    path = tmp_path / "accounts.sqlite3"
    store, pool = await open_pool(path)
    await pool.add(f"http://bob:{SECRET}@127.0.0.1:3128")
    await store.close()
    (tmp_path / KEY_FILE).unlink()  # a new key is generated: the old row cannot be read with it
    store, pool = await open_pool(path)
    try:
        assert pool.list() == []
        assert (await store.query("SELECT count(*) AS n FROM proxies"))[0]["n"] == 1  # kept, not deleted
    finally:
        await store.close()


def test_masking_hides_user_and_password_and_leaves_plain_urls_alone():
    assert mask_url("http://user:pw@proxy.example:8080") == "http://u***:***@proxy.example:8080"
    assert mask_url("socks5://token@[::1]:1080") == "socks5://t***@[::1]:1080"
    assert mask_url("https://proxy.example:443") == "https://proxy.example:443"


@pytest.mark.parametrize("url", ["ftp://h:1", "socks4://h:1", "http://", "http://h:notaport", "", 7])
async def test_unusable_proxy_urls_are_refused_with_a_400(tmp_path, url):
    store, pool = await open_pool(tmp_path / "accounts.sqlite3")
    try:
        with pytest.raises(GatewayError) as caught:
            await pool.add(url)
        assert caught.value.status == 400 and "url" in caught.value.message
    finally:
        await store.close()


async def test_a_store_of_the_previous_version_gets_the_proxy_tables(tmp_path):
    path = tmp_path / "accounts.sqlite3"
    from codex_trio.accounts import store as store_module

    db = sqlite3.connect(path)
    for steps in store_module.MIGRATIONS[:2]:
        for step in steps:
            step(db) if callable(step) else db.execute(step)
    db.execute("INSERT INTO schema_version (version) VALUES (2)")
    db.execute("INSERT INTO accounts (id, access_token, installation_id, created_at, updated_at) "
               "VALUES ('acct-old', 'at', 'i', 1, 1)")
    db.commit()
    db.close()
    store, pool = await open_pool(path)
    try:
        assert [a.id for a in await store.list()] == ["acct-old"]
        await pool.add("http://127.0.0.1:3128")
        assert len(pool.list()) == 1
    finally:
        await store.close()


async def test_routes_of_each_mode(tmp_path):
    store, pool = await open_pool(tmp_path / "accounts.sqlite3", default="http://127.0.0.1:9999")
    try:
        a = await pool.add("http://127.0.0.1:1001", group="eu")
        b = await pool.add("http://127.0.0.1:1002", group="us")
        assert pool.route_for(account("x", None)) == "http://127.0.0.1:9999"
        assert pool.route_for(account("x", "direct")) is None
        assert pool.route_for(account("x", b.id)) == b.url
        assert pool.route_for(account("x", "socks5://127.0.0.1:7")) == "socks5://127.0.0.1:7"
        assert pool.route_for(account("x", "auto:us")) == b.url
        assert pool.route_for(account("y", "auto:eu")) == a.url
        await pool.update(a.id, enabled=False)
        with pytest.raises(NoRoute):  # never silently direct
            pool.route_for(account("y", "auto:eu"))
        with pytest.raises(NoRoute):
            pool.route_for(account("z", a.id))
        with pytest.raises(NoRoute):
            pool.route_for(account("z", "px-gone"))
    finally:
        await store.close()
