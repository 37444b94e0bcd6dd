import random
import uuid

import orjson
import pytest
import trio

from codex_trio.accounts import oauth
from codex_trio.accounts.authjson import read_auth_json
from codex_trio.accounts.jwt import identity_from_tokens
from codex_trio.accounts.model import Account, AccountStatus, Tokens
from codex_trio.accounts.refresh import RefreshFailed, TokenRefresher
from codex_trio.accounts.store import AccountStore
from codex_trio.upstream.body import refresh_body

from .helpers import FakeClock, FakeIssuer, fixture_identity

# a proactive refresh goes out before the client is initialised: bootstrap user-agent (fixture)
PROACTIVE_HEADERS = [("content-type", "application/json"), ("originator", "codex_exec"),
                     ("user-agent", "codex_exec/0.169.0 (Debian 12.0.0; x86_64) xterm"), ("accept", "*/*")]


async def no_sleep(_seconds: float) -> None:
    await trio.lowlevel.checkpoint()


async def setup(tmp_path, clock, issuer, *, exp_in=-10.0, n=1, **kw):
    store = await AccountStore.open(tmp_path / "a.db", clock=clock)
    accounts = []
    for i in range(n):
        toks = issuer.mint(f"acc-{i}", exp=clock() + exp_in)
        ident = identity_from_tokens(toks["access_token"])
        account = Account(id=str(uuid.uuid4()), tokens=Tokens(toks["access_token"], toks["refresh_token"],
                                                                toks["id_token"]),
                          account_id=ident.account_id, access_expires_at=ident.expires_at,
                          installation_id=str(uuid.uuid4()), **kw)
        await store.insert(account)
        accounts.append(account)
    refresher = TokenRefresher(store, issuer, identity=fixture_identity(), clock=clock, sleep=no_sleep, rng=random.Random(1))
    return store, refresher, accounts


async def test_proactive_refresh_persists_before_returning_and_sends_the_real_body(tmp_path):
    clock = FakeClock()
    issuer = FakeIssuer(clock)
    store, refresher, [account] = await setup(tmp_path, clock, issuer)
    old_rt = account.tokens.refresh_token
    fresh = await refresher.ensure_fresh(account)
    assert issuer.refresh_calls == [{"client_id": fixture_identity().oauth_client_id, "grant_type": "refresh_token",
                                     "refresh_reason": "proactive_expiry", "refresh_token": old_rt}]
    assert issuer.headers_seen[0] == PROACTIVE_HEADERS
    stored = await store.get(account.id)
    assert stored.tokens == fresh.tokens and stored.tokens.refresh_token != old_rt
    assert stored.status is AccountStatus.ACTIVE and stored.last_refresh == clock()
    assert stored.access_expires_at == pytest.approx(clock() + issuer.ttl)
    # still fresh: no second call
    assert (await refresher.ensure_fresh(stored)).tokens == stored.tokens
    assert len(issuer.refresh_calls) == 1


async def test_margin_triggers_refresh_before_exp(tmp_path):
    clock = FakeClock()
    issuer = FakeIssuer(clock)
    store, refresher, [account] = await setup(tmp_path, clock, issuer, exp_in=200)  # margin 300
    await refresher.ensure_fresh(account)
    assert len(issuer.refresh_calls) == 1
    refresher.margin_seconds = 0
    store2, refresher2, [other] = await setup(tmp_path / "x", clock, issuer, exp_in=200)
    refresher2.margin_seconds = 100
    assert await refresher2.ensure_fresh(other) is other and len(issuer.refresh_calls) == 1


