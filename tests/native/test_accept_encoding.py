"""On the wire, the native stack places `accept-encoding: zstd,gzip` exactly where Codex 0.171.0 has it, and
sends none for 0.169.0; compressed answers are decoded (zstd and gzip, buffered and streamed); a body that
claims an encoding it does not have is a clear upstream error.

The simulator records headers in wire order and case. Requests are the builders' headers for captured calls,
sent through `Client(decompress=...)` over HTTP/1.1 (OpenSSL profile) and HTTP/2 (rustls profile, the
custom-CA path), and compared with the capture of each release."""

from __future__ import annotations

import json
from contextlib import aclosing
from pathlib import Path

import pytest

from codex_trio.native import Client, ProtocolError
from codex_trio.sim import running_sim
from codex_trio.upstream import body as B
from codex_trio.upstream import headers as H
from codex_trio.upstream.context import AccountAuth, ModelTraits, ThreadContext, TurnContext
from codex_trio.upstream.identity import Identity, load_fingerprint
from codex_trio.upstream.transport import Endpoint, UpstreamFailed, fetch_models, sse_turn
from tests.conftest import FIXTURES

CONFIG = load_fingerprint()
MASKED = {"host", "content-length", "authorization", "chatgpt-account-id"}


def identity(release: str) -> Identity:
    return Identity.from_config(CONFIG, "codex-exec", release=release)


def fixture(release: str, name: str) -> dict:
    return json.loads((FIXTURES / CONFIG.releases[release].fixtures / name).read_text(encoding="utf-8"))


def masked(headers) -> list[tuple[str, str]]:
    return [(n, "<masked>" if n.lower() in MASKED else v) for n, v in headers]


# (release, profile) -> (models fixture, refresh fixture); the h2 captures are the custom-CA run's
CASES = {
    ("0.171.0", "openssl"): ("exec-sse/02-codex-models.json", "oauth/refresh-unauthorized-recovery.json"),
    ("0.171.0", "rustls"): ("customca-h2/03-codex-models.json", None),
    ("0.169.0", "openssl"): ("exec-sse/03-codex-models.json", "oauth/refresh-unauthorized-recovery.json"),
    ("0.169.0", "rustls"): ("customca-h2/02-codex-models.json", None),
}


@pytest.mark.parametrize(("release", "profile"), list(CASES))
async def test_accept_encoding_is_where_each_release_has_it(release: str, profile: str) -> None:
    ident = identity(release)
    models_fixture, refresh_fixture = (fixture(release, n) if n else None for n in CASES[(release, profile)])
    async with running_sim(accounts=1) as sim:
        account = sim.accounts[0]
        client = Client(profile, ca_file=sim.ca_file, decompress=ident.decompress)
        initialised = "(" in dict(models_fixture["headers"])["user-agent"].split(") ", 1)[1]
        url = f"{sim.urls.backend_base}/codex/models?client_version={ident.version}"
        auth = AccountAuth(account.access_token, account.account_id)
        response = await client.request("GET", url, H.models_headers(ident, auth, initialised=initialised))
        assert response.status == 200 and "models" in response.json()
        recorded = sim.requests_to("/codex/models", "GET")[-1]
        assert recorded.http_version == ("2" if profile == "rustls" else "1.1")
        wire = [(n, v) for n, v in recorded.headers if not n.startswith(":")]
        assert masked(wire) == masked(models_fixture["headers"])
        if release == "0.171.0":  # decoded: the sim answered zstd
            assert response.header("content-encoding") is None and response.json()["models"]

        if refresh_fixture is not None:
            body = B.refresh_body(ident, account.refresh_token, "unauthorized_recovery")
            answer = await client.request("POST", f"{sim.urls.auth_base}/oauth/token", H.refresh_headers(ident), body)
            assert answer.status == 200 and answer.json()["access_token"]
            recorded = sim.requests_to("/oauth/token", "POST")[-1]
            assert masked(recorded.headers) == masked(refresh_fixture["headers"])


