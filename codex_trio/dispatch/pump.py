"""The turn pump: one task owns one turn from the moment it is opened until it is closed.

Every way of serving a turn — an SSE or NDJSON stream, a collected JSON reply, a turn on the downstream Responses
WebSocket — is this one loop with a different `TurnOutput` (how events become client frames) and `send` (where
the frames go). The loop

* opens the turn through the dispatcher (failover before the first byte) and reports it open to whoever started
  it (`task_status.started(upstream)`, so a route can still answer an error status when no account serves it);
* feeds every upstream event to the output and sends each batch's frames in one call;
* ends every turn with a terminal frame: the protocol's own ending, or its failure frame when the upstream
  failed, broke off without a terminal event, or shutdown cut the turn after the grace period;
* stops reading when a stop sequence ended the reply; closing the turn then cancels it upstream;
* closes the turn itself — releasing the account's slot and the conversation's socket — in its own `finally`,
  under a shield with a deadline, whether it finished, failed, or was cancelled because its client went away.

Because the task that opens the turn is the task that closes it, a response whose body is never read cannot
keep a turn: the pump is a task of the request (`server/request_tasks.py`), cancelled when the request ends,
however it ends.
"""

from __future__ import annotations

import enum
import logging
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol, TypeVar

import trio

from ..errors import ErrorKind, GatewayError
from ..protocols.failures import premature_close
from ..protocols.stops import StopScanner
from ..upstream.events import CodexEvent, EventNormalizer, NormalizedEvent, TextDelta

if TYPE_CHECKING:
    from ..turn import Turn
    from .upstream_turn import UpstreamTurn

log = logging.getLogger(__name__)

Frame = TypeVar("Frame")
# How long closing a turn may take once shielded: the account's bookkeeping and the socket's release. A close
# that hangs past it is abandoned (the socket is dropped by its own owner), never the task that waits on it.
CLOSE_DEADLINE_SECONDS = 10.0


class TurnOutput(Protocol[Frame]):
    """How one protocol turns upstream events into frames for its client (sans-IO)."""

    @property
    def stopped(self) -> bool:
        """A stop sequence ended the reply: the pump reads no further and cancels the turn."""
        ...

    def start(self) -> list[Frame]: ...
    def feed(self, event: CodexEvent, normalized: list[NormalizedEvent]) -> list[Frame]: ...
    def finish(self) -> list[Frame]: ...
    def fail(self, error: GatewayError) -> list[Frame]: ...


class Shutdown(Protocol):
    """What the pump needs of the shutdown coordinator (`server/shutdown.py`)."""

    def register(self, scope: trio.CancelScope) -> None: ...
    def unregister(self, scope: trio.CancelScope) -> None: ...
    def was_cut(self, scope: trio.CancelScope) -> bool: ...
    def cut_error(self) -> GatewayError: ...


class Ending(enum.Enum):
    COMPLETED = "completed"  # the protocol's own ending went out (a stop sequence included)
    FAILED = "failed"  # the upstream failed or broke off: the failure frame went out
    CUT = "cut"  # shutdown ended the turn after the grace period: the failure frame went out
    CLIENT_GONE = "client_gone"  # nobody left to send to


Opener = Callable[["Turn"], Awaitable["UpstreamTurn"]]
Send = Callable[[list[Any]], Awaitable[None]]


def as_gateway_error(exc: BaseException) -> GatewayError:
    if isinstance(exc, GatewayError):
        return exc
    log.exception("serving a turn failed", exc_info=exc)
    return GatewayError(502, "The upstream stream failed; see the gateway log.", ErrorKind.UPSTREAM,
                        code="stream_error")


async def close_within_deadline(upstream: "UpstreamTurn") -> None:
    """Close a turn even when the task closing it is being cancelled, but never wait on it forever."""
    with trio.CancelScope(shield=True, deadline=trio.current_time() + CLOSE_DEADLINE_SECONDS) as scope:
        await upstream.aclose()
    if scope.cancelled_caught:
        log.warning("closing the turn on account %s took over %.0f s; left to finish on its own",
                    upstream.account_id, CLOSE_DEADLINE_SECONDS)


