import random
import uuid

import pytest
import trio

from codex_trio.accounts.jwt import identity_from_tokens
from codex_trio.accounts.model import Account, AccountStatus, Tokens
from codex_trio.accounts.pool import AccountPool, Failure, PoolConfig, Strategy
from codex_trio.upstream.quota import QuotaSnapshot, QuotaWindow
from codex_trio.accounts.refresh import TokenRefresher
from codex_trio.accounts.store import AccountStore
from codex_trio.errors import GatewayError

from .helpers import FakeClock, FakeIssuer, fixture_identity


async def no_sleep(_s: float) -> None:
    await trio.lowlevel.checkpoint()


class Env:
    def __init__(self, store, pool, issuer, clock, ids):
        self.store, self.pool, self.issuer, self.clock, self.ids = store, pool, issuer, clock, ids


async def make_env(tmp_path, n=3, *, plans=None, exp_in=86400.0, verify=None, **config):
    clock = FakeClock()
    issuer = FakeIssuer(clock)
    store = await AccountStore.open(tmp_path / "a.db", clock=clock)
    ids = []
    for i in range(n):
        plan = plans[i] if plans else "plus"
        toks = issuer.mint(f"acc-{i}", plan=plan, exp=clock() + exp_in)
        ident = identity_from_tokens(toks["access_token"])
        account = Account(id=f"id-{i}", tokens=Tokens(toks["access_token"], toks["refresh_token"], None),
                          account_id=ident.account_id, plan=plan, access_expires_at=ident.expires_at,
                          installation_id=str(uuid.uuid4()), created_at=float(i + 1))
        await store.insert(account)
        ids.append(account.id)
    refresher = TokenRefresher(store, issuer, identity=fixture_identity(), clock=clock, sleep=no_sleep, rng=random.Random(0))
    pool = AccountPool(store, refresher, PoolConfig(**config), clock=clock, verify_quota=verify)
    await pool.load()
    return Env(store, pool, issuer, clock, ids)


async def pick(pool, **kw) -> str:
    async with pool.acquire(**kw) as lease:
        await lease.report_success()
        return lease.account.id


def snap(used, resets_at, *, reached=False, secondary=None):
    return QuotaSnapshot(QuotaWindow(used, 300, resets_at), secondary, limit_reached=reached)


async def test_least_used_prefers_soonest_reset_then_fewest_requests(tmp_path):
    env = await make_env(tmp_path)
    now = env.clock()
    env.pool._accounts["id-0"].quota = snap(10, now + 5000)
    env.pool._accounts["id-1"].quota = snap(50, now + 100)
    env.pool._accounts["id-2"].quota = snap(10, now + 5000)
    assert await pick(env.pool) == "id-1"
    for runtime in env.pool._accounts.values():
        runtime.quota = None
    # no quota info: fewer requests wins; id-1 already served one
    assert await pick(env.pool) in {"id-0", "id-2"}
    seen = {await pick(env.pool) for _ in range(4)}
    assert seen == {"id-0", "id-1", "id-2"}


async def test_least_used_compares_resets_only_when_both_are_known(tmp_path):
    env = await make_env(tmp_path)
    now = env.clock()
    env.pool._accounts["id-0"].quota = snap(10, now + 100)  # served before: its reset is known
    env.pool._accounts["id-0"].account.request_count = 1
    # id-1 and id-2 never reported a reset: fewer requests decides, not "unknown = infinitely far"
    assert await pick(env.pool) in {"id-1", "id-2"}
    # resets seconds apart are equal for this purpose; one an hour later is not
    env.pool._accounts["id-1"].quota = snap(10, now + 110)
    env.pool._accounts["id-2"].quota = snap(10, now + 3700)
    for runtime in env.pool._accounts.values():
        runtime.account.request_count = 5
    env.pool._accounts["id-0"].account.request_count = 6
    assert await pick(env.pool) == "id-1"


async def test_round_robin_cycles_and_sticky_sticks(tmp_path):
    env = await make_env(tmp_path, strategy=Strategy.ROUND_ROBIN)
    assert [await pick(env.pool) for _ in range(5)] == ["id-0", "id-1", "id-2", "id-0", "id-1"]
    assert [await pick(env.pool, exclude={"id-2"}) for _ in range(2)] == ["id-0", "id-1"]
    env2 = await make_env(tmp_path / "s", strategy=Strategy.STICKY)
    first = await pick(env2.pool)
    env2.clock.advance(1)
    assert [await pick(env2.pool) for _ in range(3)] == [first] * 3


