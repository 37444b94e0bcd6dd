"""Recording the turns of a Responses WebSocket: one socket carries many turns, one after the other, so the
socket's recorder starts a `RequestTrace` per turn (at `admit`, which the dispatcher calls first) and ends it
with the turn. A turn that could not be started is ended by the next one, or when the socket closes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..errors import GatewayError

if TYPE_CHECKING:
    from ..turn import Turn
    from ..upstream.errors import UpstreamFailure
    from ..upstream.events import Usage
    from .trace import RequestTrace

NOT_STARTED = "The turn could not be started (the client got an error frame)."


class SocketTurns:
    """Implements `recorder.TurnRecorder` for one WebSocket connection."""

    def __init__(self, begin: Callable[[], "RequestTrace"]) -> None:
        self._begin = begin
        self._trace: "RequestTrace | None" = None

    def admit(self, turn: "Turn") -> None:
        self.end()
        trace = self._trace = self._begin()
        trace.streamed = True  # ends with the turn: complete when the turn reached its terminal event
        try:
            trace.admit(turn)
        except GatewayError as error:
            self._refused(error)
            raise

    def _refused(self, error: GatewayError) -> None:
        trace, self._trace = self._trace, None
        if trace is not None:
            trace.note_error(str(error.kind), error.message)
            trace.responded_with(error.status)
            trace.body_ended(True)

    def sending(self) -> None:
        if self._trace is not None:
            self._trace.sending()

    def failed_over(self, account_id: str, error: GatewayError) -> None:
        if self._trace is not None:
            self._trace.failed_over(account_id, error)

    def opened(self, account_id: str, model: str, transport: str) -> None:
        if self._trace is not None:
            self._trace.opened(account_id, model, transport)
            self._trace.responded_with(200)

    def broke(self, error: GatewayError) -> None:
        if self._trace is not None:
            self._trace.broke(error)

    def closed(self, usage: "Usage | None", failure: "UpstreamFailure | None") -> None:
        trace, self._trace = self._trace, None
        if trace is not None:
            trace.closed(usage, failure)
            trace.body_ended(usage is not None or failure is not None or bool(trace.record.error_kind))

    def end(self) -> None:
        """A turn still waiting to start never will (its open failed): record it as an error."""
        trace, self._trace = self._trace, None
        if trace is not None and not trace.responded:
            trace.note_error("upstream", NOT_STARTED)
            trace.responded_with(502)
            trace.body_ended(True)
