"""Turns that derive the same conversation must not queue behind each other's upstream socket."""

from __future__ import annotations

from pathlib import Path

import httpx
import trio

from codex_trio.sim import running_sim
from tests.conftest import api_key, gateway_on_sim


async def two_overlapping_streams(client: httpx.AsyncClient, body: dict) -> list[str]:
    """Stream `body` as client "a", then 50 ms later as client "b"; when each saw its first text and its end."""
    order: list[str] = []

    async def stream(name: str) -> None:
        async with client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            first = True
            async for line in response.aiter_lines():
                if first and '"content":"x' in line:
                    order.append(f"{name} first")
                    first = False
            order.append(f"{name} done")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(stream, "a")
        await trio.sleep(0.05)
        nursery.start_soon(stream, "b")
    return order


async def test_look_alike_conversations_stream_in_parallel(data_dir: Path):
    async with running_sim(accounts=1) as sim:
        # a slow reply: 60 deltas, 30 ms apart (~1.8 s), far longer than the wait for a busy conversation
        sim.script({"match": {"user_text": "parallel"}, "reply": {"text": "x" * 240, "chunk_size": 4,
                                                                   "pacing_ms": 30}})
        async with gateway_on_sim(data_dir, sim) as (gateway, url):
            body = {"model": "gpt-5.5", "stream": True, "messages": [{"role": "user", "content": "parallel"}]}
            async with httpx.AsyncClient(base_url=url, timeout=30,
                                         headers={"authorization": f"Bearer {api_key(gateway)}"}) as client:
                order = await two_overlapping_streams(client, body)
        # b streamed while a was still streaming: it did not wait for a's socket
        assert order.index("b first") < order.index("a done"), order
        turns = [r for r in sim.requests if r.path.endswith("/codex/responses")]
        sessions = {r.header("session-id") for r in turns}
        assert len(sessions) >= 2  # two upstream conversations (threads), one per turn


async def test_an_upstream_that_never_starts_answering_is_a_504_in_the_clients_envelope(data_dir: Path):
    async with running_sim(accounts=1) as sim:
        sim.script({"match": {"user_text": "slow"}, "reply": {"text": "late", "first_byte_delay_ms": 5000}})
        async with gateway_on_sim(data_dir, sim, local={"api": {"timeout_seconds": 1}}) as (gateway, url):
            async with httpx.AsyncClient(base_url=url, timeout=30,
                                         headers={"x-api-key": api_key(gateway)}) as client:
                reply = await client.post("/v1/messages", json={
                    "model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "slow"}]})
    assert reply.status_code == 504
    assert reply.json()["type"] == "error" and "did not start answering" in reply.json()["error"]["message"]


async def test_identical_first_messages_do_not_queue_on_one_socket(data_dir: Path):
    """Replies shorter than the wait for a busy conversation: before #20 the second client's identical first
    message waited for the first one's socket, so every client with the same prompt ran one at a time."""
    async with running_sim(accounts=1) as sim:
        # ~12 events 20 ms apart: about 0.25 s, well inside the 0.5 s a busy conversation is waited for
        sim.script({"match": {"user_text": "same words"}, "reply": {"text": "x" * 16, "chunk_size": 4,
                                                                     "pacing_ms": 20}})
        async with gateway_on_sim(data_dir, sim) as (gateway, url):
            body = {"model": "gpt-5.5", "stream": True, "messages": [{"role": "user", "content": "same words"}]}
            async with httpx.AsyncClient(base_url=url, timeout=30,
                                         headers={"authorization": f"Bearer {api_key(gateway)}"}) as client:
                order = await two_overlapping_streams(client, body)
                # a continuing turn of that conversation still goes to its socket (waits, then chains)
                follow = {**body, "stream": False, "messages": [
                    {"role": "user", "content": "same words"}, {"role": "assistant", "content": "x" * 16},
                    {"role": "user", "content": "same words"}]}
                assert (await client.post("/v1/chat/completions", json=follow)).status_code == 200
        assert order.index("b first") < order.index("a done"), order
        turns = [r for r in sim.requests if r.path.endswith("/codex/responses")]
        assert len({r.header("session-id") for r in turns}) == 2  # a's conversation (reused by the follow-up) and b's


async def test_a_refused_upgrade_is_remembered_for_the_accounts_new_conversations(data_dir: Path):
    """After a 426 the account's next conversations go straight to SSE: before #20 each new conversation paid the
    refused upgrade again (a TCP + TLS round trip and the 426, about 3 ms)."""
    async with running_sim(accounts=1, websocket=False) as sim:
        async with gateway_on_sim(data_dir, sim) as (gateway, url):
            async with httpx.AsyncClient(base_url=url, timeout=30,
                                         headers={"authorization": f"Bearer {api_key(gateway)}"}) as client:
                for text in ("one conversation", "another conversation", "a third one"):
                    reply = await client.post("/v1/chat/completions", json={
                        "model": "gpt-5.5", "messages": [{"role": "user", "content": text}]})
                    assert reply.status_code == 200, reply.text
        upgrades = sim.requests_to("/codex/responses", "GET")
        assert [r.status for r in upgrades] == [426]
        assert len(sim.requests_to("/codex/responses", "POST")) == 3