async def test_single_flight_many_waiters_one_refresh(tmp_path):
    clock = FakeClock()
    issuer = FakeIssuer(clock, delay=0.01)
    store, refresher, accounts = await setup(tmp_path, clock, issuer, n=10)
    results: list[Account] = []

    async def use(account: Account) -> None:
        results.append(await refresher.ensure_fresh(account))

    async with trio.open_nursery() as nursery:
        for account in accounts:
            for _ in range(20):
                nursery.start_soon(use, account)
    assert len(issuer.refresh_calls) == 10  # exactly one per account
    assert len({c["refresh_token"] for c in issuer.refresh_calls}) == 10
    for account in accounts:
        stored = await store.get(account.id)
        assert {r.tokens.access_token for r in results if r.id == account.id} == {stored.tokens.access_token}


async def test_unauthorized_recovery_uses_its_reason_and_reuses_a_newer_token(tmp_path):
    clock = FakeClock()
    issuer = FakeIssuer(clock)
    store, refresher, [account] = await setup(tmp_path, clock, issuer, exp_in=3600)
    seen = account.tokens.access_token
    first = await refresher.refresh(account.id, oauth.RefreshReason.UNAUTHORIZED_RECOVERY, seen_access_token=seen)
    assert issuer.refresh_calls[-1]["refresh_reason"] == "unauthorized_recovery"
    # after initialisation: the user-agent carries the client name (fixture refresh-unauthorized-recovery)
    assert dict(issuer.headers_seen[-1])["user-agent"] == \
        "codex_exec/0.169.0 (Debian 12.0.0; x86_64) xterm (codex_exec; 0.169.0)"
    # a second request that also saw the old token fail gets the result, no new call
    again = await refresher.refresh(account.id, oauth.RefreshReason.UNAUTHORIZED_RECOVERY, seen_access_token=seen)
    assert again.tokens == first.tokens and len(issuer.refresh_calls) == 1


@pytest.mark.parametrize("code", ["refresh_token_reused", "invalid_grant"])
async def test_permanent_error_marks_expired_with_reason(tmp_path, code):
    clock = FakeClock()
    issuer = FakeIssuer(clock)
    store, refresher, [account] = await setup(tmp_path, clock, issuer)
    if code == "refresh_token_reused":
        issuer.used.add(issuer.live.popitem()[0])
    else:
        issuer.live.clear()
    with pytest.raises(RefreshFailed) as exc:
        await refresher.ensure_fresh(account)
    assert exc.value.permanent and exc.value.code == code
    stored = await store.get(account.id)
    assert stored.status is AccountStatus.EXPIRED and stored.status_reason.startswith(code)
    assert len(issuer.refresh_calls) == 1  # a verdict is never retried


async def test_transient_errors_retry_with_backoff_then_succeed(tmp_path):
    clock = FakeClock()
    issuer = FakeIssuer(clock, script=["500", "not_delivered", "500"])
    store, refresher, [account] = await setup(tmp_path, clock, issuer)
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    refresher._sleep = record
    fresh = await refresher.ensure_fresh(account)
    assert len(sleeps) == 3 and sleeps[0] < sleeps[1] < sleeps[2]
    assert 0.7 <= sleeps[0] <= 1.3
    assert (await store.get(account.id)).tokens == fresh.tokens
    assert len(issuer.refresh_calls) == 1  # 500s and the undelivered try did not consume the token


async def test_transient_errors_exhausted_keep_tokens_and_status(tmp_path):
    clock = FakeClock()
    issuer = FakeIssuer(clock, script=["500"] * 5)
    store, refresher, [account] = await setup(tmp_path, clock, issuer, exp_in=60)
    with pytest.raises(RefreshFailed) as exc:
        await refresher.ensure_fresh(account)
    assert not exc.value.permanent
    stored = await store.get(account.id)
    assert stored.tokens == account.tokens and stored.status is AccountStatus.ACTIVE
    assert "500" in stored.status_reason


