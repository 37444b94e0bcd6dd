"""Serving one ASGI app on hypercorn's HTTP/1.1 protocol layer, with our own accept loop and connection limits.

`hypercorn.trio.serve` is not used as is, for four gaps found by probing a running gateway:

* Its accept loop is `trio.serve_listeners`, which takes one connection per two scheduler passes (under load
  the backlog of 100 overflowed and clients got resets: `Acceptor` drains the backlog at each wake-up, and the
  backlog is 4096), and on EMFILE retries every 100 ms and logs a traceback each time (thousands of lines while
  descriptors are exhausted): `Acceptor` backs off, says it once, and asks the owner to free descriptors (idle
  upstream sockets).
* It has no header-read timeout: its keep-alive timer is the only deadline on a request head.
  `HeadDeadlineStream` cuts a connection whose request head has not fully arrived within
  `server.header_timeout_seconds` of its first byte.
* It finishes a response (close after `Connection: close` or an unread body, restart the keep-alive timer)
  inside the app's `send` call, which Quart-Trio cancels as soon as the response is complete: the
  connection then stays open forever and the next request on it is never read. `shield_response_end`
  lets that last `send` finish.
* A connection whose peer has gone away is closed only when its keep-alive timer ends, holding its
  descriptor that long; `HeadDeadlineStream` stops the timer when reading ends.

And costs: hypercorn's keep-alive timer is a task, spawned (`nursery.start`, a hand-off) after every response
and cancelled when the next request arrives; here it is a deadline on the connection's read instead
(`KeepAliveTimer`), and shutdown wakes the idle reads itself. And hypercorn writes every ASGI message to the
socket on its own (a short reply in three writes, a stream's head apart from its first chunk).
`shield_response_end` holds a head back for the message that follows and corks the connection while hypercorn
encodes them, so they leave in one write. Each write also passed the scheduler twice (hypercorn's send lock, trio's
socket send); `GuardedConnection` writes at once when nothing else is writing. And hypercorn queued a request's
messages for its app with a scheduler pass each; `RequestTaskGroup` hands the app a `RequestInbox` instead, which
Quart-Trio's glue reads without a task of its own (`quart_http.py`).
A streamed body's later chunks skip the ASGI path altogether (`later_chunk_writer`, `GuardedConnection.chunk_writer`):
framed as h11 frames them and written by the connection, they cost a `send(2)` and little else.

Everything else (lifespan, protocol state machines, graceful shutdown) is hypercorn's own.
"""

from __future__ import annotations

import errno
import logging
import math
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Awaitable, Callable, Iterator

import h11
import trio
from h11._writers import ChunkedWriter
from hypercorn.config import Config
from hypercorn.events import Closed, RawData, Updated
from hypercorn.protocol import ProtocolWrapper
from hypercorn.protocol.http_stream import ASGIHTTPState, HTTPStream
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.task_group import TaskGroup, _handle
from hypercorn.trio.tcp_server import MAX_RECV, TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import parse_socket_addr, repr_socket_addr, wrap_app

from ..telemetry import stage_timing
from .request_inbox import RequestInbox

log = logging.getLogger(__name__)

# accept(2) failures that mean "the process or the system is out of something", not "this connection failed".
CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
# accept(2) failures of one queued connection whose client has already gone: skip it, accept the next.
PEER_GONE_ERRNOS = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM})
ACCEPT_BACKOFF_FIRST = 0.05
ACCEPT_BACKOFF_MAX = 2.0
ACCEPT_BATCH = 256  # connections accepted per wake-up before other tasks run again
# The listen backlog (hypercorn's default is 100; Linux caps it at net.core.somaxconn, 4096 since 5.4): room for a
# burst of thousands of connections while the event loop is busy, instead of dropped handshakes.
LISTEN_BACKLOG = 4096
# How long the final `send` of a response may take once shielded. The bytes themselves are written by a
# send hypercorn shields already (bounded by TCP_USER_TIMEOUT); this bounds the bookkeeping around it.
RESPONSE_END_DEADLINE = 30.0


