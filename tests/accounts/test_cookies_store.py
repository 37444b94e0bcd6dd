"""Per-account Cloudflare cookie jars persisted in the account record."""

from codex_trio.accounts.cookies_store import AccountCookies
from codex_trio.accounts.pool import Failure

from .test_pool import make_env

URL = "https://chatgpt.com/backend-api/codex/responses"


async def test_jar_round_trips_through_the_store_and_stays_with_its_account(tmp_path):
    env = await make_env(tmp_path, n=2)
    cookies = AccountCookies(env.store, env.pool)
    first, second = (env.pool.get(i) for i in env.ids)
    jar = cookies.jar_for(first)
    assert jar.header_for(URL) is None
    assert jar.capture(URL, [("set-cookie", "__cf_bm=abc; Path=/; Domain=chatgpt.com; Max-Age=1800"),
                             ("set-cookie", "session=secret; Path=/")]) == 1  # only Cloudflare's
    await cookies.save(first, jar)
    stored = await env.store.get(first.id)
    assert [c["name"] for c in stored.cookies] == ["__cf_bm"]
    assert cookies.jar_for(stored).header_for(URL) == "__cf_bm=abc"
    assert cookies.jar_for(second).header_for(URL) is None  # never lent to another account
    env.clock.advance(1801)
    assert cookies.jar_for(stored).header_for(URL) is None  # expired on the pool's clock


async def test_cookies_set_by_hand_are_sent_and_an_empty_404_clears_them(tmp_path):
    env = await make_env(tmp_path, n=1)
    cookies = AccountCookies(env.store, env.pool)
    await env.store.update(env.ids[0], cookies=[{"name": "cf_clearance", "value": "pasted"}])
    env.pool.upsert(await env.store.get(env.ids[0]))
    account = env.pool.get(env.ids[0])
    assert cookies.jar_for(account).header_for(URL) == "cf_clearance=pasted"
    async with env.pool.acquire() as lease:
        await lease.report_failure(Failure.EMPTY_404)
    assert cookies.jar_for(account).header_for(URL) is None
    assert (await env.store.get(env.ids[0])).cookies == []
