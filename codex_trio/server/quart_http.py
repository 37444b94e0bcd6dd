"""Quart-Trio's per-request ASGI glue, with fewer task hand-offs and ASGI messages (issue #20).

Quart-Trio serves each HTTP request with a nursery of two new tasks: one reads the request's messages (body,
disconnect), one runs the handler and sends the response; the task hypercorn started for the request only waits
for both. Every hand-off between tasks is a pass of the scheduler (0.1-0.8 ms each on a loaded 2-core machine).
`InlineHTTPConnection` runs the handler in the request's own task, inside the same nursery: the same cancellation
(either side ending cancels the other), one task spawn and one hand-off fewer per request.

The request body is taken from the messages hypercorn has already queued (`request_inbox.RequestInbox.ready`)
before the handler starts: a short body arrives with the head, and the handler then never waits for a reading task
to pass it on. Once the body is complete the reading task is not started at all: the client's disconnect cancels the
request through `watch_disconnect`, as the reading task did when it saw `http.disconnect`. A body still on its way
is read by the task, as before.

Awaiting a complete body (`request.get_data()`) returns it at once (`QueuedBody`); Quart-Trio's waits on its
completion event, a pass of the scheduler even when the event is set.

A whole (non-streamed) body goes out as one final body message instead of a body message and an empty last one:
one pass fewer through every ASGI wrapper and hypercorn's sender, the same bytes on the wire.

A streamed body's later chunks (after the head and the first chunk) are not ASGI messages at all: they take the
connection's short path (`http_server.later_chunk_writer`), the same bytes without a pass through every wrapper,
hypercorn's stream and h11 per chunk.
"""

from __future__ import annotations

import enum
from typing import Any, Generator

import trio
from quart.utils import encode_headers
from quart.wrappers.response import DataBody, IterableBody, Response
from quart_trio.asgi import TrioASGIHTTPConnection
from quart_trio.wrappers.request import TrioBody, TrioRequest

from .http_server import later_chunk_writer


class InlineHTTPConnection(TrioASGIHTTPConnection):
    async def __call__(self, receive: Any, send: Any) -> None:
        request = self._create_request_from_scope(send)
        status = _take_queued_body(request, receive)
        async with trio.open_nursery() as nursery:
            cancel = nursery.cancel_scope.cancel
            if status is _BodyStatus.DISCONNECTED:
                cancel()  # what the reading task does on `http.disconnect`
            elif not (status is _BodyStatus.COMPLETE and receive.watch_disconnect(cancel)):
                nursery.start_soon(self.handle_messages, nursery, request, receive)
            try:
                await self.handle_request(nursery, request, send)
            finally:
                if status is _BodyStatus.COMPLETE:
                    receive.watch_disconnect(None)

    async def _send_response(self, send: Any, response: Any) -> None:
        if isinstance(response, Response) and type(response.response) is IterableBody:
            await self._send_streamed(send, response)
            return
        if not isinstance(response, Response) or type(response.response) is not DataBody:
            await super()._send_response(send, response)
            return
        body: DataBody = response.response
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": encode_headers(response.headers)})
        await send({"type": "http.response.body", "body": body.data[body.begin:body.end], "more_body": False})

    async def _send_streamed(self, send: Any, response: Response) -> None:
        """Quart's loop over a streamed body, whose later chunks take the connection's short path once the head
        and the first chunk are out (`http_server.later_chunk_writer`): the ASGI wrappers only look at a
        response's head, its first chunk and its end, which still go through them."""
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": encode_headers(response.headers)})
        write = None
        first = True
        async with response.response as body:
            async for data in body:
                if isinstance(data, str):
                    data = data.encode()
                if write is not None:
                    await write(data)
                    continue
                await send({"type": "http.response.body", "body": data, "more_body": True})
                if first:  # the head and the first chunk are out: the short path, if this connection has one
                    first, write = False, later_chunk_writer()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class QueuedBody(TrioBody):
    def __await__(self) -> Generator[Any, None, bytes]:
        if self._must_raise is not None:
            raise self._must_raise
        if not self._complete.is_set():
            yield from self._complete.wait().__await__()
            if self._must_raise is not None:
                raise self._must_raise
        return bytes(self._data)


class GatewayRequest(TrioRequest):
    body_class = QueuedBody


class _BodyStatus(enum.Enum):
    PENDING = "pending"  # more of the body may come (or `receive` cannot tell): the reading task reads it
    COMPLETE = "complete"
    DISCONNECTED = "disconnected"


def _take_queued_body(request: Any, receive: Any) -> _BodyStatus:
    """Move the request messages already queued into `request.body` (what Quart's reading task does with each)."""
    ready = getattr(receive, "ready", None)
    if ready is None:
        return _BodyStatus.PENDING
    while (message := ready()) is not None:
        if message["type"] == "http.disconnect":
            return _BodyStatus.DISCONNECTED
        if message["type"] == "http.request":
            request.body.append(message.get("body", b""))
            if not message.get("more_body", False):
                request.body.set_complete()
                return _BodyStatus.COMPLETE
    return _BodyStatus.PENDING
