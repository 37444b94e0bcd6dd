"""The narrow interface the dispatcher reports a turn through.

The dispatcher calls `current_recorder()` once per turn; during an HTTP request of a model route that is the
request's `RequestTrace` (set by the app hooks in `routes.py`), otherwise (WebSocket turns, tests that call
the dispatcher directly) a recorder that does nothing. So the dispatcher needs no telemetry object passed in,
and telemetry being off costs one context-variable read.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..errors import GatewayError
    from ..turn import Turn
    from ..upstream.errors import UpstreamFailure
    from ..upstream.events import Usage


class TurnRecorder(Protocol):
    def admit(self, turn: "Turn") -> None:
        """Before any upstream call, with the model resolved: enforce the client key's limits (raises
        GatewayError 429 / 403) and note the turn's model."""

    def sending(self) -> None:
        """An upstream attempt is about to be sent (the gateway's own overhead ends here)."""

    def failed_over(self, account_id: str, error: "GatewayError") -> None:
        """An account was given up on before the turn started."""

    def opened(self, account_id: str, model: str, transport: str) -> None:
        """The turn started on this account (its first substantive event arrived)."""

    def broke(self, error: "GatewayError") -> None:
        """The turn failed mid-stream (transport error, idle timeout, premature end)."""

    def closed(self, usage: "Usage | None", failure: "UpstreamFailure | None") -> None:
        """The turn is over: its usage (completed / incomplete) or its terminal failure; neither = cut short."""


class NullRecorder:
    def admit(self, turn: Any) -> None: ...
    def sending(self) -> None: ...
    def failed_over(self, account_id: str, error: Any) -> None: ...
    def opened(self, account_id: str, model: str, transport: str) -> None: ...
    def broke(self, error: Any) -> None: ...
    def closed(self, usage: Any, failure: Any) -> None: ...


NULL_RECORDER = NullRecorder()
_current: ContextVar[TurnRecorder] = ContextVar("codex_trio_turn_recorder", default=NULL_RECORDER)


def current_recorder() -> TurnRecorder:
    return _current.get()


def set_current(recorder: TurnRecorder) -> None:
    _current.set(recorder)


def transport_of(transport: Any) -> str:
    """Which upstream transport a conversation's turn used: its WebSocket when one is open, else SSE."""
    return "websocket" if getattr(transport, "socket", None) is not None else "sse"
