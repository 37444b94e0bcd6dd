"""The downstream Responses WebSocket after its handshake: turns one after another, drained by shutdown.

Each `response.create` frame is one turn; its events go back as text frames. Keep-alive is the WebSocket's own
ping frame, sent by the listener every `server.heartbeat_seconds` (what the openai SDK's `websockets` and
codex's tungstenite answer by themselves). On shutdown an idle socket is closed at once with 1001 ("going
away"); a turn in flight may finish within the grace period, else it is ended with its failure events
(`server_shutting_down`) before the close.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio
from quart import websocket

from ..errors import GatewayError
from ..protocols import responses
from ..protocols.failures import premature_close
from ..upstream.events import EventNormalizer
from .shutdown import shutdown_error
from .turns import meta_for, open_turn, resolve

if TYPE_CHECKING:
    from ..app import Gateway
    from ..turn import Turn

GOING_AWAY = 1001


async def _next_message(gateway: "Gateway") -> str | bytes | None:
    """The client's next frame; None when the client left or shutdown started while the socket was idle."""
    if gateway.shutdown.draining.is_set():
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
            await gateway.shutdown.draining.wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(receive)
        nursery.start_soon(until_draining)
    return received[0] if received else None


async def serve_responses_socket(gateway: "Gateway") -> None:
    while True:
        text = await _next_message(gateway)
        if text is None:
            break
        try:
            turn = responses.parse_ws_message(text)
            resolved = resolve(gateway, turn, fallback_to_default=True, headers=websocket.headers, passthrough=True)
            encoder = responses.StreamEncoder(turn, meta_for("resp_", resolved.model_id))
        except GatewayError as error:
            await websocket.send(responses.ws_error_message(error))
            continue
        progress = _Progress()
        with gateway.shutdown.cuttable() as work:
            await _run_turn(gateway, turn, encoder, progress)
        if work.cancelled_caught:
            # cut by shutdown: a started turn ends with its failure events, one not yet started with the
            # backend's error frame (what a 503 is on this socket)
            ending = encoder.ws_fail(shutdown_error()) if progress.started else [
                responses.ws_error_message(shutdown_error())]
            for message in ending:
                await websocket.send(message)
            break
    if gateway.shutdown.draining.is_set():
        await websocket.close(GOING_AWAY, "the gateway is shutting down")


class _Progress:
    started = False  # the upstream turn is open and its events may have gone out


async def _run_turn(gateway: "Gateway", turn: "Turn", encoder: responses.StreamEncoder, progress: _Progress) -> None:
    try:
        upstream = await open_turn(gateway, turn)  # accounts, or an API-key provider (docs/providers.md)
    except GatewayError as error:
        await websocket.send(responses.ws_error_message(error))
        return
    progress.started = True
    normalizer = EventNormalizer()
    try:
        async for batch in upstream.batches():
            for event in batch:
                normalizer.feed(event)
                for message in encoder.ws_feed(event):
                    await websocket.send(message)
        if normalizer.terminal is None:
            raise premature_close()
        for message in encoder.ws_finish():
            await websocket.send(message)
    except GatewayError as error:
        for message in encoder.ws_fail(error):
            await websocket.send(message)
    finally:
        with trio.CancelScope(shield=True):
            await upstream.aclose()