async def test_lost_answer_is_confirmed_not_blindly_resent(tmp_path):
    """The issuer rotated the token but the answer was lost: the successor is gone. The confirming resend
    gets refresh_token_reused and the account is expired with an explanation (never silently active)."""
    clock = FakeClock()
    issuer = FakeIssuer(clock, script=["lost"])
    store, refresher, [account] = await setup(tmp_path, clock, issuer)
    with pytest.raises(RefreshFailed) as exc:
        await refresher.ensure_fresh(account)
    assert exc.value.permanent
    stored = await store.get(account.id)
    assert stored.status is AccountStatus.EXPIRED and "answer was lost" in stored.status_reason
    assert len(issuer.refresh_calls) == 2


async def test_lost_answer_adopts_a_successor_written_by_another_process(tmp_path):
    clock = FakeClock()
    issuer = FakeIssuer(clock)
    store, refresher, [account] = await setup(tmp_path, clock, issuer)

    class OtherProcessWins:
        """The first refresh's answer is lost to us, but another process got it and stored it."""

        async def post(self, url, headers, body):
            answer = await issuer.post(url, headers, body)
            grant = orjson.loads(answer.body)
            await store.update(account.id, access_token=grant["access_token"],
                               refresh_token=grant["refresh_token"])
            refresher._http = issuer
            raise ConnectionResetError("lost")

    refresher._http = OtherProcessWins()
    fresh = await refresher.ensure_fresh(account)
    assert len(issuer.refresh_calls) == 1  # nothing resent
    assert fresh.tokens.refresh_token in issuer.live


async def test_unknown_outcome_survives_restart_and_is_confirmed_first(tmp_path):
    clock = FakeClock()
    issuer = FakeIssuer(clock, script=["lost"] + ["not_delivered"] * 4)
    store, refresher, [account] = await setup(tmp_path, clock, issuer, exp_in=3600)
    with pytest.raises(RefreshFailed) as exc:
        await refresher.refresh(account.id, oauth.RefreshReason.UNAUTHORIZED_RECOVERY)
    assert not exc.value.permanent
    stored = await store.get(account.id)
    assert stored.status is AccountStatus.REFRESHING  # a restart sees "outcome unknown"
    # later (e.g. after a restart) the unknown outcome is confirmed first, even though exp is far away
    issuer.script.clear()
    with pytest.raises(RefreshFailed, match="answer was lost"):
        await refresher.refresh(stored.id, oauth.RefreshReason.PROACTIVE_EXPIRY)
    assert (await store.get(account.id)).status is AccountStatus.EXPIRED


async def test_linked_auth_json_gets_the_new_tokens_and_cli_rotation_is_adopted(tmp_path):
    clock = FakeClock()
    issuer = FakeIssuer(clock)
    auth = tmp_path / "auth.json"
    store, refresher, [account] = await setup(tmp_path, clock, issuer)
    auth.write_bytes(orjson.dumps({"auth_mode": "chatgpt", "OPENAI_API_KEY": None, "tokens": {
        "id_token": account.tokens.id_token, "access_token": account.tokens.access_token,
        "refresh_token": account.tokens.refresh_token, "account_id": "acc-0"}}))
    await store.update(account.id, auth_json_path=str(auth))
    account.auth_json_path = str(auth)
    fresh = await refresher.ensure_fresh(account)
    login = read_auth_json(auth)
    assert (login.access_token, login.refresh_token) == (fresh.tokens.access_token, fresh.tokens.refresh_token)
    # now the CLI refreshes by itself; our next refresh must adopt its tokens, not burn our stale copy
    clock.advance(issuer.ttl)
    cli = await issuer.post(oauth.token_url(), [], refresh_body(fixture_identity(), login.refresh_token,
                                                                "proactive_expiry"))
    cli_tokens = orjson.loads(cli.body)
    data = orjson.loads(auth.read_bytes())
    data["tokens"].update(access_token=cli_tokens["access_token"], refresh_token=cli_tokens["refresh_token"])
    auth.write_bytes(orjson.dumps(data))
    calls = len(issuer.refresh_calls)
    adopted = await refresher.ensure_fresh(await store.get(account.id))
    assert len(issuer.refresh_calls) == calls
    assert adopted.tokens.refresh_token == cli_tokens["refresh_token"]
    assert (await store.get(account.id)).tokens.refresh_token == cli_tokens["refresh_token"]


