"""After the first byte there is no failover: a mid-stream failure ends the client's stream with its
protocol's terminal error, and only one account was asked. A client that goes away aborts the upstream call
and frees the account's slot."""

from __future__ import annotations

import orjson
import pytest
import trio

from .dispatch_helpers import accounts_asked, chat, gateway_and_sim

MID_STREAM_FAILURES = {
    "disconnect_after": {"text": "a fairly long answer that is cut off", "disconnect_after": 6},
    "fail": {"text": "a partial answer", "fail": {"code": "server_error", "message": "boom"}},
    "error_event": {"text": "a partial answer", "error_event": {"code": "server_error", "message": "boom"}},
}


def data_frames(body: str) -> list[str]:
    return [line[len("data: "):] for line in body.splitlines() if line.startswith("data: ")]


@pytest.mark.parametrize("websocket", [True, False], ids=["ws", "sse"])
@pytest.mark.parametrize("failure", list(MID_STREAM_FAILURES))
async def test_mid_stream_failure_ends_the_chat_stream_with_an_error_frame(data_dir, failure, websocket):
    async with gateway_and_sim(data_dir, accounts=2, websocket=websocket) as (sim, gateway, client):
        sim.script({"reply": MID_STREAM_FAILURES[failure]})
        response = await client.post("/v1/chat/completions", json=chat("tell me", stream=True))
        assert response.status_code == 200
        frames = data_frames(response.text)
        assert frames[-1] == "[DONE]"
        chunks = [orjson.loads(f) for f in frames[:-1]]
        assert any(c.get("choices") and c["choices"][0]["delta"].get("content") for c in chunks)  # text got out
        assert "error" in chunks[-1] and chunks[-1]["error"]["message"]
        assert len(accounts_asked(sim)) == 1  # no failover once a byte was shown
        await wait_for(lambda: all(gateway.services.pool.runtime_info(a.id)["in_flight"] == 0
                                   for a in gateway.services.pool.accounts()))


async def wait_for(condition, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.02)


async def test_mid_stream_failure_of_a_collected_reply_is_a_502(data_dir):
    async with gateway_and_sim(data_dir, accounts=2) as (sim, gateway, client):
        sim.script({"reply": MID_STREAM_FAILURES["disconnect_after"]})
        response = await client.post("/v1/chat/completions", json=chat("tell me"))
        assert response.status_code == 502 and response.json()["error"]["message"]
        assert len(accounts_asked(sim)) == 1


async def test_client_disconnect_aborts_the_upstream_call_and_frees_the_slot(data_dir):
    async with gateway_and_sim(data_dir, accounts=1) as (sim, gateway, client):
        sim.script({"reply": {"text_length": 4000, "chunk_size": 4, "pacing_ms": 20}})
        pool = gateway.services.pool
        account = pool.accounts()[0]
        async with client.stream("POST", "/v1/chat/completions", json=chat("a long story", stream=True)) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if '"content"' in line:
                    break
            assert pool.runtime_info(account.id)["in_flight"] == 1
        # the client went away after the first words: the socket to the sim is dropped, the slot freed
        await wait_for(lambda: pool.runtime_info(account.id)["in_flight"] == 0)
        socket = sim.requests_to("/codex/responses", "GET")[-1]
        await wait_for(lambda: socket.client_gone)
        # and the account serves the next request at once
        response = await client.post("/v1/chat/completions", json=chat("short one"))
        assert response.status_code == 200


async def test_mid_stream_failure_ends_other_protocols_streams_with_their_terminal_error(data_dir):
    async with gateway_and_sim(data_dir, accounts=2) as (sim, gateway, client):
        sim.script({"reply": MID_STREAM_FAILURES["disconnect_after"]})
        response = await client.post("/v1/messages", json={
            "model": "claude-sonnet-4-6", "max_tokens": 100, "stream": True,
            "messages": [{"role": "user", "content": "tell me"}]})
        events = [line[len("event: "):] for line in response.text.splitlines() if line.startswith("event: ")]
        assert events[0] == "message_start" and "content_block_delta" in events
        assert events[-1] == "error" and "message_stop" not in events
        response = await client.post("/v1/responses", json={"model": "gpt-5.5", "input": "tell me", "stream": True})
        events = [line[len("event: "):] for line in response.text.splitlines() if line.startswith("event: ")]
        assert "response.output_text.delta" in events
        assert events[-1] in ("error", "response.failed") and "response.completed" not in events
        assert len(accounts_asked(sim)) == 2  # one turn each, never retried
