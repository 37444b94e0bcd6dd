"""The Responses WebSocket: handshake recording, prewarm, chaining, rate-limit events, age cap, deflate."""

from __future__ import annotations

import pytest

from codex_trio.identity_check.tls_fingerprint import fingerprint
from codex_trio.sim import Simulator, running_sim

from .helpers import WSClient, types, user_message


def ws_headers(sim: Simulator, index: int = 0) -> list[tuple[str, str]]:
    account = sim.accounts[index]
    return [("chatgpt-account-id", account.account_id), ("authorization", "Bearer " + account.access_token),
            ("openai-beta", "responses_websockets=2026-02-06")]


def create(model: str = "gpt-6.1-sol", **extra) -> dict:
    return {"type": "response.create", "model": model, "stream": True, "input": [], "tool_choice": "auto",
            "parallel_tool_calls": False, "store": False, "include": ["reasoning.encrypted_content"], **extra}


async def test_handshake_is_recorded_in_wire_order_and_case(sim: Simulator) -> None:
    ws = await WSClient.connect(sim, ws_headers(sim))
    assert ws.status == 101 and "x-codex-primary-used-percent" in ws.headers
    await ws.aclose()
    recorded = sim.requests_to("/codex/responses", "GET")[-1]
    assert recorded.header_names()[:5] == ["Host", "Connection", "Upgrade", "Sec-WebSocket-Version",
                                           "Sec-WebSocket-Key"]
    assert recorded.status == 101


async def test_prewarm_then_turn_then_tool_follow_up(sim: Simulator) -> None:
    sim.script({"match": {"user_text": "run it"}, "times": 1,
                "reply": {"custom_tool_calls": [{"name": "exec", "input": "text('x')"}]}})
    ws = await WSClient.connect(sim, ws_headers(sim))
    prewarm = await ws.turn(create(generate=False))
    assert types(prewarm) == ["codex.rate_limits", "response.created", "response.completed"]
    assert prewarm[-1]["response"]["output"] == []
    first = await ws.turn(create(previous_response_id=prewarm[-1]["response"]["id"], input=[user_message("run it")]))
    call = first[-1]["response"]["output"][-1]
    assert call["type"] == "custom_tool_call"
    follow = await ws.turn(create(previous_response_id=first[-1]["response"]["id"], input=[
        {"type": "custom_tool_call_output", "call_id": call["call_id"], "output": "ok"}]))
    assert follow[-1]["type"] == "response.completed"
    recorded = sim.requests_to("/codex/responses", "GET")[-1]
    assert [m.get("generate") for m in recorded.ws_messages] == [False, None, None]
    # an output without its call in the chained history is refused
    orphan = await ws.turn(create(input=[{"type": "custom_tool_call_output", "call_id": call["call_id"],
                                          "output": "ok"}]))
    assert orphan[-1]["type"] == "error" and orphan[-1]["status_code"] == 400
    await ws.aclose()


async def test_previous_response_id_only_on_its_own_socket(sim: Simulator) -> None:
    one = await WSClient.connect(sim, ws_headers(sim))
    first = await one.turn(create(input=[user_message("hi")]))
    two = await WSClient.connect(sim, ws_headers(sim))
    events = await two.turn(create(previous_response_id=first[-1]["response"]["id"], input=[user_message("again")]))
    assert events[-1]["type"] == "error"
    assert events[-1]["error"]["code"] == "previous_response_not_found" and events[-1]["status_code"] == 400
    again = await one.turn(create(previous_response_id=first[-1]["response"]["id"], input=[user_message("again")]))
    assert again[-1]["type"] == "response.completed"
    await one.aclose()
    await two.aclose()


async def test_rate_limits_event_and_wrapped_errors(sim: Simulator) -> None:
    account = sim.accounts[0]
    ws = await WSClient.connect(sim, ws_headers(sim))
    events = await ws.turn(create(model="gpt-6-luna", input=[user_message("hi")]))
    limits = [e for e in events if e["type"] == "codex.rate_limits"]
    assert [e["metered_limit_name"] for e in limits] == ["codex", "codex_bengalfox"]
    assert limits[0]["rate_limits"]["primary"]["window_minutes"] == 300
    sim.exhaust(account.account_id)
    events = await ws.turn(create(input=[user_message("hi")]))
    assert events[-1]["type"] == "error" and events[-1]["status_code"] == 429
    assert events[-1]["error"]["type"] == "usage_limit_reached"
    assert events[-1]["headers"]["x-codex-primary-used-percent"] == "100.0"
    bad = await ws.turn(create(input=[], max_output_tokens=5))
    assert bad[-1]["error"]["message"] == "Unsupported parameter: max_output_tokens"
    sim.ban(account.account_id)
    banned = await ws.turn(create(input=[user_message("hi")]))
    assert banned[-1]["status_code"] == 403
    await ws.aclose()


async def test_upgrade_refused_without_valid_token(sim: Simulator) -> None:
    headers = [("chatgpt-account-id", sim.accounts[0].account_id), ("authorization", "Bearer nope")]
    ws = await WSClient.connect(sim, headers)
    assert ws.status == 401