async def test_background_job_confirms_unknown_outcomes_and_refreshes_due_accounts(tmp_path):
    clock = FakeClock()
    issuer = FakeIssuer(clock)
    store, refresher, accounts = await setup(tmp_path, clock, issuer, n=3, exp_in=86400)
    await store.update(accounts[0].id, status=AccountStatus.REFRESHING, status_reason="refresh in flight")
    await store.update(accounts[1].id, access_expires_at=clock() + 10)  # due
    rounds = []

    class _Stop(Exception):
        pass

    async def sleep(seconds):  # end the job after its first round
        rounds.append(seconds)
        raise _Stop()

    refresher._sleep = sleep
    with pytest.raises(_Stop):
        await refresher.run(interval=30)
    sent = {c["refresh_token"] for c in issuer.refresh_calls}
    assert sent == {accounts[0].tokens.refresh_token, accounts[1].tokens.refresh_token}
    assert rounds == [30]
    assert (await store.get(accounts[0].id)).status is AccountStatus.ACTIVE


class CountingIssuer(FakeIssuer):
    """Rotates the token when the request arrives and answers `answer_delay` later (as a real issuer far away
    does); counts the requests it holds at once."""

    answer_delay: float = 0.0
    in_flight: int = 0
    most: int = 0

    async def post(self, url, headers, body):
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            answer = await super().post(url, headers, body)
            await trio.sleep(self.answer_delay)
            return answer
        finally:
            self.in_flight -= 1


async def test_refreshes_in_flight_never_exceed_the_bound(tmp_path):
    clock = FakeClock()
    issuer = CountingIssuer(clock)
    issuer.answer_delay = 0.02
    store, refresher, accounts = await setup(tmp_path, clock, issuer, n=12)
    refresher = TokenRefresher(store, issuer, identity=fixture_identity(), clock=clock, sleep=no_sleep,
                               max_in_flight=lambda: 3)
    async with trio.open_nursery() as nursery:
        for account in accounts:
            nursery.start_soon(refresher.ensure_fresh, account)
    assert issuer.most == 3 and len(issuer.refresh_calls) == 12
    stored = [await store.get(a.id) for a in accounts]
    assert all(s.tokens.refresh_token != a.tokens.refresh_token for s, a in zip(stored, accounts))


async def test_drain_waits_for_refreshes_in_flight_and_starts_no_new_one(tmp_path):
    clock = FakeClock()
    issuer = CountingIssuer(clock)
    issuer.answer_delay = 0.3
    store, refresher, accounts = await setup(tmp_path, clock, issuer, n=6)
    refresher = TokenRefresher(store, issuer, identity=fixture_identity(), clock=clock, sleep=no_sleep,
                               max_in_flight=2)
    outcomes = {}

    async def refresh(account):
        try:
            outcomes[account.id] = await refresher.ensure_fresh(account)
        except RefreshFailed as exc:
            outcomes[account.id] = exc

    async with trio.open_nursery() as nursery:
        for account in accounts:
            nursery.start_soon(refresh, account)
        while issuer.in_flight < 2:
            await trio.sleep(0.01)
        assert await refresher.drain(10) == 0
        # what was in flight has committed by the time drain returns
        refreshed = [a for a in accounts if (await store.get(a.id)).tokens.refresh_token != a.tokens.refresh_token]
        assert len(refreshed) == 2
    refused = [a for a in accounts if isinstance(outcomes[a.id], RefreshFailed)]
    assert len(refused) == 4 and all("shutting down" in str(outcomes[a.id]) for a in refused)
    assert not {a.tokens.refresh_token for a in refused} & issuer.used  # their tokens were never sent