class ServingConfig(Config):
    header_timeout: float = 10.0  # seconds from a request head's first byte to its end
    backlog: int = LISTEN_BACKLOG


# ---- the app's sends ----------------------------------------------------------------------------------------


def _ends_response(message: dict[str, Any]) -> bool:
    kind = message.get("type")
    return (kind == "http.response.body" and not message.get("more_body", False)) or kind == "websocket.close"


ChunkWriter = Callable[[bytes], Awaitable[None]]


class ResponseHead:
    """Per request: the response head held back until its first body message, so both go out in one write; and,
    once a streamed body's first chunk is out, the short path for its later ones (`later_chunk_writer`)."""

    __slots__ = ("held", "waits_for_body", "chunk_writer")

    def __init__(self) -> None:
        self.held: dict[str, Any] | None = None
        self.waits_for_body = False  # a streamed response whose first chunk is known to follow at once
        self.chunk_writer: ChunkWriter | None = None

    def may_wait(self, start: dict[str, Any]) -> bool:
        # A body of known length is sent right after its head (Quart does so); a streamed one only when its
        # route said so (`head_waits_for_first_chunk`): another stream's first chunk may be far away.
        return self.waits_for_body or any(name.lower() == b"content-length" for name, _ in start.get("headers", ()))


_serving_connection: ContextVar["GuardedConnection | None"] = ContextVar("codex_trio_serving_connection",
                                                                         default=None)
_response_head: ContextVar[ResponseHead | None] = ContextVar("codex_trio_response_head", default=None)


def head_waits_for_first_chunk() -> None:
    """Called by a route returning a streamed response whose first chunk is ready or about to be (a turn that
    has opened): its head then goes out with that chunk, in one socket write instead of two."""
    head = _response_head.get()
    if head is not None:
        head.waits_for_body = True


def later_chunk_writer() -> ChunkWriter | None:
    """For the current request's streamed response, once its head and first body chunk are out: a function that
    writes a later (not the last) body chunk straight to the connection, with h11's chunked framing, instead of
    as an ASGI message through every wrapper, hypercorn's stream and h11 (`GuardedConnection.chunk_writer`).
    None before that, and for anything but a chunked HTTP/1.1 body on our own connection."""
    head = _response_head.get()
    return head.chunk_writer if head is not None else None


