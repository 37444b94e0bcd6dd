"""The downstream Responses WebSocket while idle: ping frames keep it alive, and shutdown closes it with 1001."""

from __future__ import annotations

import time
from pathlib import Path

import trio

from tests.conftest import api_key, running_gateway
from tests.foundation.ws_client import GatewaySocket


async def test_an_idle_responses_websocket_gets_pings_and_is_closed_by_shutdown(data_dir: Path):
    local = {"server": {"heartbeat_seconds": 0.3, "graceful_shutdown_seconds": 5.0}}
    async with running_gateway(data_dir, local=local, install=True) as (gateway, url):
        socket = await GatewaySocket.connect(url, api_key(gateway))
        async with trio.open_nursery() as nursery:
            received: list = []

            async def read() -> None:
                received.append(await socket.receive())

            nursery.start_soon(read)
            await trio.sleep(1.5)
            assert socket.pings >= 3, socket.pings  # answered by the client (wsproto) as it reads
            stopping = time.monotonic()
            gateway.stop_requested.set()
        # an idle socket does not wait for the grace period: it is closed at once, "going away"
        assert received == [None] and socket.close_code == 1001
        assert time.monotonic() - stopping < 2.0