async def test_connection_age_cap(sim: Simulator) -> None:
    ws = await WSClient.connect(sim, ws_headers(sim))
    assert (await ws.turn(create(input=[user_message("hi")])))[-1]["type"] == "response.completed"
    sim.clock.advance(3600)
    sim.state.reissue(sim.accounts[0])
    events = await ws.turn(create(input=[user_message("hi")]))
    assert events[-1]["error"]["code"] == "websocket_connection_limit_reached"
    assert await ws.receive() is None
    await ws.aclose()


async def test_disconnect_mid_stream_on_websocket(sim: Simulator) -> None:
    sim.script({"reply": {"disconnect_after": 4}})
    ws = await WSClient.connect(sim, ws_headers(sim))
    events = await ws.turn(create(input=[user_message("hi")]))
    # the rate-limit events come first, then 4 turn events, then the socket drops without a close frame
    assert [e["type"] for e in events][-4:] == ["response.created", "response.in_progress",
                                                "response.output_item.added", "response.content_part.added"]
    await ws.aclose()


@pytest.mark.parametrize("server_deflate,client_deflate,expect", [(True, True, True), (False, True, False),
                                                                  (True, False, False)])
async def test_permessage_deflate_on_and_off(server_deflate: bool, client_deflate: bool, expect: bool) -> None:
    async with running_sim(deflate=server_deflate) as sim:
        ws = await WSClient.connect(sim, ws_headers(sim), deflate=client_deflate)
        assert ("sec-websocket-extensions" in ws.headers) is expect
        sim.script({"reply": {"text_length": 3000}})
        events = await ws.turn(create(input=[user_message("hi")]))
        assert len(events[-1]["response"]["output"][0]["content"][0]["text"]) == 3000
        assert (ws.wire_bytes < ws.payload_bytes / 2) is expect
        await ws.aclose()


async def test_plain_websocket_without_tls() -> None:
    async with running_sim(https=False) as sim:
        assert sim.urls is not None and sim.urls.backend_base.startswith("http://")
        ws = await WSClient.connect(sim, ws_headers(sim), tls=False)
        events = await ws.turn(create(input=[user_message("plain")]))
        assert events[-1]["type"] == "response.completed"
        assert sim.requests_to("/codex/responses", "GET")[-1].scheme == "http"
        await ws.aclose()


async def test_recorded_client_hello_feeds_the_ja4_tool(sim: Simulator) -> None:
    ws = await WSClient.connect(sim, ws_headers(sim))
    await ws.aclose()
    hello = sim.requests_to("/codex/responses", "GET")[-1].connection.client_hello
    labels = fingerprint(hello)  # the whole handshake message was kept: SNI present, no ALPN
    assert labels["sni"] == "chatgpt.com" and labels["alpn"] == []
    assert labels["ja4"].startswith("t13d") and labels["ja4"].split("_")[0].endswith("00")


async def test_scripted_failures_on_the_socket(sim: Simulator) -> None:
    ws = await WSClient.connect(sim, ws_headers(sim))
    sim.script({"match": {"user_text": "overload"}, "times": 1, "reply": {"http_status": 503}})
    events = await ws.turn(create(input=[user_message("overload")]))
    assert events[-1]["type"] == "error" and events[-1]["status_code"] == 503
    assert events[-1]["error"]["code"] == "server_is_overloaded"
    sim.script({"match": {"user_text": "fail"}, "reply": {"fail": {"code": "rate_limit_exceeded",
                                                                  "message": "try again in 2s"}}})
    events = await ws.turn(create(input=[user_message("fail")]))
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"]["code"] == "rate_limit_exceeded"
    events = await ws.turn(create(input=[user_message("fine")]))
    assert events[-1]["type"] == "response.completed"  # the socket survives both
    await ws.aclose()


async def test_websocket_can_be_refused_with_426() -> None:
    """`SimConfig.websocket=False` (or flipping `sim.config.websocket` at run time) answers the upgrade with
    426 and the account's rate-limit headers, as a backend without the WebSocket path would; SSE still works."""
    async with running_sim(websocket=False) as sim:
        ws = await WSClient.connect(sim, ws_headers(sim))
        assert ws.status == 426 and "x-codex-primary-used-percent" in ws.headers
        assert sim.requests_to("/codex/responses", "GET")[-1].status == 426
        sim.config.websocket = True
        ws = await WSClient.connect(sim, ws_headers(sim))
        assert ws.status == 101
        await ws.aclose()


async def test_forget_chains_makes_the_next_chained_turn_fail(sim: Simulator) -> None:
    ws = await WSClient.connect(sim, ws_headers(sim))
    first = await ws.turn(create(input=[user_message("one")]))
    response_id = first[-1]["response"]["id"]
    sim.forget_chains()
    events = await ws.turn(create(input=[user_message("two")], previous_response_id=response_id))
    assert events[-1]["type"] == "error" and events[-1]["error"]["code"] == "previous_response_not_found"
    await ws.aclose()