async def test_affinity_by_response_and_conversation_with_ttl(tmp_path):
    env = await make_env(tmp_path, strategy=Strategy.ROUND_ROBIN, affinity_ttl_seconds=100)
    async with env.pool.acquire(conversation_id="conv") as lease:
        owner = lease.account.id
        await lease.report_success(response_id="resp_1")
    for _ in range(3):
        async with env.pool.acquire(previous_response_id="resp_1") as lease:
            assert lease.account.id == owner and not lease.preferred_missed
        async with env.pool.acquire(conversation_id="conv") as lease:
            assert lease.account.id == owner
            await lease.report_success()
    env.clock.advance(101)
    async with env.pool.acquire(previous_response_id="resp_1") as lease:
        assert not lease.preferred_missed  # expired: no preference any more
    # owner banned → another account, and the caller is told to resend the full history
    async with env.pool.acquire(conversation_id="c2") as lease:
        await lease.report_success(response_id="resp_2")
        owner2 = lease.account.id
    async with env.pool.acquire(previous_response_id="resp_2") as lease:
        await lease.mark_banned("403 json")
    async with env.pool.acquire(previous_response_id="resp_2", conversation_id="c2") as lease:
        assert lease.account.id != owner2
    assert (await env.store.get(owner2)).status is AccountStatus.BANNED


async def test_plan_routing(tmp_path):
    env = await make_env(tmp_path, plans=["free", "plus", "pro"])
    env.pool.set_plan_models("free", ["gpt-5.4-mini"])
    env.pool.set_plan_models("plus", ["gpt-5.4-mini", "gpt-5.5"])
    env.pool.set_plan_models("pro", ["gpt-5.4-mini", "gpt-5.5", "gpt-6.1-sol"])
    assert {await pick(env.pool, model="gpt-6.1-sol") for _ in range(3)} == {"id-2"}
    assert {await pick(env.pool, model="gpt-5.5") for _ in range(4)} == {"id-1", "id-2"}
    with pytest.raises(GatewayError) as exc:
        await pick(env.pool, model="gpt-6.1-sol", exclude={"id-2"})
    assert exc.value.status == 404 and exc.value.code == "model_not_found"


async def test_max_concurrency_slots_wait_and_release(tmp_path):
    env = await make_env(tmp_path, n=1, max_concurrent_per_account=2, slot_wait_seconds=5)
    pool = env.pool
    order = []
    release = trio.Event()

    async def hold(tag):
        async with pool.acquire() as lease:
            order.append(("in", tag, pool.runtime_info(lease.account.id)["in_flight"]))
            await release.wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold, "a")
        nursery.start_soon(hold, "b")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(hold, "c")
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(t for _, t, _ in order) == ["a", "b"]  # c waits for a slot
        release.set()
    assert sorted(t for _, t, _ in order) == ["a", "b", "c"]
    assert max(n for *_, n in order) == 2 and pool.runtime_info("id-0")["in_flight"] == 0


async def test_busy_pool_times_out_with_503(tmp_path):
    env = await make_env(tmp_path, n=1, max_concurrent_per_account=1, slot_wait_seconds=0.05)
    async with env.pool.acquire():
        with pytest.raises(GatewayError) as exc:
            async with env.pool.acquire():
                pass
    assert exc.value.status == 503 and exc.value.code == "accounts_busy"


async def test_cooldown_ends_at_reset_then_reverifies(tmp_path):
    checks = []
    answers = []

    async def verify(account):
        checks.append(account.id)
        return answers.pop(0) if answers else None

    env = await make_env(tmp_path, n=1, verify=verify)
    reset = env.clock() + 1000
    async with env.pool.acquire() as lease:
        await lease.mark_rate_limited(reset)
    stored = await env.store.get("id-0")
    assert stored.status is AccountStatus.RATE_LIMITED and stored.cooldown_until == reset
    with pytest.raises(GatewayError) as exc:
        await pick(env.pool)
    assert exc.value.status == 429 and exc.value.retry_after == pytest.approx(1000)
    env.clock.advance(999)
    with pytest.raises(GatewayError):
        await pick(env.pool)
    assert checks == []
    env.clock.advance(2)  # past the reset: usable again after one check, never locked beyond it
    answers.append(snap(100, env.clock() + 500, reached=True))  # the backend says: still limited
    with pytest.raises(GatewayError) as exc:
        await pick(env.pool)
    assert checks == ["id-0"] and exc.value.retry_after == pytest.approx(500)
    env.clock.advance(501)
    answers.append(snap(0, env.clock() + 18000))
    assert await pick(env.pool) == "id-0"
    assert checks == ["id-0", "id-0"]
    stored = await env.store.get("id-0")
    assert stored.status is AccountStatus.ACTIVE and stored.cooldown_until is None


