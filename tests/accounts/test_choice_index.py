"""The pool's choice index (accounts/choice_index.py) chooses exactly what the scan over every account chooses.

Two pools over identical stores and one clock: one always scans (the index threshold out of reach), one reads
every choice it can from the index. Random pools and random event sequences (leases held open, successes with
quota reports, rate limits, Cloudflare cooldowns, bans, per-model limits, plan catalogs, strategy changes,
affinity, time passing resets and cooldowns) must give the same account for every request, and the same error
when there is none.
"""

from __future__ import annotations

import random
import uuid

import pytest
import trio

from codex_trio.accounts.model import Account, Tokens
from codex_trio.accounts.pool import AccountPool, Failure, PoolConfig, Strategy
from codex_trio.accounts.refresh import TokenRefresher
from codex_trio.accounts.store import AccountStore
from codex_trio.errors import GatewayError
from codex_trio.upstream.quota import LimitBucket, QuotaSnapshot, QuotaWindow

from .helpers import FakeClock, FakeIssuer, access_token, fixture_identity

MODELS = ["gpt-5.5", "gpt-5.5-mini", "gpt-5.3-codex-spark"]
PLANS = ["plus", "pro", "team", None]


async def no_sleep(_s: float) -> None:
    await trio.lowlevel.checkpoint()


def random_accounts(rng: random.Random, n: int, now: float) -> list[Account]:
    out = []
    for i in range(n):
        plan = rng.choice(PLANS)
        quota = None
        if rng.random() < 0.6:
            # few distinct reset times, so ranks tie and horizons move as windows pass
            quota = {"primary": {"used_percent": rng.choice([0, 10, 50, 100]), "window_minutes": 300,
                                 "resets_at": now + rng.choice([30, 60, 90, 400, 3600])},
                     "secondary": {"used_percent": rng.choice([0, 20]), "window_minutes": 10080,
                                   "resets_at": now + rng.choice([600, 86400])}}
        out.append(Account(id=f"id-{i:03d}", tokens=Tokens(access_token(f"acc-{i}", now + 864000), "rt", None),
                           account_id=f"acc-{i}", plan=plan, access_expires_at=now + 864000,
                           installation_id=str(uuid.uuid4()), quota=quota,
                           request_count=rng.choice([0, 0, 1, 5]),
                           last_used_at=rng.choice([None, now - 10, now - 5]),
                           created_at=float(rng.choice([i, i, 1]))))
    return out


def verifier(clock: FakeClock):
    async def verify(account: Account) -> QuotaSnapshot | None:
        # deterministic per account and time: sometimes no answer, sometimes still full, sometimes free
        kind = (int(account.id[3:]) + int(clock())) % 3
        if kind == 0:
            return None
        used = 100.0 if kind == 1 else 5.0
        return QuotaSnapshot(QuotaWindow(used, 300, clock() + 120))
    return verify


async def make_pool(tmp_path, name: str, accounts: list[Account], clock: FakeClock, *, indexed: bool) -> AccountPool:
    store = await AccountStore.open(tmp_path / f"{name}.db", clock=clock)
    await store.insert_many([Account(**{f: getattr(a, f) for f in a.__slots__}) for a in accounts])
    refresher = TokenRefresher(store, FakeIssuer(clock), identity=fixture_identity(), clock=clock, sleep=no_sleep,
                               rng=random.Random(0))
    pool = AccountPool(store, refresher, PoolConfig(max_concurrent_per_account=2, slot_wait_seconds=0), clock=clock,
                       verify_quota=verifier(clock))
    pool.INDEX_MIN_ACCOUNTS = 0 if indexed else 10**9
    await pool.load()
    return pool


def random_quota(rng: random.Random, now: float) -> QuotaSnapshot:
    buckets = ()
    if rng.random() < 0.2:
        buckets = (LimitBucket("codex_bengalfox", None, QuotaWindow(rng.choice([50.0, 100.0]), 300, now + 45)),)
    return QuotaSnapshot(QuotaWindow(rng.choice([1.0, 30.0, 99.0, 100.0]), 300, now + rng.choice([20, 61, 200, 3000])),
                         QuotaWindow(10.0, 10080, now + 86400), limit_reached=rng.random() < 0.05, buckets=buckets)