@pytest.mark.parametrize(("release", "profile", "name"), [
    ("0.171.0", "rustls", "customca-h2/08-codex-responses.json"),
    ("0.171.0", "openssl", "exec-sse/08-codex-responses.json"),
    ("0.169.0", "rustls", "customca-h2/07-codex-responses.json"),
    ("0.169.0", "openssl", "exec-sse/08-codex-responses.json"),
])
async def test_a_turn_post_carries_it_before_host_or_content_length(release: str, profile: str, name: str) -> None:
    """A POST with a zstd body: HTTP/1.1 `…, accept-encoding, host, content-length`; HTTP/2 `…, accept-encoding,
    content-length` (0.171.0), and no accept-encoding at all for 0.169.0."""
    ident, captured = identity(release), fixture(release, name)
    async with running_sim(accounts=1) as sim:
        account = sim.accounts[0]
        client = Client(profile, ca_file=sim.ca_file, decompress=ident.decompress)
        auth = AccountAuth(account.access_token, account.account_id)
        thread, turn = ThreadContext.new("inst"), TurnContext.new()
        model = captured["body"]["model"]  # the capture's lite model: its request carries the lite header
        request = {"model": model, "input": [{"type": "message", "role": "user",
                                              "content": [{"type": "input_text", "text": "hi"}]}]}
        events = []
        async with aclosing(sse_turn(client, ident, Endpoint(sim.urls.backend_base, sim.urls.auth_base), auth,
                                     thread, turn, request, ModelTraits(responses_lite=True))) as stream:
            async for batch in stream:
                events += batch
        assert events[-1].type == "response.completed"
        recorded = sim.requests_to("/codex/responses", "POST")[-1]
        assert recorded.http_version == captured["transport"]["http_version"].removeprefix("HTTP/")
        names = [n for n, _ in recorded.headers if not n.startswith(":")]
        assert names == [n for n, _ in captured["headers"]]


@pytest.mark.parametrize("coding", ["zstd", "gzip"])
async def test_compressed_answers_are_decoded_buffered_and_streamed(coding: str) -> None:
    ident = identity("0.171.0")
    async with running_sim(accounts=1) as sim:
        sim.state.config.response_encoding = coding
        account = sim.accounts[0]
        client = Client("openssl", ca_file=sim.ca_file, decompress=True)
        endpoint = Endpoint(sim.urls.backend_base, sim.urls.auth_base)
        auth = AccountAuth(account.access_token, account.account_id)
        catalog = await fetch_models(client, ident, endpoint, auth)
        assert "gpt-6.2-sol" in [m["slug"] for m in catalog["models"]]

        sim.script({"reply": {"text": "decoded " * 50, "pacing_ms": 5}})
        request = {"model": "gpt-5.5", "input": [{"type": "message", "role": "user",
                                                  "content": [{"type": "input_text", "text": "hi"}]}]}
        events = []
        async with aclosing(sse_turn(client, ident, endpoint, auth, ThreadContext.new("inst"), TurnContext.new(),
                                     request, ModelTraits())) as stream:
            async for batch in stream:
                events += batch
        assert events[-1].type == "response.completed"
        text = "".join(e.data.get("delta", "") for e in events if e.type == "response.output_text.delta")
        assert text == "decoded " * 50
        assert sim.requests_to("/codex/responses", "POST")[-1].header("accept-encoding") == "zstd,gzip"


async def test_a_body_that_claims_an_encoding_it_does_not_have_is_an_upstream_error() -> None:
    ident = identity("0.171.0")
    async with running_sim(accounts=1) as sim:
        sim.state.config.response_encoding = "mislabeled"
        account = sim.accounts[0]
        client = Client("openssl", ca_file=sim.ca_file, decompress=True)
        endpoint = Endpoint(sim.urls.backend_base, sim.urls.auth_base)
        auth = AccountAuth(account.access_token, account.account_id)
        with pytest.raises(UpstreamFailed) as info:
            await fetch_models(client, ident, endpoint, auth)
        assert info.value.failure.status == 502 and "undecodable answer" in info.value.failure.message
        with pytest.raises(ProtocolError, match="decod"):
            await client.request("GET", f"{sim.urls.backend_base}/wham/usage",
                                 H.usage_headers(ident, auth))

        request = {"model": "gpt-5.5", "input": []}
        events = []
        async with aclosing(sse_turn(client, ident, endpoint, auth, ThreadContext.new("inst"), TurnContext.new(),
                                     request, ModelTraits())) as stream:
            async for batch in stream:
                events += batch
        assert [e.type for e in events] == ["error"]
        assert events[0].data["error"]["code"] == "undecodable_body"


def test_the_profiles_placement_rule_matches_both_captures() -> None:
    # HTTP/1.1: directly before host; HTTP/2: last regular header (before content-length when there is one)
    h1 = fixture("0.171.0", "exec-sse/08-codex-responses.json")["headers"]
    names = [n for n, _ in h1]
    assert names[-3:] == ["accept-encoding", "host", "content-length"]
    h2 = fixture("0.171.0", "customca-h2/08-codex-responses.json")["headers"]
    assert [n for n, _ in h2][-2:] == ["accept-encoding", "content-length"]
    upgrade = fixture("0.171.0", "exec-ws/01-ws-upgrade.json")["headers"]
    assert "accept-encoding" not in [n.lower() for n, _ in upgrade]
    assert Path(FIXTURES / "chatgpt-mode-0.171.0").is_dir()
