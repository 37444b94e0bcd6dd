"""A client that leaves while its non-streamed (collected) reply is still being made: the request is cancelled, the
upstream turn dropped, and the request log gets exactly one record for it, with status 499. The body of such a
request is taken with its head, so no task reads the request's messages; the disconnect still reaches the handler
(`server/request_inbox.py`, `server/quart_http.py`)."""

from __future__ import annotations

import socket

import orjson
import trio

from tests.conftest import api_key

from .dispatch_helpers import gateway_and_sim
from .test_dispatch_stream import wait_for
from .test_stop_cancels_upstream import FULL_REPLY_SECONDS, REPLY, in_flight


async def test_a_client_gone_before_its_collected_reply_cancels_the_turn_and_logs_one_499(data_dir):
    async with gateway_and_sim(data_dir, accounts=1) as (sim, gateway, http):
        sim.script({"reply": REPLY})  # about 6 s of deltas upstream
        host, port = str(http.base_url).split("//")[1].rstrip("/").rsplit(":", 1)
        body = orjson.dumps({"model": "gpt-5.5", "messages": [{"role": "user", "content": "tell me"}]})
        request = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\nauthorization: Bearer {api_key(gateway)}\r\n"
                   f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n").encode() + body
        with socket.create_connection((host, int(port))) as sock:
            await trio.to_thread.run_sync(sock.sendall, request)
            await wait_for(lambda: in_flight(gateway) == 1, timeout=5)  # the turn is under way
        started = trio.current_time()
        await wait_for(lambda: in_flight(gateway) == 0, timeout=3)
        assert trio.current_time() - started < FULL_REPLY_SECONDS / 2  # dropped, not run to its end
        log = gateway.services.telemetry.request_log
        await wait_for(lambda: log.query({"text": "/v1/chat/completions"})["total"] >= 1, timeout=3)
        await trio.sleep(0.2)  # a second record would have arrived by now
        records = log.query({"text": "/v1/chat/completions"})["records"]
    assert [record["status"] for record in records] == [499]
