import random

import orjson
import pytest
import trio

from codex_trio.accounts.authjson import read_auth_json
from codex_trio.accounts.model import AccountStatus
from codex_trio.accounts.pool import AccountPool, PoolConfig
from codex_trio.upstream.quota import QuotaSnapshot, QuotaWindow
from codex_trio.accounts.refresh import TokenRefresher
from codex_trio.accounts.service import AccountService
from codex_trio.accounts.store import AccountStore
from codex_trio.errors import GatewayError

from .helpers import FakeClock, FakeIssuer, fixture_identity


async def no_sleep(_s):
    await trio.lowlevel.checkpoint()


async def make_service(tmp_path, clock=None, issuer=None, name="a.db"):
    clock = clock or FakeClock()
    issuer = issuer or FakeIssuer(clock)
    store = await AccountStore.open(tmp_path / name, clock=clock)
    refresher = TokenRefresher(store, issuer, identity=fixture_identity(), clock=clock, sleep=no_sleep, rng=random.Random(0))
    pool = AccountPool(store, refresher, clock=clock)
    probes = []

    async def fetch_quota(account):
        probes.append(account.id)
        return QuotaSnapshot(QuotaWindow(12.0, 300, clock() + 100))

    service = AccountService(store, pool, refresher, issuer, fetch_quota=fetch_quota, clock=clock)
    service.probes = probes
    return service, issuer, clock


async def test_add_by_access_token_refresh_token_and_dedupe(tmp_path):
    service, issuer, clock = await make_service(tmp_path)
    first = issuer.mint("acc-1")
    out = await service.add_by_token({"token": first["access_token"], "label": "main"})
    assert out["created"] and out["account"]["account_id"] == "acc-1" and out["account"]["label"] == "main"
    assert "access_token" not in orjson.dumps(out).decode() and first["access_token"] not in orjson.dumps(out).decode()
    # the same ChatGPT login again (by refresh token): updated, not duplicated
    second = issuer.mint("acc-1")
    out2 = await service.add_by_token({"refreshToken": second["refresh_token"]})
    assert not out2["created"] and out2["account"]["id"] == out["account"]["id"]
    assert out2["account"]["has_refresh_token"] and out2["account"]["label"] == "main"
    listed = await service.list()
    assert [a["id"] for a in listed["accounts"]] == [out["account"]["id"]]
    with pytest.raises(GatewayError) as exc:
        await service.add_by_token({"label": "x"})
    assert exc.value.status == 400
    with pytest.raises(GatewayError) as exc:
        await service.add_by_token({"token": "not-a-jwt"})
    assert exc.value.status == 400 and exc.value.code == "invalid_token"
    used = second["refresh_token"]
    with pytest.raises(GatewayError) as exc:
        await service.add_by_token({"refreshToken": used})
    assert exc.value.status == 400 and exc.value.code == "refresh_token_reused"


async def test_import_export_round_trip_between_instances(tmp_path):
    service, issuer, clock = await make_service(tmp_path)
    a, b = issuer.mint("acc-a"), issuer.mint("acc-b")
    result = await service.import_accounts({"accounts": [
        {"token": a["access_token"], "refreshToken": a["refresh_token"], "label": "A"},
        {"refreshToken": b["refresh_token"], "label": "Backup"},
        {"label": "broken"},
        {"refreshToken": "rt_unknown"},
    ]})
    assert (result["added"], result["updated"], result["failed"]) == (2, 0, 2)
    assert len(result["errors"]) == 2
    again = await service.import_accounts({"accounts": [{"token": a["access_token"]}]})
    assert (again["added"], again["updated"]) == (0, 1)
    acc_a = next(x for x in (await service.list())["accounts"] if x["account_id"] == "acc-a")
    await service.set_cookies(acc_a["id"], {"cf_clearance": "c1"})
    exported = await service.export()
    other, _, _ = await make_service(tmp_path, clock, issuer, name="b.db")
    restored = await other.import_accounts(orjson.dumps(exported))
    assert (restored["added"], restored["failed"]) == (2, 0)
    src = {x["account_id"]: x for x in (await service.list())["accounts"]}
    dst = {x["account_id"]: x for x in (await other.list())["accounts"]}
    assert src.keys() == dst.keys() == {"acc-a", "acc-b"}
    for key in src:
        assert src[key]["installation_id"] == dst[key]["installation_id"]
        assert src[key]["label"] == dst[key]["label"]
    assert (await other.cookies(dst["acc-a"]["id"]))["cookies"] == [{"name": "cf_clearance", "value": "c1"}]
    minimal = await service.export(format="minimal")
    assert sorted(e["label"] for e in minimal["accounts"]) == ["A", "Backup"]
    assert set(minimal["accounts"][0]) == {"refreshToken", "label"}
    assert (await service.export(format="tokens")).count("\n") == 2


