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
    assert issuer.refresh_calls == [{"client_id": oauth.CLIENT_ID, "grant_type": "refresh_token",
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