def shield_response_end(app: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Wrap an ASGI app so that the `send` that completes a response is not cancelled half-way, and a
    response's head, first body chunk and (for a whole body) its end are written to the socket together.

    Quart-Trio runs the handler and the request's receive loop in one nursery and cancels it as soon as the
    response is out. hypercorn, inside that same last `send`, recycles the connection (or closes it); a
    cancellation there leaves the socket open with nobody reading it.

    hypercorn writes each ASGI message on its own (a short reply: head, body, end, three writes; a stream:
    head, then each chunk). Each write is a send(2) and, for the client, often a separate wake-up: the head
    alone measured 0.5-1 ms before the first chunk. Here the head is held until the next message, and the
    connection is corked (`GuardedConnection.corked`) while hypercorn turns them into bytes."""

    async def guarded(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        connection = _serving_connection.get() if scope["type"] == "http" else None
        head = ResponseHead()

        async def send_to_end(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                if connection is not None and head.may_wait(message):
                    head.held = message
                    return
                await send(message)
                stage_timing.mark("headers_sent")
                return
            held, head.held = head.held, None
            if not _ends_response(message):
                if held is not None:
                    with connection.corked():
                        await send(held)
                    stage_timing.mark("headers_sent")
                    await send(message)  # carries the held head's bytes along
                    head.chunk_writer = connection.chunk_writer()
                    return
                await send(message)
                if head.chunk_writer is None and connection is not None:
                    head.chunk_writer = connection.chunk_writer()
                # A later chunk of a stream: its write no longer passes the scheduler (`GuardedConnection`), so
                # pass it here, after the bytes are out: the producer queues more meanwhile, and the next write
                # carries all of it (one write per wake-up of the body, as before).
                await trio.lowlevel.cancel_shielded_checkpoint()
                return
            with trio.CancelScope(shield=True, deadline=trio.current_time() + RESPONSE_END_DEADLINE):
                if connection is None:
                    await send(message)
                    return
                with connection.corked():
                    if held is not None:
                        await send(held)
                        stage_timing.mark("headers_sent")
                    await send(message)
                await connection.flush()

        token = _response_head.set(head)
        try:
            await app(scope, receive, send_to_end)
        finally:
            _response_head.reset(token)
        if head.held is not None:  # the app ended without a body message: the head still goes out
            await send_to_end({"type": "http.response.body", "body": b"", "more_body": False})

    return guarded


# ---- the request-head deadline and the keep-alive timer ------------------------------------------------------


class HeadDeadlineStream(trio.abc.HalfCloseableStream):
    """A connection's socket stream that knows whether a request is in progress (hypercorn's `Updated`
    events say so), gives a request head `timeout` seconds from its first byte to arrive in full, and closes an
    idle connection at its keep-alive deadline (`KeepAliveTimer`) or when the server shuts down.

    Either ends the connection: `receive_some` raises BrokenResourceError, which hypercorn's read loop treats as
    the peer going away (it then closes the connection, as its keep-alive task would have)."""

    def __init__(self, stream: trio.SocketStream, timeout: float, raw: Any = None) -> None:
        self._stream = stream
        self._raw = raw  # the connection's stdlib socket (non-blocking), for `send_now`
        self._timeout = timeout
        self._idle = True  # between requests (or before the first): waiting for a request head
        self._deadline = math.inf  # the current request head's
        self.keep_alive_deadline = math.inf  # while idle (`KeepAliveTimer`)
        self._closing = False  # the server shuts down: an idle connection ends now
        self._reading: trio.CancelScope | None = None
        self.head_started_ns: int | None = None  # perf_counter_ns of the current head's first bytes (stage timing)

    @property
    def socket(self) -> Any:  # hypercorn reads the peer and local addresses from it
        return self._stream.socket

    def request_started(self) -> None:
        self._idle, self._deadline = False, math.inf

    def became_idle(self) -> None:
        self._idle, self._deadline = True, math.inf

    def keep_alive_until(self, deadline: float) -> None:
        """Set (or with inf, lift) the keep-alive deadline, for the read under way too."""
        self.keep_alive_deadline = deadline
        if self._reading is not None:
            self._reading.deadline = self._read_deadline()

    def close_when_idle(self) -> None:
        """Shutdown: end the connection now if it is idle, else once its current request is over."""
        self._closing = True
        if self._idle and self._reading is not None:
            self._reading.cancel()

    def _read_deadline(self) -> float:
        return -math.inf if self._closing and self._idle else min(self._deadline, self.keep_alive_deadline)

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        with trio.CancelScope(deadline=self._read_deadline()) as waiting:
            self._reading = waiting
            try:
                data = await self._stream.receive_some(max_bytes)
            finally:
                self._reading = None
        if waiting.cancelled_caught:
            if trio.current_time() >= self._deadline:
                log.debug("closing a connection whose request head took longer than %.1f s", self._timeout)
            raise trio.BrokenResourceError("connection idle or request head not received in time")
        if data and self._idle and self._deadline == math.inf:
            self._deadline = trio.current_time() + self._timeout
            self.head_started_ns = time.perf_counter_ns()
        return data

    def send_now(self, data: bytes) -> int:
        """Write what the socket takes at once, without a pass of the scheduler; how many bytes that was. 0 also
        when the socket refuses (closed, reset, shut down): `send_all` then raises what it always raised."""
        if self._raw is None:
            return 0
        try:
            return self._raw.send(data)
        except OSError:  # BlockingIOError included
            return 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()


class KeepAliveTimer:
    """Stands in for hypercorn's keep-alive task (`TrioSingleTask`, the connection's `idle_task`): the same two
    calls, which set the connection's keep-alive deadline instead of spawning and cancelling a task."""

    def __init__(self, stream: HeadDeadlineStream, seconds: float, context: WorkerContext) -> None:
        self._stream = stream
        self._seconds = seconds
        self._context = context

    async def restart(self, _task_group: Any, _action: Any) -> None:
        # hypercorn's task ended at once once the server was terminating; so does this deadline
        self._stream.keep_alive_until(-math.inf if self._context.terminated.is_set()
                                      else trio.current_time() + self._seconds)

    async def stop(self) -> None:
        self._stream.keep_alive_until(math.inf)