async def test_batch_operations_label_and_cookies(tmp_path):
    service, issuer, clock = await make_service(tmp_path)
    ids = [(await service.add_by_token({"token": issuer.mint(f"acc-{i}")["access_token"]}))["account"]["id"]
           for i in range(3)]
    assert (await service.batch_status(ids[:2], "disabled"))["updated"] == 2
    states = {a["id"]: (a["enabled"], a["status"]) for a in (await service.list())["accounts"]}
    assert states[ids[0]] == (False, "disabled") and states[ids[2]] == (True, "active")
    async with service.pool.acquire() as lease:
        assert lease.account.id == ids[2]
    await service.set_enabled(ids[0], True)
    assert (await service.get(ids[0]))["status"] == "active"
    assert (await service.set_label(ids[1], "renamed"))["account"]["label"] == "renamed"
    await service.set_cookies(ids[1], [{"name": "cf_clearance", "value": "1"}])
    await service.set_cookies(ids[1], {"__cf_bm": "2", "cf_clearance": "3"})
    assert (await service.cookies(ids[1]))["cookies"] == [{"name": "cf_clearance", "value": "3"},
                                                           {"name": "__cf_bm", "value": "2"}]
    assert (await service.delete_cookies(ids[1]))["cookies"] == []
    with pytest.raises(GatewayError):
        await service.set_cookies(ids[1], [{"name": 1}])
    assert (await service.batch_delete(ids[:2] + ["nope"]))["deleted"] == 2
    assert [a["id"] for a in (await service.list())["accounts"]] == [ids[2]]
    with pytest.raises(GatewayError) as exc:
        await service.remove("nope")
    assert exc.value.status == 404
    with pytest.raises(GatewayError):
        await service.batch_status(ids, "banned")


async def test_refresh_health_check_and_quota(tmp_path):
    service, issuer, clock = await make_service(tmp_path)
    good = (await service.add_by_token({"refreshToken": issuer.mint("acc-1")["refresh_token"]}))["account"]
    dead_tokens = issuer.mint("acc-2", exp=clock() - 10)
    dead = (await service.add_by_token({"token": dead_tokens["access_token"]}))["account"]
    out = await service.refresh(good["id"])
    assert out["success"] and out["quota"]["primary"]["used_percent"] == 12.0
    assert len(issuer.refresh_calls) == 2  # redeem at add + the manual refresh
    health = await service.health_check()
    by_id = {r["id"]: r for r in health["results"]}
    assert by_id[good["id"]]["ok"] and not by_id[dead["id"]]["ok"]
    assert by_id[dead["id"]]["status"] == "expired"  # access token expired and no refresh token
    assert (await service.quota(good["id"]))["quota"]["primary"]["window_minutes"] == 300
    listed = await service.list(quota="fresh")
    assert all(a["quota"] is not None for a in listed["accounts"] if a["id"] == good["id"])


