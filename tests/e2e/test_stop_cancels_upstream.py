"""A stop sequence ends the reply and cancels the upstream turn (issue 12 item 4): the subscription stops
generating, the account's slot is free at once, and the client gets a clean ending — through the official
SDKs, against the simulator."""

from __future__ import annotations

import time

import anthropic
import openai
import pytest
import trio

from .dispatch_helpers import gateway_and_sim, turn_requests
from .test_dispatch_stream import wait_for

# 4 characters per delta, 20 ms apart: the whole reply would take about 6 s upstream.
LONG_TAIL = "lorem ipsum dolor sit amet " * 45
REPLY = {"text": "Hello there. STOP " + LONG_TAIL, "chunk_size": 4, "pacing_ms": 20}
FULL_REPLY_SECONDS = len(REPLY["text"]) / 4 * 0.02


def in_flight(gateway) -> int:
    pool = gateway.services.pool
    return sum(pool.runtime_info(a.id)["in_flight"] for a in pool.accounts())


async def cancelled_upstream(sim, gateway, websocket: bool) -> None:
    """The gateway dropped the turn: its slot is free and (on a WebSocket) the sim saw its client go."""
    await wait_for(lambda: in_flight(gateway) == 0, timeout=2)
    if websocket:
        socket = sim.requests_to("/codex/responses", "GET")[-1]
        await wait_for(lambda: socket.client_gone, timeout=2)


@pytest.mark.parametrize("websocket", [True, False], ids=["ws", "sse"])
async def test_openai_chat_stream_stops_and_cancels_the_turn(data_dir, websocket):
    async with gateway_and_sim(data_dir, accounts=1, websocket=websocket) as (sim, gateway, http):
        sim.script({"reply": REPLY})
        client = openai.AsyncOpenAI(base_url=f"{str(http.base_url).rstrip('/')}/v1", api_key=http.headers["authorization"][7:],
                                    max_retries=0, timeout=30)
        started = time.monotonic()
        stream = await client.chat.completions.create(model="gpt-5.5", stream=True, stop=["STOP"],
                                                      messages=[{"role": "user", "content": "tell me"}])
        text, finish = "", None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
        elapsed = time.monotonic() - started
        await client.close()
        assert text == "Hello there. " and finish == "stop"
        assert elapsed < FULL_REPLY_SECONDS / 2  # nothing waited for the rest of the reply
        await cancelled_upstream(sim, gateway, websocket)
        assert len(turn_requests(sim)) == 1


async def test_anthropic_stream_and_collected_reply_stop_and_cancel_the_turn(data_dir):
    async with gateway_and_sim(data_dir, accounts=1) as (sim, gateway, http):
        sim.script({"reply": REPLY})
        client = anthropic.AsyncAnthropic(base_url=str(http.base_url).rstrip("/"), api_key=http.headers["authorization"][7:],
                                          max_retries=0, timeout=30)
        try:
            started = time.monotonic()
            async with client.messages.stream(model="claude-sonnet-4-6", max_tokens=100, stop_sequences=["STOP"],
                                              messages=[{"role": "user", "content": "tell me"}]) as stream:
                message = await stream.get_final_message()
            assert time.monotonic() - started < FULL_REPLY_SECONDS / 2
            assert message.content[0].text == "Hello there. "
            assert message.stop_reason == "stop_sequence" and message.stop_sequence == "STOP"
            await cancelled_upstream(sim, gateway, websocket=True)

            started = time.monotonic()
            collected = await client.messages.create(model="claude-sonnet-4-6", max_tokens=100,
                                                     stop_sequences=["STOP"],
                                                     messages=[{"role": "user", "content": "tell me again"}])
            assert time.monotonic() - started < FULL_REPLY_SECONDS / 2
            assert collected.content[0].text == "Hello there. " and collected.stop_reason == "stop_sequence"
            await cancelled_upstream(sim, gateway, websocket=True)
        finally:
            await client.close()
        await trio.sleep(0)