async def test_a_cancelled_caller_does_not_lose_the_refresh_answer(tmp_path):
    """A client that disconnects cancels its request; the refresh it started must still commit the new
    token the issuer has already issued."""
    clock = FakeClock()
    issuer = CountingIssuer(clock)
    issuer.answer_delay = 0.2
    store, refresher, [account] = await setup(tmp_path, clock, issuer)
    with trio.move_on_after(0.05):
        await refresher.ensure_fresh(account)
    while issuer.in_flight or refresher.in_flight:
        await trio.sleep(0.01)
    stored = await store.get(account.id)
    assert account.tokens.refresh_token in issuer.used
    assert stored.tokens.refresh_token in issuer.live and stored.status is AccountStatus.ACTIVE


async def test_background_refreshes_of_accounts_expiring_together_are_spread_over_the_margin(tmp_path):
    clock = FakeClock()
    issuer = FakeIssuer(clock)
    store, refresher, accounts = await setup(tmp_path, clock, issuer, n=40, exp_in=1000)  # one import, one expiry
    spreads = [refresher.spread(a) for a in accounts]
    assert all(0 <= s < refresher.margin_seconds for s in spreads) and len(set(spreads)) > 30
    clock.advance(1000 - refresher.margin_seconds - refresher.margin_seconds / 2)  # halfway into the spread

    class RoundDone(Exception):
        pass

    async def end_after_the_round(_seconds):
        raise RoundDone

    refresher._sleep = end_after_the_round
    with pytest.raises(RoundDone):
        await refresher.run()
    early = len(issuer.refresh_calls)
    assert 10 <= early <= 30, early  # about half now, the rest over the next half of the spread


async def test_an_issuer_silent_past_the_deadline_is_confirmed_not_trusted(tmp_path):
    """The shield around a refresh has a deadline; a refresh that hits it may have rotated the token, so it
    is confirmed like a lost answer: here the token was spent, and the account says how to log in again."""
    clock = FakeClock()
    issuer = CountingIssuer(clock)
    issuer.answer_delay = 5.0
    store, _, [account] = await setup(tmp_path, clock, issuer)
    refresher = TokenRefresher(store, issuer, identity=fixture_identity(), clock=clock, sleep=no_sleep,
                               spend_timeout=0.1)

    async def first_answer_never_comes(_seconds):
        issuer.answer_delay = 0.0
        await trio.lowlevel.checkpoint()

    refresher._sleep = first_answer_never_comes
    with pytest.raises(RefreshFailed, match="answer was lost") as failed:
        await refresher.ensure_fresh(account)
    assert failed.value.permanent and len(issuer.refresh_calls) == 2
    stored = await store.get(account.id)
    assert stored.status is AccountStatus.EXPIRED and "codex-trio login" in stored.status_reason


async def test_the_background_pass_walks_the_known_accounts_without_reading_the_store(tmp_path, monkeypatch):
    """In the gateway the pass walks the pool's records (`known_accounts`): a read of 5,000 accounts every
    minute left ~14 MiB more resident (issue #20). What it does with them is unchanged."""
    clock = FakeClock()
    issuer = FakeIssuer(clock)
    store, refresher, accounts = await setup(tmp_path, clock, issuer, n=3, exp_in=86400)
    await store.update(accounts[1].id, access_expires_at=clock() + 10)
    known = await store.list()  # as the pool holds them
    refresher.known_accounts = lambda: known

    async def no_read(self):
        raise AssertionError("the pass read the store")

    monkeypatch.setattr(AccountStore, "list", no_read)

    class _Stop(Exception):
        pass

    async def sleep(seconds):  # end the job after its first round
        raise _Stop()

    refresher._sleep = sleep
    with pytest.raises(_Stop):
        await refresher.run(interval=30)
    assert [c["refresh_token"] for c in issuer.refresh_calls] == [accounts[1].tokens.refresh_token]
