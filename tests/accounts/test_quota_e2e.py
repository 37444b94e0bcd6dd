"""End-to-end against the simulator on 127.0.0.1 through the gateway's own services (`run_accounts`): the
native client with the real client's TLS hello, the account pool on the simulator's clock.

* token refreshes go out exactly as the captured ones (headers in wire order, body),
* a 429 usage_limit_reached cools the account down until exactly its reset, then /wham/usage re-verifies it,
* the quota poller keeps usage current and warns once per threshold crossing.
"""

from __future__ import annotations

import json
import math
from contextlib import aclosing, asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import trio

from codex_trio.accounts.model import AccountStatus
from codex_trio.accounts.quota_poller import QuotaPoller
from codex_trio.app import Gateway
from codex_trio.config.store import ConfigStore
from codex_trio.config.writer import update_local_file
from codex_trio.errors import GatewayError
from codex_trio.services import Services, build_services, run_accounts
from codex_trio.sim import Simulator, running_sim
from codex_trio.upstream.context import AccountAuth, ModelTraits, ThreadContext, TurnContext
from codex_trio.upstream.transport import UpstreamFailed, sse_turn

from .helpers import fixture_identity
from tests.conftest import FIXTURES

OAUTH_FIXTURES = FIXTURES / "chatgpt-mode/oauth"


