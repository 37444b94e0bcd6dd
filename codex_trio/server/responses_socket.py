"""The downstream Responses WebSocket after its handshake: turns one after another, drained by shutdown.

Each `response.create` frame is one turn, served by the same turn pump as the HTTP routes (`dispatch/pump.py`):
its events go back as text frames, it ends with its terminal event (or its failure events), and shutdown may cut
it after the grace period (a turn not yet open then gets the backend's error frame, what a 503 is on this
socket). Keep-alive is the WebSocket's own ping frame, sent by the listener every `server.heartbeat_seconds`
(what the openai SDK's `websockets` and codex's tungstenite answer by themselves). On shutdown an idle socket
is closed at once with 1001 ("going away").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio
from quart import websocket

from ..dispatch.pump import Ending
from ..errors import GatewayError
from ..protocols import responses
from ..upstream.events import CodexEvent, NormalizedEvent
from .turns import meta_for, resolve

if TYPE_CHECKING:
    from .turns import ProtocolDeps

GOING_AWAY = 1001


class SocketFrames:
    """`TurnOutput[str]`: a Responses turn as WebSocket text frames (the Responses API has no stop sequences)."""

    stopped = False

    def __init__(self, encoder: responses.StreamEncoder) -> None:
        self._encoder = encoder

    def start(self) -> list[str]:
        return []

    def feed(self, event: CodexEvent, normalized: list[NormalizedEvent]) -> list[str]:
        return self._encoder.ws_feed(event)

    def finish(self) -> list[str]:
        return self._encoder.ws_finish()

    def fail(self, error: GatewayError) -> list[str]:
        return self._encoder.ws_fail(error)


async def _send_all(messages: list[str]) -> None:
    for message in messages:
        await websocket.send(message)


async def _next_message(deps: "ProtocolDeps") -> str | bytes | None:
    """The client's next frame; None when the client left or shutdown started while the socket was idle."""
    draining = deps.shutdown.draining
    if draining.is_set():
        return None
    received: list[str | bytes] = []
    async with trio.open_nursery() as nursery:
        async def receive() -> None:
            try:
                received.append(await websocket.receive())
            except trio.EndOfChannel:
                pass
            nursery.cancel_scope.cancel()

        async def until_draining() -> None:
            await draining.wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(receive)
        nursery.start_soon(until_draining)
    return received[0] if received else None


async def serve_responses_socket(deps: "ProtocolDeps") -> None:
    while (text := await _next_message(deps)) is not None:
        try:
            turn = responses.parse_ws_message(text)
            resolved = resolve(deps, turn, fallback_to_default=True, headers=websocket.headers, passthrough=True)
            encoder = responses.StreamEncoder(turn, meta_for("resp_", resolved.model_id))
            if await deps.pump.run(turn, SocketFrames(encoder), _send_all) is Ending.CUT:
                break
        except GatewayError as error:  # not opened (a bad frame, no account, cut while opening): one error frame
            await websocket.send(responses.ws_error_message(error))
    if deps.shutdown.draining.is_set():
        await websocket.close(GOING_AWAY, "the gateway is shutting down")
