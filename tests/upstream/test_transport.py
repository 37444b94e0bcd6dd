"""Transport state machine against a scripted fake of the native client (fake_native.py).

These prove the decisions (socket reuse, chaining, replay, fallback); they say nothing about the real
network path and must be re-run against the real `codex_trio.native` client and the simulated backend.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

import orjson
import pytest
import zstandard

from codex_trio.dispatch.connector import LazyCookieJar
from codex_trio.upstream.context import AccountAuth, ModelTraits, ThreadContext, TurnContext
from codex_trio.upstream.errors import Action
from codex_trio.upstream.identity import Identity, load_fingerprint
from codex_trio.upstream.transport import (
    Clients, CodexWebSocket, ConversationTransport, Endpoint, UpstreamFailed, check_account, compact, fetch_models,
    fetch_usage, refresh_tokens, sse_turn,
)
from codex_trio.upstream.ws_chain import WsChain, item_key

from .fake_native import FakeBackend, FakeClient, Response, WsMessage

IDENTITY = Identity.from_config(load_fingerprint(), "codex-exec")
AUTH = AccountAuth("tok", "acct")
THREAD = ThreadContext("inst", "01a20151-0000-7000-8000-000000000001", "01a20151-0000-7000-8000-000000000002")
TRAITS = ModelTraits(responses_lite=True, node_repl_auto_review_required=True, parallel_tool_calls=False)
ENDPOINT = Endpoint("https://chatgpt.com/backend-api")
DEV = {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "be brief"}]}


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def request(*items: dict[str, Any], effort: str = "low") -> dict[str, Any]:
    return {"model": "gpt-6.1-sol", "input": list(items), "reasoning": {"effort": effort}, "text": {"verbosity": "low"}}


QUOTAS: list[Any] = []


def both(backend: FakeBackend) -> Clients:
    return Clients(http=FakeClient(backend, "openssl"), websocket=FakeClient(backend, "rustls"))


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Server:
    """Answers response.create frames like the backend: prewarm -> empty response; a turn -> whatever
    `outputs` says next (a message by default)."""

    def __init__(self) -> None:
        self.count = 0
        self.outputs: list[list[dict[str, Any]]] = []
        self.lose_chain_once = False

    def reply(self, frame: dict[str, Any]) -> list[Any]:
        if self.lose_chain_once and frame.get("previous_response_id"):
            self.lose_chain_once = False
            return [{"type": "error", "error": {"type": "invalid_request_error", "code": "previous_response_not_found",
                                                "message": "Previous response not found."}}]
        self.count += 1
        rid = f"resp_{self.count}"
        items = [] if frame.get("generate") is False else (
            self.outputs.pop(0) if self.outputs else
            [{"type": "message", "role": "assistant", "id": f"msg_{self.count}",
              "content": [{"type": "output_text", "text": f"reply {self.count}"}]}])
        events: list[Any] = [{"type": "response.created", "response": {"id": rid}}]
        if frame.get("generate") is False:
            events.insert(0, {"type": "codex.rate_limits", "plan_type": "plus",
                              "rate_limits": {"primary": {"used_percent": 7.0, "window_minutes": 300, "reset_at": 1}}})
        events += [{"type": "response.output_item.done", "output_index": i, "item": it} for i, it in enumerate(items)]
        events.append({"type": "response.completed", "response": {"id": rid, "usage": {"input_tokens": 1, "output_tokens": 1}}})
        return events


def setup(**backend_kw: Any) -> tuple[Server, FakeBackend, ConversationTransport, Clock]:
    server = Server()
    backend = FakeBackend(ws_reply=server.reply, **backend_kw)
    clock = Clock()
    transport = ConversationTransport(both(backend), IDENTITY, ENDPOINT, AUTH, THREAD, TRAITS, clock=clock,
                                      on_quota=QUOTAS.append)
    return server, backend, transport, clock


async def run(transport: ConversationTransport, req: dict[str, Any], **kw: Any) -> list[Any]:
    events = []
    async with aclosing(transport.turn(req, TurnContext.new(now_ms=1), **kw)) as stream:
        async for batch in stream:
            events += batch
    return events


async def test_websocket_prewarm_then_chained_turns_on_one_socket() -> None:
    QUOTAS.clear()
    server, backend, transport, _ = setup()
    first = await run(transport, request(DEV, user("hi")))
    assert first[-1].type == "response.completed" and first[-1].data["response"]["id"] == "resp_2"
    history = [DEV, user("hi"), {"type": "message", "role": "assistant", "content": "reply 2"}, user("more")]
    second = await run(transport, request(*history))
    assert second[-1].data["response"]["id"] == "resp_3"

    assert len(backend.sockets) == 1
    assert QUOTAS and QUOTAS[-1].plan == "plus" and QUOTAS[-1].primary.used_percent == 7.0
    assert backend.sockets[0].response_headers == [], "the kept socket no longer holds its handshake's headers"
    prewarm, turn1, turn2 = backend.ws_frames
    assert prewarm["generate"] is False and prewarm["input"] == [] and "previous_response_id" not in prewarm
    assert prewarm["client_metadata"]["turn_id"] == ""
    assert turn1["previous_response_id"] == "resp_1" and turn1["input"] == [DEV, user("hi")]
    assert turn2["previous_response_id"] == "resp_2" and turn2["input"] == [user("more")]
    assert list(turn2)[:4] == ["type", "model", "stream", "previous_response_id"]
    upgrade = backend.calls[0]
    assert upgrade.url == "wss://chatgpt.com/backend-api/codex/responses"
    assert ("openai-beta", "responses_websockets=2026-02-06") in upgrade.headers


async def test_tool_round_trip_sends_only_the_output() -> None:
    server, backend, transport, _ = setup()
    call = {"type": "function_call", "id": "fc_1", "status": "completed", "name": "exec", "arguments": "{}",
            "call_id": "call_1"}
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"}
    server.outputs = [[reasoning, call]]
    await run(transport, request(DEV, user("run it")))
    # A stateless client replays the call without id/status and without the reasoning item.
    replayed_call = {"type": "function_call", "call_id": "call_1", "name": "exec", "arguments": "{}"}
    output = {"type": "function_call_output", "call_id": "call_1", "output": "ok"}
    await run(transport, request(DEV, user("run it"), replayed_call, output))
    assert backend.ws_frames[-1]["previous_response_id"] == "resp_2"
    assert backend.ws_frames[-1]["input"] == [output]


async def test_diverged_history_or_changed_settings_resend_everything() -> None:
    server, backend, transport, _ = setup()
    await run(transport, request(DEV, user("hi")))
    edited = request(DEV, user("hello instead"), user("next"))
    await run(transport, edited)
    assert "previous_response_id" not in backend.ws_frames[-1] and backend.ws_frames[-1]["input"] == edited["input"]
    history = [*edited["input"], {"type": "message", "role": "assistant", "content": "reply 3"}, user("again")]
    await run(transport, request(*history, effort="high"))
    assert "previous_response_id" not in backend.ws_frames[-1] and len(backend.ws_frames[-1]["input"]) == 5
    assert len(backend.sockets) == 1


async def test_previous_response_not_found_replays_the_full_history_once() -> None:
    server, backend, transport, _ = setup()
    await run(transport, request(DEV, user("hi")))
    server.lose_chain_once = True
    history = [DEV, user("hi"), {"type": "message", "role": "assistant", "content": "reply 2"}, user("more")]
    events = await run(transport, request(*history))
    assert [e.type for e in events] == ["response.created", "response.output_item.done", "response.completed"]
    chained, replay = backend.ws_frames[-2:]
    assert chained["previous_response_id"] == "resp_2" and chained["input"] == [user("more")]
    assert "previous_response_id" not in replay and replay["input"] == history
    assert len(backend.sockets) == 1


def sse_ok(call: Any) -> tuple[int, list[tuple[str, str]], list[bytes]]:
    body = (b'data: {"type":"response.created","response":{"id":"resp_h"}}\n\n'
            b'data: {"type":"response.completed","response":{"id":"resp_h"}}\n\n')
    return 200, [("x-codex-primary-used-percent", "12"), ("x-codex-primary-window-minutes", "300")], [body[:30], body[30:]]


async def test_426_falls_back_to_sse_for_good() -> None:
    quotas = []
    server = Server()
    backend = FakeBackend(ws_status=426, ws_reply=server.reply, sse_reply=sse_ok)
    transport = ConversationTransport(both(backend), IDENTITY, ENDPOINT, AUTH, THREAD, TRAITS,
                                      clock=Clock(), on_quota=quotas.append)
    events = await run(transport, request(DEV, user("hi")))
    assert events[-1].type == "response.completed" and not transport.websocket_allowed
    await run(transport, request(DEV, user("hi"), {"type": "message", "role": "assistant", "content": "x"}, user("y")))
    assert [(c.method, c.profile) for c in backend.calls] == [("GET", "rustls"), ("POST", "openssl"), ("POST", "openssl")]
    post = backend.calls[1]
    assert post.url == "https://chatgpt.com/backend-api/codex/responses"
    assert ("content-encoding", "zstd") in post.headers and ("x-openai-internal-codex-responses-lite", "true") in post.headers
    sent = orjson.loads(zstandard.ZstdDecompressor().decompressobj().decompress(post.body))
    assert sent["input"] == [DEV, user("hi")] and "previous_response_id" not in sent and sent["store"] is False
    assert quotas and quotas[0].primary.used_percent == 12


async def test_other_handshake_failures_fall_back_for_that_turn_only() -> None:
    server = Server()
    backend = FakeBackend(ws_status=404, ws_reply=server.reply, sse_reply=sse_ok)
    transport = ConversationTransport(both(backend), IDENTITY, ENDPOINT, AUTH, THREAD, TRAITS, clock=Clock())
    await run(transport, request(DEV, user("hi")))
    assert transport.websocket_allowed
    backend.ws_status = None
    await run(transport, request(DEV, user("hi")))
    assert [c.method for c in backend.calls] == ["GET", "POST", "GET"] and len(backend.sockets) == 1


async def test_rate_limited_handshake_is_an_account_failure() -> None:
    server, backend, transport, _ = setup(ws_status=429)
    with pytest.raises(UpstreamFailed) as info:
        await run(transport, request(DEV, user("hi")))
    assert info.value.failure.action is Action.ROTATE


async def test_sse_error_status_is_classified() -> None:
    body = b'{"error":{"type":"usage_limit_reached","message":"limit","resets_in_seconds":30}}'
    backend = FakeBackend(sse_reply=lambda call: (429, [("content-type", "application/json")], [body]))
    clock = Clock()
    with pytest.raises(UpstreamFailed) as info:
        async with aclosing(sse_turn(FakeClient(backend), IDENTITY, ENDPOINT, AUTH, THREAD, TurnContext.new(now_ms=1),
                                     request(DEV, user("hi")), TRAITS, clock=clock)) as stream:
            async for _ in stream:
                pass
    failure = info.value.failure
    assert (failure.action, failure.cooldown_until) == (Action.ROTATE, clock.now + 30)


async def test_sse_stream_that_stops_early_ends_with_an_error_event() -> None:
    body = b'data: {"type":"response.created","response":{"id":"r"}}\n\n'
    backend = FakeBackend(sse_reply=lambda call: (200, [], [body]))
    events = []
    async with aclosing(sse_turn(FakeClient(backend), IDENTITY, ENDPOINT, AUTH, THREAD, TurnContext.new(now_ms=1),
                                 request(DEV, user("hi")), TRAITS)) as stream:
        async for batch in stream:
            events += batch
    assert [e.type for e in events] == ["response.created", "error"]
    assert events[-1].data["error"]["code"] == "stream_closed_early"


async def test_socket_closing_mid_response_is_not_reused() -> None:
    server, backend, transport, _ = setup()
    await run(transport, request(DEV, user("hi")))
    backend.ws_reply = lambda frame: [{"type": "response.created", "response": {"id": "r"}}, WsMessage("close", None, 1006)]
    events = await run(transport, request(DEV, user("hi"), {"type": "message", "role": "assistant", "content": "x"}, user("y")))
    assert events[-1].data["error"]["code"] == "stream_closed_early"
    backend.ws_reply = server.reply
    await run(transport, request(DEV, user("again")))
    assert len(backend.sockets) == 2 and backend.sockets[0].closed


class _Jar:
    def header_for(self, url: str) -> str | None:
        return "__cf_bm=kept"

    def capture(self, url: str, headers: Any) -> int:
        return 0


async def test_a_turn_builds_the_accounts_cookie_jar_only_when_it_makes_an_https_call() -> None:
    """The dispatcher hands every turn a jar built at its first use: turns on the WebSocket (which never sends
    cookies) build none, and a turn that goes over HTTPS builds it and sends its cookies."""
    builds: list[_Jar] = []

    def build() -> _Jar:
        builds.append(_Jar())
        return builds[-1]

    server, backend, transport, clock = setup()
    for text in ("hi", "again"):
        jar = LazyCookieJar(build)
        await run(transport, request(DEV, user(text)), cookies=jar)
        assert jar.built is None
    assert builds == [] and [c.method for c in backend.calls] == ["GET"]

    refused_backend = FakeBackend(ws_status=426, sse_reply=sse_ok)
    refused = ConversationTransport(both(refused_backend), IDENTITY, ENDPOINT, AUTH, THREAD, TRAITS, clock=Clock())
    jar = LazyCookieJar(build)
    await run(refused, request(DEV, user("hi")), cookies=jar)
    assert jar.built is builds[0] and len(builds) == 1
    post = refused_backend.calls[-1]
    assert post.method == "POST" and ("cookie", "__cf_bm=kept") in post.headers


async def test_age_cap_opens_a_new_socket_and_pings_keep_idle_ones() -> None:
    server, backend, transport, clock = setup()
    await run(transport, request(DEV, user("hi")))
    socket = transport.socket
    assert isinstance(socket, CodexWebSocket)
    clock.now += 30
    await socket.ping_if_due()
    await socket.ping_if_due()
    assert backend.sockets[0].pings == 1
    for _ in range(56 * 2):  # an hour of pinged idling: alive, but too old to use
        clock.now += 30
        await socket.ping_if_due()
        socket.chain.pong(clock.now)
    await run(transport, request(DEV, user("later")))
    assert len(backend.sockets) == 2 and backend.sockets[0].closed


def test_chain_plan_rules() -> None:
    chain = WsChain(opened_at=0.0)
    body = {"model": "m", "input": [], "reasoning": {"effort": "low"}}
    assert chain.plan(body, [user("a")]).previous_response_id is None
    assert item_key({"role": "assistant", "content": "hi"}) == item_key(
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]})
    assert item_key({"type": "reasoning", "id": "rs"}) is None
    assert not WsChain(opened_at=0.0).usable(now=100.0)  # idle past the dead deadline without pongs


async def test_unary_calls_for_the_account_pool() -> None:
    usage = {"plan_type": "plus", "rate_limit": {"primary_window": {"used_percent": 5, "limit_window_seconds": 18000,
                                                                    "reset_at": 1_800_001_000}}}

    def reply(call: Any) -> Response:
        path = call.url.split("chatgpt.com/backend-api", 1)[-1]
        if call.url == "https://auth.openai.com/oauth/token":
            sent = orjson.loads(call.body)
            if sent["refresh_token"] == "used":
                return Response(401, [], b'{"error":{"code":"refresh_token_reused","message":"already used"}}')
            return Response(200, [], b'{"access_token":"new","refresh_token":"r2","id_token":"i"}')
        return {
            "/wham/accounts/check": Response(200, [], b'{"accounts":[{"id":"acct"}]}'),
            f"/codex/models?client_version={IDENTITY.version}": Response(200, [], b'{"models":[]}'),
            "/wham/usage": Response(200, [], orjson.dumps(usage)),
            "/codex/responses/compact": Response(200, [], b'{"output":[{"type":"compaction","encrypted_content":"x"}]}'),
        }[path]

    backend = FakeBackend(unary_reply=reply)
    client, clock = FakeClient(backend), Clock()
    endpoint = Endpoint.of(IDENTITY)
    assert (await check_account(client, IDENTITY, endpoint, AUTH, clock=clock))["accounts"][0]["id"] == "acct"
    assert await fetch_models(client, IDENTITY, endpoint, AUTH, clock=clock) == {"models": []}
    quota = await fetch_usage(client, IDENTITY, endpoint, AUTH, clock=clock)
    assert quota.plan == "plus" and quota.primary.window_minutes == 300
    tokens = await refresh_tokens(client, IDENTITY, endpoint, "r1", "unauthorized_recovery", clock=clock)
    assert tokens["access_token"] == "new"
    with pytest.raises(UpstreamFailed) as info:
        await refresh_tokens(client, IDENTITY, endpoint, "used", "proactive_expiry", clock=clock)
    assert info.value.failure.action is Action.ACCOUNT_DEAD and info.value.failure.code == "refresh_token_reused"
    out = await compact(client, IDENTITY, endpoint, AUTH, THREAD, TurnContext.new(now_ms=1), request(DEV, user("hi")),
                        TRAITS, clock=clock)
    assert out["output"][0]["type"] == "compaction"
    compact_call = backend.calls[-1]
    assert orjson.loads(compact_call.body) == {"model": "gpt-6.1-sol", "input": [DEV, user("hi")],
                                               "reasoning": {"effort": "low"}, "text": {"verbosity": "low"}}
    assert "accept" not in dict(compact_call.headers)
    recovery, proactive = backend.calls[3:5]
    assert dict(recovery.headers)["user-agent"].endswith(f"(codex_exec; {IDENTITY.version})")
    assert dict(proactive.headers)["user-agent"].endswith(" xterm")  # before initialisation: no suffix


async def test_client_previous_response_id_only_on_its_own_socket() -> None:
    from codex_trio.errors import GatewayError

    server, backend, transport, _ = setup()
    with pytest.raises(GatewayError) as info:
        await run(transport, {**request(user("more")), "previous_response_id": "resp_x"})
    assert info.value.status == 400 and info.value.param == "previous_response_id"
    await run(transport, request(DEV, user("hi")))
    await run(transport, {**request(user("more")), "previous_response_id": "resp_2"})
    assert backend.ws_frames[-1]["previous_response_id"] == "resp_2" and backend.ws_frames[-1]["input"] == [user("more")]
    with pytest.raises(GatewayError):
        await run(transport, {**request(user("more")), "previous_response_id": "resp_2"})  # no longer the last one


async def test_classic_model_prewarm_carries_the_instructions_message() -> None:
    server = Server()
    backend = FakeBackend(ws_reply=server.reply)
    classic = ModelTraits(responses_lite=False, parallel_tool_calls=True)
    transport = ConversationTransport(both(backend), IDENTITY, ENDPOINT, AUTH, THREAD, classic, clock=Clock())
    await run(transport, {**request(user("hi")), "model": "gpt-5.5", "instructions": "You are Codex."})
    prewarm, turn = backend.ws_frames
    instructions = {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]}
    assert prewarm["input"] == [instructions] and "instructions" not in prewarm
    assert turn["previous_response_id"] == "resp_1" and turn["input"] == [user("hi")]
    assert "ws_request_header_x_openai_internal_codex_responses_lite" not in turn["client_metadata"]