@pytest.mark.parametrize("seed", range(30))
async def test_index_chooses_what_the_scan_chooses(tmp_path, seed):
    rng = random.Random(seed)
    clock = FakeClock()
    accounts = random_accounts(rng, rng.choice([5, 40, 120]), clock())
    pools = [await make_pool(tmp_path, "scan", accounts, clock, indexed=False),
             await make_pool(tmp_path, "index", accounts, clock, indexed=True)]
    held: list[list] = [[], []]  # open leases: (context manager, lease) per pool, in the same order
    responses: list[str] = []
    indexed_choices = 0
    pick_indexed = pools[1]._pick_indexed

    def counting_pick(*args):
        nonlocal indexed_choices
        picked = pick_indexed(*args)
        indexed_choices += picked is not None
        return picked

    pools[1]._pick_indexed = counting_pick

    for step in range(400):
        action = rng.random()
        if action < 0.05:
            clock.advance(rng.choice([1, 15, 31, 59, 61, 120, 700]))
            continue
        if action < 0.08:
            config = PoolConfig(strategy=rng.choice(list(Strategy)), max_concurrent_per_account=rng.choice([1, 2, 3]))
            for pool in pools:
                pool.reconfigure(PoolConfig(strategy=config.strategy, slot_wait_seconds=0,
                                            max_concurrent_per_account=config.max_concurrent_per_account))
            continue
        if action < 0.10:
            plan, models = rng.choice(PLANS[:3]), rng.sample(MODELS, rng.choice([1, 2]))
            for pool in pools:
                pool.set_plan_models(plan, models)
            continue
        if action < 0.30 and held[0]:
            # an outcome on one open lease, which then ends or (sometimes) stays open while others choose
            i = rng.randrange(len(held[0]))
            outcome, quota, now = rng.random(), random_quota(rng, clock()), clock()
            delay, keep_open = rng.choice([30, 90, 400]), rng.random() < 0.3
            for side in (0, 1):
                cm, lease = held[side][i]
                if outcome < 0.5:
                    await lease.report_success(quota if outcome < 0.3 else None, response_id=f"r{step}",
                                               input_tokens=3, output_tokens=4)
                elif outcome < 0.7:
                    await lease.mark_rate_limited(now + delay if outcome < 0.65
                                                  else None, quota if outcome < 0.6 else None)
                elif outcome < 0.8:
                    await lease.report_failure(Failure.CLOUDFLARE_CHALLENGE)
                elif outcome < 0.82:
                    await lease.mark_banned("test")
                elif outcome < 0.9:
                    await lease.update_quota(quota)
                if not keep_open:
                    del held[side][i]
                    await cm.__aexit__(None, None, None)
            if outcome < 0.5:
                responses.append(f"r{step}")
            continue
        # a request
        model = rng.choice(MODELS + [None])
        conversation = f"c{rng.randrange(8)}" if rng.random() < 0.5 else None
        previous = rng.choice(responses) if responses and rng.random() < 0.3 else None
        outcomes = []
        for side, pool in enumerate(pools):
            cm = pool.acquire(model=model, conversation_id=conversation, previous_response_id=previous)
            try:
                lease = await cm.__aenter__()
            except GatewayError as exc:
                outcomes.append(("error", exc.status, exc.message))
                continue
            held[side].append((cm, lease))
            outcomes.append((lease.account.id, lease.preferred_missed))
        assert outcomes[0] == outcomes[1], f"step {step}: scan chose {outcomes[0]}, index chose {outcomes[1]}"
        if len(held[0]) > 12:  # keep some slots free
            for side in (0, 1):
                cm, lease = held[side].pop(0)
                await cm.__aexit__(None, None, None)

    assert indexed_choices > 10, indexed_choices  # the index really served choices


async def test_five_thousand_accounts_choice_does_not_scan(tmp_path):
    """With an index a choice reads a handful of accounts, whatever the pool's size."""
    rng = random.Random(7)
    clock = FakeClock()
    pool = await make_pool(tmp_path, "big", random_accounts(rng, 5000, clock()), clock, indexed=True)
    async with pool.acquire(model="gpt-5.5") as lease:  # builds the index
        await lease.report_success(input_tokens=1)
    calls = 0
    blocked_reason = pool._blocked_reason

    def counting(*args):
        nonlocal calls
        calls += 1
        return blocked_reason(*args)

    pool._blocked_reason = counting
    for i in range(200):
        async with pool.acquire(model="gpt-5.5", conversation_id=f"c{i}") as lease:
            await lease.report_success(input_tokens=1)
    assert calls <= 2 * 200 * 2  # the chosen account moves when taken and when released (the scan: 5,000 each)


async def test_models_sharing_an_index_keep_their_own_limit(tmp_path):
    """A model that learns its own metered limit (a full `codex_bengalfox` bucket) moves to an index of its own;
    another model that shared the index with it keeps seeing that account as usable."""
    clock = FakeClock()
    accounts = random_accounts(random.Random(1), 2, clock())
    for account in accounts:
        account.quota, account.request_count, account.last_used_at = None, 0, None
    pools = [await make_pool(tmp_path, "scan", accounts, clock, indexed=False),
             await make_pool(tmp_path, "index", accounts, clock, indexed=True)]
    full_bucket = QuotaSnapshot(QuotaWindow(10.0, 300, clock() + 300), buckets=(
        LimitBucket("codex_bengalfox", None, QuotaWindow(100.0, 300, clock() + 300)),))
    choices: list[list[str]] = [[], []]
    for side, pool in enumerate(pools):
        async with pool.acquire(model="gpt-5.3-codex-spark") as lease:
            await lease.mark_rate_limited(None, full_bucket)  # only the spark model's own limit is full
        assert pool.config.model_limit_ids == {"gpt-5.3-codex-spark": "codex_bengalfox"}
        for _ in range(4):
            async with pool.acquire(model="gpt-5.5") as lease:
                choices[side].append(lease.account.id)
    assert choices[0] == choices[1]
    assert len(set(choices[1])) == 2  # both accounts serve gpt-5.5
