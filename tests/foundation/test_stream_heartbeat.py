"""A streamed body's heartbeats (`server/streaming.py`): sent after each interval of silence and never while
frames flow, by one clock for every body rather than a deadline on each of the body's waits."""

from __future__ import annotations

import trio

from codex_trio.server.streaming import heartbeat_clock, relay

PING = b": ping\n\n"


async def read_body(send: trio.MemorySendChannel[bytes], receive: trio.MemoryReceiveChannel[bytes],
                    interval: float, out: list[tuple[float, bytes]]) -> None:
    async for chunk in relay(receive, wake=send, heartbeat=PING, heartbeat_seconds=interval):
        out.append((trio.current_time(), chunk))


async def test_heartbeats_follow_each_silence_and_never_interrupt_a_flow(autojump_clock):
    send, receive = trio.open_memory_channel[bytes](16)
    out: list[tuple[float, bytes]] = []
    async with trio.open_nursery() as nursery:
        began = trio.current_time()
        nursery.start_soon(read_body, send, receive, 0.5, out)
        async with send:
            for _ in range(200):  # 2 s of frames 10 ms apart: never silent for 0.5 s
                await send.send(b"data: x\n\n")
                await trio.sleep(0.01)
            await trio.sleep(1.3)  # silent from the last frame (1.99 s): heartbeats 0.5 and 1.0 s later
            await send.send(b"data: y\n\n")
    pings = [round(at - began, 3) for at, chunk in out if chunk == PING]
    assert pings == [2.49, 2.99], pings
    assert out[-1][1] == b"data: y\n\n" and len(out) >= 3
    assert not heartbeat_clock()._bodies  # the ended body is no longer watched


async def test_bodies_with_different_intervals_each_get_theirs(autojump_clock):
    channels = [trio.open_memory_channel[bytes](4) for _ in range(2)]
    outs: list[list[tuple[float, bytes]]] = [[], []]
    async with trio.open_nursery() as nursery:
        began = trio.current_time()
        nursery.start_soon(read_body, *channels[0], 10.0, outs[0])
        await trio.sleep(1)
        nursery.start_soon(read_body, *channels[1], 0.3, outs[1])  # shorter than the clock's current sleep
        await trio.sleep(1.0)
        for send, _ in channels:
            await send.aclose()
    assert [round(at - began, 3) for at, _ in outs[1]] == [1.3, 1.6, 1.9]
    assert outs[0] == []


async def test_a_body_without_a_heartbeat_only_relays(autojump_clock):
    send, receive = trio.open_memory_channel[bytes](4)
    out = []
    async with trio.open_nursery() as nursery:
        async def read() -> None:
            async for chunk in relay(receive, wake=send, heartbeat=b"", heartbeat_seconds=0.1):
                out.append(chunk)

        nursery.start_soon(read)
        async with send:
            await trio.sleep(1)
            await send.send(b"a")
            await send.send(b"b")
    assert b"".join(out) == b"ab"
