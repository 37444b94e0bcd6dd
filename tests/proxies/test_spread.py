"""200 accounts over 20 proxies with `auto`: spread evenly (10 each), and every account keeps its proxy across a
restart (the choice is stored) and when more accounts arrive; moving off an excluded proxy keeps the spread."""

from __future__ import annotations

import uuid
from collections import Counter

from codex_trio.accounts.model import Account, Tokens
from codex_trio.accounts.proxies import Health, ProxyPool, ProxyStore
from codex_trio.accounts.store import AccountStore


async def open_pool(path) -> tuple[AccountStore, ProxyPool]:
    store = await AccountStore.open(path)
    pool = ProxyPool(ProxyStore.of(store), default_proxy=lambda: None)
    await pool.load()
    return store, pool


def auto_accounts(count: int) -> list[Account]:
    return [Account(id=f"acct-{uuid.uuid4().hex[:10]}", tokens=Tokens("at"), proxy="auto", installation_id="i")
            for _ in range(count)]


async def test_two_hundred_accounts_spread_evenly_over_twenty_proxies_and_stay_put_across_restarts(tmp_path):
    path = tmp_path / "accounts.sqlite3"
    store, pool = await open_pool(path)
    try:
        for n in range(20):
            await pool.add(f"socks5://user{n}:pw@127.0.0.1:{20000 + n}")
        await store.insert_many(auto_accounts(200))
        pool.place(await store.list())
        await pool.flush()
        assert sorted(Counter(pool.choices.values()).values()) == [10] * 20
        routes = {a.id: pool.route_for(a) for a in await store.list()}
    finally:
        await store.close()

    store, pool = await open_pool(path)  # a restart
    try:
        accounts = await store.list()
        assert pool.place(accounts) == {}  # nothing to choose again
        assert {a.id: pool.route_for(a) for a in accounts} == routes

        # 20 more accounts and a proxy excluded: the newcomers fill up evenly, the excluded proxy's 10 move,
        # nobody else moves
        excluded = next(iter(pool.proxies.values()))
        excluded.health = Health.UNHEALTHY
        await store.insert_many(auto_accounts(20))
        pool.place(await store.list())
        await pool.flush()
        counts = Counter(pool.choices.values())
        assert excluded.id not in counts and sum(counts.values()) == 220
        assert max(counts.values()) - min(counts.values()) <= 1
        kept = {a: r for a, r in routes.items() if r != excluded.url}
        assert all(pool.route_for(a) == kept[a.id] for a in await store.list() if a.id in kept)
    finally:
        await store.close()


async def test_a_choice_made_while_routing_a_request_is_stored_by_the_background_job(tmp_path):
    import trio

    path = tmp_path / "accounts.sqlite3"
    store, pool = await open_pool(path)
    try:
        proxy = await pool.add("http://127.0.0.1:3128")
        account = auto_accounts(1)[0]
        await store.insert(account)
        async with trio.open_nursery() as nursery:
            await nursery.start(pool.run)
            assert pool.route_for(account) == proxy.url  # chosen on the request path, no write there
            with trio.fail_after(10):
                while not await store.query("SELECT * FROM proxy_auto_choices"):
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    finally:
        await store.close()
    store, pool = await open_pool(path)
    try:
        assert pool.choices == {account.id: proxy.id}
    finally:
        await store.close()


async def test_auto_counts_the_accounts_pinned_to_a_proxy_too(tmp_path):
    store, pool = await open_pool(tmp_path / "accounts.sqlite3")
    try:
        busy = await pool.add("http://127.0.0.1:1001")
        quiet = await pool.add("http://127.0.0.1:1002")
        pinned = [Account(id=f"pin-{n}", tokens=Tokens("at"), proxy=busy.id, installation_id="i") for n in range(3)]
        await store.insert_many(pinned + auto_accounts(3))
        pool.place(await store.list())
        assert Counter(pool.choices.values()) == {quiet.id: 3}
        assert {p["id"]: p["accounts"] for p in pool.list()} == {busy.id: 3, quiet.id: 3}
    finally:
        await store.close()