async def test_exhausted_snapshot_skips_until_its_reset_without_a_checker(tmp_path):
    env = await make_env(tmp_path, n=2, strategy=Strategy.ROUND_ROBIN)
    async with env.pool.acquire() as lease:
        assert lease.account.id == "id-0"
        await lease.report_success(snap(100, env.clock() + 60, reached=True))
    assert {await pick(env.pool) for _ in range(3)} == {"id-1"}
    env.clock.advance(61)
    assert {await pick(env.pool) for _ in range(2)} == {"id-0", "id-1"}


async def test_failover_before_first_byte_with_exclude(tmp_path):
    env = await make_env(tmp_path, n=2)
    tried = set()
    async with env.pool.acquire(exclude=tried) as lease:
        tried.add(lease.account.id)
        await lease.mark_rate_limited(None)
    async with env.pool.acquire(exclude=tried) as lease:
        assert lease.account.id not in tried
    stored = await env.store.get(next(iter(tried)))
    assert stored.cooldown_until == pytest.approx(env.clock() + 60)
    async with env.pool.acquire() as lease:
        await lease.report_failure(Failure.SERVER_ERROR)
        assert env.pool.runtime_info(lease.account.id)["last_failure"] == {"kind": "server_error",
                                                                          "at": env.clock()}


async def test_warnings_at_thresholds(tmp_path):
    env = await make_env(tmp_path, n=1)
    fired = []
    env.pool._on_warning = lambda account, threshold, quota: fired.append(threshold)
    for used in (50, 85, 86, 95):
        async with env.pool.acquire() as lease:
            await lease.report_success(snap(used, env.clock() + 1000))
    assert fired == [80.0, 90.0]
    assert [(w["id"], w["threshold"]) for w in env.pool.warnings()] == [("id-0", 90.0)]
    async with env.pool.acquire() as lease:
        # another metered limit's event updates only its bucket: no warning for the main limit
        await lease.update_quota(QuotaSnapshot(QuotaWindow(99, 300, env.clock() + 50), limit_id="codex_bengalfox"))
        assert fired == [80.0, 90.0]
        await lease.report_success(snap(10, env.clock() + 18000))  # the window reset
        await lease.report_success(snap(92, env.clock() + 18000))  # and filled again: a new crossing
    assert fired == [80.0, 90.0, 80.0, 90.0]


async def test_acquire_refreshes_proactively_and_fails_over_on_dead_login(tmp_path):
    env = await make_env(tmp_path, n=2, exp_in=60, strategy=Strategy.ROUND_ROBIN)  # inside the 300 s margin
    dead_rt = env.pool._accounts["id-0"].account.tokens.refresh_token
    env.issuer.live.pop(dead_rt)
    env.issuer.used.add(dead_rt)
    async with env.pool.acquire() as lease:
        assert lease.account.id == "id-1"
        assert lease.account.access_expires_at == pytest.approx(env.clock() + env.issuer.ttl)
    assert (await env.store.get("id-1")).tokens.access_token == lease.account.tokens.access_token
    assert env.pool._accounts["id-0"].account.status is AccountStatus.EXPIRED
    assert "refresh_token_reused" in (await env.store.get("id-0")).status_reason


async def test_token_invalid_reloads_first_then_refreshes(tmp_path):
    env = await make_env(tmp_path, n=1)
    async with env.pool.acquire() as lease:
        before = lease.account.tokens.access_token
        assert await lease.mark_token_invalid()
        assert lease.account.tokens.access_token == before and env.issuer.refresh_calls == []
        assert await lease.mark_token_invalid()
        assert [c["refresh_reason"] for c in env.issuer.refresh_calls] == ["unauthorized_recovery"]
        assert lease.account.tokens.access_token != before
        env.issuer.live.clear()
        assert await lease.mark_token_invalid()
        assert not await lease.mark_token_invalid()  # the login is dead: fail over
    assert (await env.store.get("id-0")).status is AccountStatus.EXPIRED