class ServingContext(WorkerContext):
    """hypercorn's worker context, knowing the open connections: shutdown ends the idle ones at once (their
    keep-alive tasks used to wait for `terminated`)."""

    def __init__(self) -> None:
        super().__init__(None)
        self.connections: set[HeadDeadlineStream] = set()

    async def end_serving(self) -> None:
        await self.terminated.set()
        for stream in list(self.connections):
            stream.close_when_idle()


class RequestTaskGroup(TaskGroup):
    """hypercorn's per-connection task group, handing each request's app a `RequestInbox` as its `receive`
    (hypercorn's is a bare memory channel, filled with a scheduler pass per message)."""

    async def spawn_app(self, app: Any, config: Config, scope: dict[str, Any],
                        send: Callable[[Any], Awaitable[None]]) -> Callable[[dict[str, Any]], Awaitable[None]]:
        inbox = RequestInbox(config.max_app_queue_size)
        self._nursery.start_soon(_run_app, app, config, scope, inbox, send)
        return inbox.put


async def _run_app(app: Any, config: Config, scope: dict[str, Any], inbox: RequestInbox,
                   send: Callable[[Any], Awaitable[None]]) -> None:
    try:
        await _handle(app, config, scope, inbox, send, trio.to_thread.run_sync, trio.from_thread.run)
    finally:
        inbox.finish()