async def test_import_auth_json_linked(tmp_path):
    service, issuer, clock = await make_service(tmp_path)
    toks = issuer.mint("acc-cli", exp=clock() - 1)
    home = tmp_path / "codex"
    home.mkdir()
    (home / "auth.json").write_bytes(orjson.dumps({"auth_mode": "chatgpt", "OPENAI_API_KEY": None,
                                                   "tokens": {**toks, "account_id": "acc-cli"}}))
    out = await service.import_file(str(home / "auth.json"))
    assert out["linked"] == [{"id": out["linked"][0]["id"], "auth_json_path": str((home / "auth.json").resolve())}]
    async with service.pool.acquire() as lease:  # expired → refreshed on acquire → written back
        new_rt = lease.account.tokens.refresh_token
    assert read_auth_json(home / "auth.json").refresh_token == new_rt != toks["refresh_token"]
    with pytest.raises(GatewayError, match="codex login"):
        await service.import_file(str(tmp_path / "missing" / "auth.json"))


async def test_a_quota_probe_is_learnt_by_the_pool(tmp_path):
    """An admin probe that finds the limit reached cools the account down until the reset (with a warning);
    one after the reset releases it."""
    clock = FakeClock()
    issuer = FakeIssuer(clock)
    store = await AccountStore.open(tmp_path / "a.db", clock=clock)
    refresher = TokenRefresher(store, issuer, identity=fixture_identity(), clock=clock, sleep=no_sleep)
    warned = []
    pool = AccountPool(store, refresher, PoolConfig(warning_thresholds=(90.0,)), clock=clock,
                       on_warning=lambda account, threshold, quota: warned.append((account.id, threshold)))
    answers = [QuotaSnapshot(QuotaWindow(100.0, 300, clock() + 600), limit_reached=True),
               QuotaSnapshot(QuotaWindow(0.0, 300, clock() + 18600))]

    async def fetch_quota(account):
        return answers.pop(0)

    service = AccountService(store, pool, refresher, issuer, fetch_quota=fetch_quota, clock=clock)
    account_id = (await service.add_by_token({"token": issuer.mint("acc-1")["access_token"]}))["account"]["id"]
    await service.quota(account_id)
    stored = await store.get(account_id)
    assert stored.status is AccountStatus.RATE_LIMITED and stored.cooldown_until == clock() + 600
    assert stored.quota["limit_reached"] is True and warned == [(account_id, 90.0)]
    clock.advance(600)
    await service.quota(account_id)
    stored = await store.get(account_id)
    assert stored.status is AccountStatus.ACTIVE and stored.cooldown_until is None
    assert stored.quota["primary"]["used_percent"] == 0.0 and warned == [(account_id, 90.0)]


async def test_an_import_of_refresh_tokens_redeems_a_few_at_a_time(tmp_path):
    from .test_refresh import CountingIssuer

    clock = FakeClock()
    issuer = CountingIssuer(clock)
    issuer.answer_delay = 0.02
    service, issuer, clock = await make_service(tmp_path, clock=clock, issuer=issuer)
    tokens = [issuer.mint(f"acc-{n}")["refresh_token"] for n in range(12)]
    result = await service.import_accounts("\n".join(tokens))
    assert (result["added"], result["failed"]) == (12, 0)
    assert 1 < issuer.most <= 4  # the refresher's default in-flight bound, not one by one nor all at once


async def test_a_listing_adopts_rows_changed_elsewhere_and_keeps_the_pools_equal_records(tmp_path):
    """GET /auth/accounts reads the store and hands the pool what changed there (another process, a CLI).
    A record equal to the pool's is not swapped in: replacing all of them moved the pool's accounts to new
    memory at every listing (issue #20, 5,000 accounts)."""
    service, issuer, clock = await make_service(tmp_path)
    unchanged = (await service.add_by_token({"token": issuer.mint("acc-1")["access_token"]}))["account"]["id"]
    changed = (await service.add_by_token({"token": issuer.mint("acc-2")["access_token"]}))["account"]["id"]
    held = service.pool.get(unchanged)
    await service.store.update(changed, label="renamed by another process")
    views = (await service.list())["accounts"]
    assert [view["id"] for view in views] == [account.id for account in await service.store.list()]  # store order
    listed = {view["id"]: view for view in views}
    assert service.pool.get(unchanged) is held
    assert service.pool.get(changed).label == listed[changed]["label"] == "renamed by another process"
    assert listed[unchanged] == service.describe(held, quota=False)