async def test_cloudflare_cooldown_and_empty_404s(tmp_path):
    env = await make_env(tmp_path, n=1)
    async with env.pool.acquire() as lease:
        await lease.report_failure(Failure.CLOUDFLARE_CHALLENGE)
    with pytest.raises(GatewayError) as exc:
        await pick(env.pool)
    assert exc.value.status == 429 and exc.value.retry_after == pytest.approx(10)
    env.clock.advance(11)
    await env.store.update("id-0", cookies=[{"name": "__cf_bm", "value": "x"}])
    env.pool._accounts["id-0"].account.cookies = [{"name": "__cf_bm", "value": "x"}]
    for _ in range(3):
        async with env.pool.acquire() as lease:
            await lease.report_failure("empty_404")
    stored = await env.store.get("id-0")
    assert stored.cookies == [] and not stored.enabled and stored.status is AccountStatus.DISABLED


async def test_usage_counters_flush(tmp_path):
    env = await make_env(tmp_path, n=1)
    for _ in range(3):
        async with env.pool.acquire() as lease:
            await lease.report_success(snap(5, env.clock() + 100), input_tokens=10, output_tokens=2)
    assert (await env.store.get("id-0")).request_count == 0
    await env.pool.flush()
    stored = await env.store.get("id-0")
    assert (stored.request_count, stored.input_tokens, stored.output_tokens) == (3, 30, 6)
    assert stored.quota["primary"]["used_percent"] == 5
    await env.pool.flush()
    assert (await env.store.get("id-0")).request_count == 3


async def test_no_accounts_message(tmp_path):
    env = await make_env(tmp_path, n=0)
    with pytest.raises(GatewayError) as exc:
        await pick(env.pool)
    assert exc.value.status == 503 and "codex-trio login" in exc.value.message


async def test_refresh_race_in_process_100_accounts_50_requests_each(tmp_path):
    env = await make_env(tmp_path, n=100, exp_in=3600, max_concurrent_per_account=50)
    env.clock.advance(3600)

    async def request(i):
        async with env.pool.acquire(conversation_id=f"c{i}") as lease:
            assert lease.account.access_expires_at > env.clock()
            await lease.report_success()

    async with trio.open_nursery() as nursery:
        for i in range(100 * 50):
            nursery.start_soon(request, i)
    tokens = [c["refresh_token"] for c in env.issuer.refresh_calls]
    assert len(tokens) == 100 and len(set(tokens)) == 100
    assert {a.status for a in await env.store.list()} == {AccountStatus.ACTIVE}


async def test_limit_reached_without_reset_times_cools_down_then_rechecks(tmp_path):
    env = await make_env(tmp_path, n=1)
    async with env.pool.acquire() as lease:
        await lease.report_success(QuotaSnapshot(limit_reached=True))
    with pytest.raises(GatewayError) as exc:
        await pick(env.pool)
    assert exc.value.retry_after == pytest.approx(60)
    env.clock.advance(61)
    assert await pick(env.pool) == "id-0"  # never held past the cooldown


async def test_affinity_keeps_the_newest_entries_up_to_its_cap(tmp_path, monkeypatch):
    """The affinity maps are bounded by count as well as by TTL: under a steady stream of new conversations the
    oldest entry is given up (its conversation is then placed like a new one), the newest ones still stick."""
    from codex_trio.accounts import pool as pool_module

    monkeypatch.setattr(pool_module, "AFFINITY_ENTRIES", 5)
    env = await make_env(tmp_path, strategy=Strategy.ROUND_ROBIN, affinity_ttl_seconds=10_000)
    owners = {}
    for i in range(8):
        async with env.pool.acquire(conversation_id=f"conv-{i}") as lease:
            await lease.report_success(response_id=f"resp-{i}")
            owners[i] = lease.account.id
    for i in range(3, 8):  # the newest five stick to their account, again and again
        for _ in range(3):
            async with env.pool.acquire(previous_response_id=f"resp-{i}", conversation_id=f"conv-{i}") as lease:
                assert lease.account.id == owners[i] and not lease.preferred_missed
    assert len(env.pool._by_response._map) == len(env.pool._by_conversation._map) == 5
    assert "resp-0" not in env.pool._by_response._map and "conv-0" not in env.pool._by_conversation._map