class GuardedConnection(TCPServer):
    """hypercorn's connection driver over a `HeadDeadlineStream`, whose writes can be corked: while corked,
    the bytes hypercorn sends are kept and go out with the next write (or `flush`).

    A write goes to the socket at once when nothing else is being written (`HeadDeadlineStream.send_now`):
    hypercorn's write takes its send lock and trio's socket send, each a pass of the scheduler (on a streamed
    reply, between the response head and its first chunk on the wire); only what the socket does not take at
    once goes the usual way."""

    context: "ServingContext"

    def __init__(self, app: Any, config: ServingConfig, context: "ServingContext", state: Any,
                 stream: trio.SocketStream, raw: Any = None) -> None:
        self.head_stream = HeadDeadlineStream(stream, config.header_timeout, raw)
        super().__init__(app, config, context, state, self.head_stream)
        self.idle_task = KeepAliveTimer(self.head_stream, config.keep_alive_timeout, context)
        self._corked = False
        self._kept: list[bytes] = []

    async def run(self) -> None:
        """hypercorn's `TCPServer.run` for a plain TCP connection (our listeners have no TLS), with a
        `RequestTaskGroup`."""
        _serving_connection.set(self)  # the app tasks of this connection inherit both
        stage_timing.on_connection(self.head_stream)
        self.context.connections.add(self.head_stream)
        try:
            sock = self.head_stream.socket
            client = parse_socket_addr(sock.family, sock.getpeername())
            server = parse_socket_addr(sock.family, sock.getsockname())
            async with RequestTaskGroup() as task_group:
                self._task_group = task_group
                self.protocol = ProtocolWrapper(self.app, self.config, self.context, task_group,
                                                ConnectionState(self.state), False, client, server,
                                                self.protocol_send, "http/1.1")
                await self.protocol.initiate()
                await self.idle_task.restart(task_group, self._idle_timeout)
                await self._read_data()
        except OSError:
            pass
        finally:
            self.context.connections.discard(self.head_stream)
            await self._close()

    async def _read_data(self) -> None:
        # hypercorn's loop without its per-read `fail_after(config.read_timeout)` (a cancel scope per read, and
        # read_timeout is unset): `HeadDeadlineStream` holds the head and keep-alive deadlines.
        while True:
            try:
                data = await self.stream.receive_some(MAX_RECV)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                break
            await self.protocol.handle(RawData(data))
            if not data:
                break
        await self.protocol.handle(Closed())

    @contextmanager
    def corked(self) -> Iterator[None]:
        self._corked = True
        try:
            yield
        finally:
            self._corked = False

    async def flush(self) -> None:
        if self._kept:
            await self._write(self._take_kept())

    def _take_kept(self, then: bytes = b"") -> bytes:
        self._kept.append(then)
        data = b"".join(self._kept)
        self._kept.clear()
        return data

    async def _write(self, data: bytes) -> None:
        if not self.send_lock.locked():
            await trio.lowlevel.checkpoint_if_cancelled()  # a cancelled task still writes nothing
            sent = self.head_stream.send_now(data)
            if sent == len(data):
                return
            data = data[sent:]
        await super().protocol_send(RawData(data=data))

    def chunk_writer(self) -> ChunkWriter | None:
        """The short path for the later chunks of the response under way (`later_chunk_writer`), if its body is
        chunked (h11's `ChunkedWriter`: an HTTP/1.1 client, no Content-Length).

        Per chunk the ASGI path costs a message through our wrappers, hypercorn's `HTTPStream.app_send` and
        `H11Protocol`, and h11's event machinery; the bytes are only h11's framing around the data, which keeps no
        state between chunks. So the chunk is framed here exactly as h11 frames it and written as any write of the
        connection (`_write`, in order with the others). h11's and hypercorn's states are untouched: the body's
        last message still goes the ASGI way, and so the response ends (keep-alive, close) as before."""
        protocol: Any = getattr(self.protocol, "protocol", None)  # H11Protocol for HTTP/1.1
        stream = getattr(protocol, "stream", None)
        connection = getattr(protocol, "connection", None)
        if (not isinstance(stream, HTTPStream) or not isinstance(connection, h11.Connection)
                or not isinstance(getattr(connection, "_writer", None), ChunkedWriter)):
            return None

        async def write(data: bytes) -> None:
            if not data:
                return  # as h11: an empty chunk would end the body
            if (protocol.stream is not stream or stream.closed or stream.state is not ASGIHTTPState.RESPONSE
                    or connection.our_state is not h11.SEND_BODY):
                return  # the response is over (its client went away): hypercorn drops such a chunk too
            framed = b"%x\r\n%s\r\n" % (len(data), data)
            await self._write(self._take_kept(framed) if self._kept else framed)
            # As for a later chunk on the ASGI path (`shield_response_end`): a pass after the bytes are out, so
            # the producer queues more meanwhile and the next write carries all of it.
            await trio.lowlevel.cancel_shielded_checkpoint()

        return write

    async def protocol_send(self, event: Any) -> None:
        if isinstance(event, RawData):
            if self._corked:
                self._kept.append(event.data)
            else:
                await self._write(self._take_kept(event.data) if self._kept else event.data)
            return
        if isinstance(event, Closed):
            await self.flush()  # a response's last bytes before the connection closes
        elif isinstance(event, Updated):
            if event.idle:
                self.head_stream.became_idle()
            else:
                self.head_stream.request_started()
        await super().protocol_send(event)


# ---- the accept loop ----------------------------------------------------------------------------------------


