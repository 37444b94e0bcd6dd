"""Turn ownership (issue 12 item 5): a streamed turn is opened and closed by one task, owned by the request.

A client that goes away at the moment its response head is sent never has its response body read. Before the
turn pump owned the turn, the upstream turn was opened in the route handler but closed only by the task that
starts when the body is first read: such a response kept the account's slot and the conversation's socket
forever. Here the client's disconnect is delivered exactly there, through the gateway's own ASGI app (the one
its listener serves) driven by a minimal ASGI server, since over TCP that instant is a race; the slot and the
conversation must come back. The same holds for a client that drops the TCP connection at other moments.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import trio

from codex_trio.server.api import create_api_app
from tests.conftest import api_key

from .dispatch_helpers import chat, gateway_and_sim
from .test_dispatch_stream import wait_for

STREAMED_ROUTES = {
    "chat": ("/v1/chat/completions", chat("tell me", stream=True)),
    "messages": ("/v1/messages", {"model": "claude-sonnet-4-6", "max_tokens": 100, "stream": True,
                                  "messages": [{"role": "user", "content": "tell me"}]}),
    "responses": ("/v1/responses", {"model": "gpt-5.5", "input": "tell me", "stream": True}),
    "gemini": ("/v1beta/models/gpt-5.5:streamGenerateContent?alt=sse",
               {"contents": [{"role": "user", "parts": [{"text": "tell me"}]}]}),
}
REPLY = {"text": "a long answer " * 50, "chunk_size": 8, "pacing_ms": 10}


def in_flight(gateway) -> int:
    pool = gateway.services.pool
    return sum(pool.runtime_info(a.id)["in_flight"] for a in pool.accounts())


def conversations_busy(gateway) -> int:
    """Conversations whose socket a turn still holds (their lock was a Semaphore before turns had one owner)."""
    locks = [c.busy for c in gateway.services.dispatcher.conversations._items.values()]
    return sum(1 for lock in locks if (lock.locked() if isinstance(lock, trio.Lock) else lock.value == 0))


async def run_lifespan(app: Any, nursery: trio.Nursery) -> None:
    """Start the app's lifespan as a server would (Quart-Trio's app nursery lives in it)."""
    to_app, from_server = trio.open_memory_channel[dict](4)
    started = trio.Event()

    async def send(message: dict) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()

    nursery.start_soon(app, {"type": "lifespan", "asgi": {"version": "3.0"}}, from_server.receive, send)
    await to_app.send({"type": "lifespan.startup"})
    await started.wait()


async def request_then_leave_at_the_head(app: Any, key: str, path: str, body: dict) -> int:
    """One HTTP request through the ASGI app; the client is gone as soon as the response head is sent (the
    disconnect reaches the app while it is in that `send`, as when the peer's FIN arrives then). Returns the
    status the head carried."""
    path, _, query = path.partition("?")
    payload = orjson.dumps(body)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                         (b"authorization", f"Bearer {key}".encode()),
                         (b"content-length", str(len(payload)).encode())],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}
    gone = trio.Event()
    delivered = False
    status: list[int] = []

    async def receive() -> dict:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": payload, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
            gone.set()
            await trio.sleep(1)  # writing the head: the disconnect cancels the request here

    with trio.fail_after(30):
        await app(scope, receive, send)
    return status[0]


@pytest.mark.parametrize("route", list(STREAMED_ROUTES))
async def test_a_stream_whose_body_is_never_read_frees_the_account_and_the_conversation(data_dir, route):
    path, body = STREAMED_ROUTES[route]
    async with gateway_and_sim(data_dir, accounts=1) as (sim, gateway, client):
        sim.script({"reply": REPLY})
        app = gateway._guarded(create_api_app(gateway))  # what the main listener serves
        async with trio.open_nursery() as nursery:
            await run_lifespan(app, nursery)
            assert await request_then_leave_at_the_head(app, api_key(gateway), path, body) == 200
            await wait_for(lambda: in_flight(gateway) == 0)
            await wait_for(lambda: conversations_busy(gateway) == 0)
            nursery.cancel_scope.cancel()
        # and the account serves the next request of that conversation at once
        response = await client.post(path, json=body)
        assert response.status_code == 200


@pytest.mark.parametrize("leave_after", [0.0, 0.1, 0.3])
async def test_a_client_that_drops_the_connection_frees_the_account(data_dir, leave_after):
    """Over TCP: gone before the upstream answered, while it is starting, and mid-stream."""
    async with gateway_and_sim(data_dir, accounts=1) as (sim, gateway, client):
        sim.script({"reply": {**REPLY, "first_byte_delay_ms": 200}})
        port = int(str(client.base_url).rstrip("/").rsplit(":", 1)[1])
        payload = orjson.dumps(chat("hi", stream=True))
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                              b"content-type: application/json\r\nauthorization: Bearer "
                              + api_key(gateway).encode() + b"\r\ncontent-length: %d\r\n\r\n" % len(payload) + payload)
        await trio.sleep(leave_after)
        await stream.aclose()
        await wait_for(lambda: in_flight(gateway) == 0)
        await wait_for(lambda: conversations_busy(gateway) == 0)