@asynccontextmanager
async def gateway_services(tmp_path: Path, sim: Simulator, **local: Any) -> AsyncIterator[Services]:
    """The gateway's services pointed at the simulator, the accounts job running on its clock."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    update_local_file(data_dir / "local.yaml", {
        "api": {"base_url": sim.urls.backend_base, "auth_base_url": sim.urls.auth_base},
        "tls": {"ca_file": sim.ca_file}, "client": {"identity": "codex-exec"}, **local})
    config = ConfigStore(data_dir, environ={})
    config.ensure_first_start()
    gateway = Gateway(config=config)
    services = gateway.services = build_services(gateway)
    services.connector.identity = fixture_identity()  # the captures' platform (Debian 12, x86_64, xterm)
    services.connector.clock = sim.clock.now
    async with trio.open_nursery() as nursery:
        await nursery.start(run_accounts, gateway)
        yield services
        nursery.cancel_scope.cancel()


async def add_sim_accounts(services: Services, sim: Simulator) -> list[str]:
    ids = []
    for account in sim.accounts:
        added, _ = await services.accounts.add_tokens(access_token=account.access_token,
                                                      refresh_token=account.refresh_token, id_token=account.id_token)
        ids.append(added.id)
    return ids


def assert_refresh_matches_capture(recorded, fixture_name: str, refresh_token: str) -> None:
    """Headers in wire order with only host and content-length masked; the body with the token masked."""
    fixture = json.loads((OAUTH_FIXTURES / fixture_name).read_text())
    masked = {"host", "content-length"}
    wire = [[k, "<masked>" if k in masked else v] for k, v in recorded.headers]
    assert wire == [[k, "<masked>" if k in masked else v] for k, v in fixture["headers"]]
    assert recorded.header("content-length") == str(len(recorded.raw_body))
    expected = json.dumps(fixture["body"], separators=(",", ":"), ensure_ascii=False)
    assert recorded.raw_body.decode() == expected.replace("<REFRESH_TOKEN>", refresh_token)
    assert (recorded.method, recorded.path, recorded.http_version) == ("POST", "/oauth/token", "1.1")


async def test_refreshes_go_out_exactly_as_the_captured_ones(tmp_path):
    async with running_sim(accounts=1, token_ttl_seconds=3600) as sim, \
            gateway_services(tmp_path, sim) as services:
        await add_sim_accounts(services, sim)
        first_token = sim.accounts[0].refresh_token
        sim.clock.advance(3600)  # expired: the next acquire refreshes before anything else
        async with services.pool.acquire() as lease:
            proactive = sim.requests_to("/oauth/token", "POST")[-1]
            assert proactive.status == 200
            assert_refresh_matches_capture(proactive, "refresh-proactive-expiry.json", first_token)
            second_token = lease.account.tokens.refresh_token
            assert second_token != first_token
            # two 401s on the same token: the first reloads, the second refreshes (unauthorized_recovery)
            assert await lease.mark_token_invalid() and await lease.mark_token_invalid()
        recovery = sim.requests_to("/oauth/token", "POST")[-1]
        assert recovery.status == 200
        assert_refresh_matches_capture(recovery, "refresh-unauthorized-recovery.json", second_token)


def align_to_a_second(sim: Simulator) -> None:
    """Reports carry whole-second reset times while the simulator rolls a window at its exact start plus
    its length: starting windows on a second boundary (within the test's few milliseconds) makes the two
    agree, so checks half a second after a reset are deterministic."""
    now = sim.clock.now()
    sim.clock.advance(math.ceil(now) - now)


async def turn_on(services: Services, lease, model: str = "gpt-5.5") -> None:
    """One real `POST /codex/responses` turn on the leased account through the native client; rate-limit
    headers and failures are reported to the pool as the dispatcher does."""
    account = lease.account
    auth = AccountAuth(account.tokens.access_token, account.account_id)
    thread = ThreadContext.new(account.installation_id)
    request = {"model": model, "input": [{"type": "message", "role": "user",
                                              "content": [{"type": "input_text", "text": "hi"}]}]}
    snapshots = []
    connector = services.connector
    async with aclosing(sse_turn(connector.clients_for(account).http, connector.identity, connector.endpoint, auth,
                                 thread, TurnContext.new(), request, ModelTraits(), clock=connector.clock,
                                 on_quota=snapshots.append)) as stream:
        async for _ in stream:
            pass
    await lease.report_success(snapshots[-1] if snapshots else None)


async def test_429_cools_down_until_exactly_the_reset_then_reverifies_through_usage(tmp_path):
    async with running_sim(accounts=1) as sim, gateway_services(tmp_path, sim) as services:
        [account_id] = await add_sim_accounts(services, sim)
        pool = services.pool
        align_to_a_second(sim)
        async with pool.acquire() as lease:
            await turn_on(services, lease)
        assert pool.runtime_info(account_id)["quota"]["primary"]["used_percent"] < 100  # from the headers
        sim.exhaust(sim.accounts[0].account_id)
        async with pool.acquire() as lease:
            with pytest.raises(UpstreamFailed) as info:
                await turn_on(services, lease)
            failure = info.value.failure
            assert failure.code == "usage_limit_reached" and failure.quota.primary.exhausted
            await lease.mark_rate_limited(failure.cooldown_until, failure.quota)
        reset = failure.cooldown_until
        assert pool.get(account_id).status is AccountStatus.RATE_LIMITED
        assert pool.get(account_id).cooldown_until == reset > sim.clock.now()
        usage_before = len(sim.requests_to("/wham/usage", "GET"))
        sim.clock.advance(reset - sim.clock.now() - 0.2)  # just before the reset: still held, nothing asked
        with pytest.raises(GatewayError) as held:
            async with pool.acquire():
                pass
        assert held.value.status == 429 and held.value.code == "usage_limit_reached"
        assert len(sim.requests_to("/wham/usage", "GET")) == usage_before
        sim.clock.advance(0.7)  # the reset has passed (by half a second)
        async with pool.acquire() as lease:
            assert lease.account.id == account_id
        checks = sim.requests_to("/wham/usage", "GET")[usage_before:]
        assert len(checks) == 1 and checks[0].status == 200
        assert pool.get(account_id).status is AccountStatus.ACTIVE and pool.get(account_id).cooldown_until is None
        assert pool.runtime_info(account_id)["quota"]["primary"]["used_percent"] == 0


async def test_poller_updates_quota_and_warns_once_per_crossing(tmp_path, caplog):
    async with running_sim(accounts=2) as sim, \
            gateway_services(tmp_path, sim, quota={"warning_thresholds": [50, 90]}) as services:
        ids = await add_sim_accounts(services, sim)
        pool = services.pool
        poller = QuotaPoller(pool, interval=lambda: 300.0)
        assert sorted(await poller.poll_once()) == sorted(ids)  # never checked: both are due
        assert await poller.poll_once() == []  # fresh: nothing due
        assert all(pool.get(i).quota["primary"]["used_percent"] == 0 for i in ids)
        align_to_a_second(sim)
        sim.exhaust(sim.accounts[0].account_id)
        sim.clock.advance(300)
        with caplog.at_level("WARNING"):
            assert sorted(await poller.poll_once()) == sorted(ids)
        full = pool.get(ids[0])
        assert full.quota["primary"]["used_percent"] == 100 and full.status is AccountStatus.RATE_LIMITED
        warned = services.quota_warnings.recent()
        assert [(w["id"], w["threshold"]) for w in warned] == [(ids[0], 50), (ids[0], 90)]
        assert sum("warning threshold" in r.getMessage() for r in caplog.records) == 2
        sim.clock.advance(300)
        assert await poller.poll_once() == [ids[1]]  # the limited one waits for its reset
        assert len(services.quota_warnings.recent()) == 2  # still over: no new warning
        # the reset passes: the poller re-verifies it through /wham/usage and releases it
        sim.clock.advance(full.cooldown_until - sim.clock.now() + 0.5)
        assert ids[0] in await poller.poll_once()
        assert pool.get(ids[0]).status is AccountStatus.ACTIVE
        assert pool.get(ids[0]).quota["primary"]["used_percent"] == 0
        assert len(services.quota_warnings.recent()) == 2


async def test_poller_job_wakes_when_a_cooldown_ends(tmp_path):
    """The running job sleeps the interval, or less when a cooldown ends sooner, and re-verifies then."""
    async with running_sim(accounts=1) as sim, gateway_services(tmp_path, sim) as services:
        [account_id] = await add_sim_accounts(services, sim)
        align_to_a_second(sim)
        sim.exhaust(sim.accounts[0].account_id)
        waits: list[float] = []
        third_round = trio.Event()

        async def sleep(seconds: float) -> None:  # the job's sleeps move the simulated clock instead
            waits.append(seconds)
            if len(waits) == 2:
                third_round.set()
                await trio.sleep_forever()
            sim.clock.advance(seconds)

        poller = QuotaPoller(services.pool, interval=lambda: 7 * 86400.0, sleep=sleep)
        async with trio.open_nursery() as nursery:
            await nursery.start(poller.run)
            await third_round.wait()
            nursery.cancel_scope.cancel()
        account = services.pool.get(account_id)
        assert account.status is AccountStatus.ACTIVE and account.quota["primary"]["used_percent"] == 0
        assert 0 < waits[0] < 5 * 3600 + 1  # woke for the 5-hour reset, not after the 7-day interval
        assert waits[1] == 7 * 86400.0  # nothing left to wait for
        assert [r.status for r in sim.requests_to("/wham/usage", "GET")][-2:] == [200, 200]


async def test_a_per_model_limit_blocks_only_that_model(tmp_path):
    """A 429 for the model with its own metered limit (the simulator's gpt-6-luna → codex_bengalfox) leaves
    the account serving every other model; that model waits for its bucket's reset."""
    async with running_sim(accounts=1) as sim, gateway_services(tmp_path, sim) as services:
        [account_id] = await add_sim_accounts(services, sim)
        pool = services.pool
        align_to_a_second(sim)
        sim.exhaust(sim.accounts[0].account_id, "codex_bengalfox")
        async with pool.acquire(model="gpt-6-luna") as lease:
            with pytest.raises(UpstreamFailed) as info:
                await turn_on(services, lease, "gpt-6-luna")
            failure = info.value.failure
            assert failure.code == "usage_limit_reached"
            await lease.mark_rate_limited(failure.cooldown_until, failure.quota)
        assert pool.get(account_id).status is AccountStatus.ACTIVE
        with pytest.raises(GatewayError) as held:
            async with pool.acquire(model="gpt-6-luna"):
                pass
        assert held.value.status == 429
        assert held.value.retry_after == pytest.approx(failure.cooldown_until - sim.clock.now(), abs=1)
        async with pool.acquire(model="gpt-5.5") as lease:
            await turn_on(services, lease)  # the main limit has room
        sim.clock.advance(failure.cooldown_until - sim.clock.now() + 0.5)
        async with pool.acquire(model="gpt-6-luna") as lease:
            await turn_on(services, lease, "gpt-6-luna")  # the bucket reset: served again


async def test_services_keep_each_accounts_cookie_jar(tmp_path):
    async with running_sim(accounts=2) as sim, gateway_services(tmp_path, sim) as services:
        first, second = await add_sim_accounts(services, sim)
        url = "https://chatgpt.com/backend-api/codex/responses"
        jar = services.connector.cookie_jar_for(services.pool.get(first))
        jar.capture(url, [("set-cookie", "cf_clearance=ok; Domain=chatgpt.com; Path=/; Max-Age=3600")])
        await services.connector.save_cookies(services.pool.get(first), jar)
        assert services.connector.cookie_jar_for(await services.store.get(first)).header_for(url) == "cf_clearance=ok"
        assert services.connector.cookie_jar_for(services.pool.get(second)).header_for(url) is None