class TurnPump:
    """Serves turns: `run` is the whole life of one turn (see the module docstring)."""

    def __init__(self, open_turn: Opener, shutdown: Shutdown) -> None:
        self._open = open_turn
        self._shutdown = shutdown

    async def run(self, turn: "Turn", output: TurnOutput[Frame], send: Send, *, cuttable: bool = True,
                  task_status=trio.TASK_STATUS_IGNORED) -> Ending:
        """Open, serve and close one turn. A failure to open (no account, a client's mistake) raises
        GatewayError before `task_status.started`; from then on every ending is a frame.

        `cuttable`: shutdown may end the turn after its grace period (streams, WebSocket turns); a collected
        reply is not, since its request is answered with a 503 by `answer_when_cut` instead."""
        upstream: "UpstreamTurn | None" = None
        ending, cut = Ending.CLIENT_GONE, False
        with trio.CancelScope() as work:
            if cuttable:
                self._shutdown.register(work)
            try:
                upstream = await self._open(turn)
                try:
                    task_status.started(upstream)
                    ending = await self._serve(upstream, output, send)
                finally:
                    await close_within_deadline(upstream)
            finally:
                if cuttable:
                    cut = self._shutdown.was_cut(work)
                    self._shutdown.unregister(work)
        if not cut:
            return ending
        if upstream is None:  # cut while opening: nothing went out yet, the whole request is refused
            raise self._shutdown.cut_error()
        try:
            await send(output.fail(self._shutdown.cut_error()))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return Ending.CLIENT_GONE
        return Ending.CUT

    async def _serve(self, upstream: "UpstreamTurn", output: TurnOutput[Frame], send: Send) -> Ending:
        normalizer = EventNormalizer()
        try:
            try:
                frames = output.start()
                if frames:
                    await send(frames)
                # Closed here, not left to the garbage collector: the loop stops at the terminal event, before the
                # generator ends, and trio finalizes an abandoned one with a warning and a wake-up of its own.
                async with aclosing(upstream.batches()) as batches:
                    async for batch in batches:
                        frames = []
                        for event in batch:
                            frames += output.feed(event, normalizer.feed(event))
                            if output.stopped:
                                break  # the rest is what the cancelled turn would have said
                        if frames:
                            await send(frames)
                        if normalizer.terminal is not None or output.stopped:
                            break
                if normalizer.terminal is None and not output.stopped:
                    raise premature_close()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes the protocol's failure frame
                await send(output.fail(as_gateway_error(exc)))
                return Ending.FAILED
            await send(output.finish())
            return Ending.COMPLETED
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return Ending.CLIENT_GONE  # the body went away first: nobody to tell


class Collected:
    """The output of a collected (non-streaming) reply: every normalized event up to a stop sequence, and the raw
    events; a failure is raised (the route answers it in its protocol's envelope)."""

    def __init__(self, stop_sequences: list[str] | None = None) -> None:
        self._stops = StopScanner(stop_sequences or ())
        self.events: list[NormalizedEvent] = []
        self.raw: list[CodexEvent] = []

    @property
    def stopped(self) -> bool:
        return self._stops.hit

    def start(self) -> list[Any]:
        return []

    def feed(self, event: CodexEvent, normalized: list[NormalizedEvent]) -> list[Any]:
        self.raw.append(event)
        for item in normalized:
            if self._stops.hit:
                break
            self.events.append(item)
            if isinstance(item, TextDelta):
                self._stops.feed(item.delta)
        return []

    def finish(self) -> list[Any]:
        return []

    def fail(self, error: GatewayError) -> list[Any]:
        raise error


async def discard(_frames: list[Any]) -> None:
    """The `send` of a collected reply: it has no frames."""