class Acceptor:
    """Accepts every connection waiting in a listening socket's backlog at each wake-up.

    trio's `serve_listeners` takes one connection per two scheduler passes; when a pass is long (a loaded machine,
    hundreds of streams) the backlog filled and the kernel dropped handshakes, and a client whose handshake kept
    being dropped for about a minute got a reset before any byte (a lost request). Here one wake-up drains up to
    `ACCEPT_BATCH` connections.

    When accept fails for want of descriptors, trio's loop logged a traceback every 100 ms. Here the first refusal
    is logged once, `on_exhausted` is called (the owner frees what it can: idle upstream sockets), and accept is
    retried with a growing pause; the connection waits in the kernel's backlog meanwhile."""

    def __init__(self, sock: Any, name: str, on_exhausted: Callable[[], None] | None) -> None:
        self._sock = sock  # a listening stdlib socket
        self._name = name
        self._on_exhausted = on_exhausted
        self._refused = 0  # accept attempts refused for want of descriptors since the backlog was last drained
        self._pause = ACCEPT_BACKOFF_FIRST

    async def serve(self, handler: Callable[[trio.SocketStream, Any], Awaitable[None]], nursery: trio.Nursery) -> None:
        self._sock.setblocking(False)
        try:
            while True:
                await trio.lowlevel.wait_readable(self._sock)
                await self._accept_waiting(handler, nursery)
        finally:
            trio.lowlevel.notify_closing(self._sock)
            self._sock.close()

    async def _accept_waiting(self, handler: Callable[[trio.SocketStream, Any], Awaitable[None]],
                              nursery: trio.Nursery) -> None:
        """Accept until the backlog is empty (or a batch is taken). An episode of refusals ends, and is reported
        as ended, only when the backlog has been drained."""
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self._sock.accept()
            except BlockingIOError:
                if self._refused:
                    log.warning("%s listener: accepting again after %d refused attempts", self._name, self._refused)
                    self._refused, self._pause = 0, ACCEPT_BACKOFF_FIRST
                return
            except OSError as exc:
                if exc.errno in PEER_GONE_ERRNOS:  # the client gave up while queued: nothing to serve
                    continue
                if exc.errno not in CAPACITY_ERRNOS:
                    raise
                await self._wait_for_descriptors(exc)
                continue
            nursery.start_soon(_run_connection, handler,
                               trio.SocketStream(trio.socket.from_stdlib_socket(conn)), conn)

    async def _wait_for_descriptors(self, exc: OSError) -> None:
        self._refused += 1
        if self._refused == 1:
            log.warning("%s listener: cannot accept connections (%s); waiting for descriptors to free up",
                        self._name, errno.errorcode.get(exc.errno or 0, exc.errno))
        if self._on_exhausted is not None:
            self._on_exhausted()
        await trio.sleep(self._pause)
        self._pause = min(self._pause * 2, ACCEPT_BACKOFF_MAX)


async def _run_connection(handler: Callable[[trio.SocketStream, Any], Awaitable[None]], stream: trio.SocketStream,
                          raw: Any) -> None:
    try:
        await handler(stream, raw)
    finally:
        await trio.aclose_forcefully(stream)


# ---- serve --------------------------------------------------------------------------------------------------


async def serve(app: Any, config: ServingConfig, *, name: str,
                shutdown_trigger: Callable[[], Awaitable[None]],
                on_exhausted: Callable[[], None] | None = None,
                task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve `app` on `config.bind` until `shutdown_trigger` returns; then stop accepting, close idle
    connections, and give open ones `config.graceful_timeout` seconds before cancelling them."""
    wrapped = wrap_app(stage_timing.timed(shield_response_end(app)), config.wsgi_max_body_size, "asgi")
    lifespan_state: dict[str, Any] = {}
    lifespan = Lifespan(wrapped, config, lifespan_state)
    context = ServingContext()
    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as connections:
            sockets = config.create_sockets()
            acceptors: list[Acceptor] = []
            binds: list[str] = []
            for sock in sockets.insecure_sockets:
                sock.listen(config.backlog)
                acceptors.append(Acceptor(sock, name, on_exhausted))
                binds.append(f"http://{repr_socket_addr(sock.family, sock.getsockname())}")

            def connection(stream: trio.SocketStream, raw: Any) -> Awaitable[None]:
                return GuardedConnection(wrapped, config, context, ConnectionState(lifespan_state.copy()),
                                         stream, raw).run()

            task_status.started(binds)
            try:
                async with trio.open_nursery() as accepting:
                    for acceptor in acceptors:
                        accepting.start_soon(acceptor.serve, connection, connections)
                    await shutdown_trigger()
                    accepting.cancel_scope.cancel()
            finally:
                # Idle connections close now; the others no longer recycle after their current request.
                await context.end_serving()
                connections.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()
