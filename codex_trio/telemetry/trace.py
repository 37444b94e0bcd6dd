"""One request on its way through the gateway: what the app hooks and the dispatcher learn about it, turned
into a `RequestRecord` when both the response and the upstream turn are over."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Callable

from ..errors import GatewayError

from .record import RequestRecord

if TYPE_CHECKING:
    from ..turn import Turn
    from ..upstream.errors import UpstreamFailure
    from ..upstream.events import Usage
    from .client_keys import ClientKey, KeyLease

CLIENT_CLOSED = 499  # the client went away before the response was sent (nginx's convention)
# Turn.options key: the name a client key's model allow-list is matched against when it is not the request's
# model (an API-key provider's model is `<provider label>/<model>`, as clients name it).
ALLOW_LIST_MODEL = "allow_list_model"


def request_id() -> str:
    """A random UUID (version 4) in hex, as `uuid.uuid4().hex` writes it, without building a UUID object (a
    fifth of the cost, on every request)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return raw.hex()


class RequestTrace:
    """Implements `recorder.TurnRecorder` for one HTTP request."""

    def __init__(self, finish: Callable[["RequestTrace"], None], *, protocol: str, path: str, method: str,
                 wall_clock: float, user_agent: str = "", client_ip: str = "", key: "ClientKey | None" = None,
                 admit: Callable[["ClientKey", str], "KeyLease"] | None = None) -> None:
        self._finish = finish
        self._admit = admit
        self.key = key
        self.lease: "KeyLease | None" = None
        self.started = time.monotonic()
        self.record = RequestRecord(id=request_id(), started_at=wall_clock, protocol=protocol, path=path,
                                    method=method, user_agent=user_agent, client_ip=client_ip,
                                    key_id=key.id if key else "", key_name=key.name if key else "")
        self.sent_at: float | None = None
        self.opened_at: float | None = None
        self.turn_open = False
        self.responded = False
        self.streamed = False  # the reply is a stream: the record waits for its body to end
        self.body_complete: bool | None = None  # None until a streamed body ended; False: the client left early
        self.finished = False
        self.bodies: dict[str, Any] | None = None
        self.upstream_failures: list[str] = []  # kinds, for the metrics

    # ---- TurnRecorder ---------------------------------------------------------------------------------------

    def admit(self, turn: "Turn") -> None:
        record = self.record
        record.requested_model = turn.requested_model or ""
        record.model = str(turn.request.get("model") or "")
        record.stream = bool(turn.stream)
        if self.key is not None and self.lease is None and self._admit is not None:
            self.lease = self._admit(self.key, turn.options.get(ALLOW_LIST_MODEL) or record.model)

    def sending(self) -> None:
        self.sent_at = time.monotonic()

    def failed_over(self, account_id: str, error: GatewayError) -> None:
        self.record.failovers += 1
        self.upstream_failures.append(error.code or str(error.kind))

    def opened(self, account_id: str, model: str, transport: str) -> None:
        self.opened_at = time.monotonic()
        self.turn_open = True
        record = self.record
        record.account, record.model, record.transport = account_id, model, transport
        record.ttfb_ms = round((self.opened_at - self.started) * 1000, 3)

    def broke(self, error: GatewayError) -> None:
        self.upstream_failures.append(error.code or str(error.kind))
        self.note_error(error.kind, error.message)

    def closed(self, usage: "Usage | None", failure: "UpstreamFailure | None") -> None:
        record = self.record
        if usage is not None:
            record.input_tokens, record.cached_tokens = usage.input_tokens, usage.cached_tokens
            record.output_tokens, record.reasoning_tokens = usage.output_tokens, usage.reasoning_tokens
        if failure is not None:
            self.upstream_failures.append(failure.code or "upstream")
            self.note_error("upstream", f"{failure.code}: {failure.message}" if failure.code else failure.message)
        self.turn_open = False
        self._maybe_finish()

    # ---- the app hooks --------------------------------------------------------------------------------------

    def note_error(self, kind: str, text: str) -> None:
        if not self.record.error_kind:  # the first error is the cause; later ones are consequences
            self.record.error_kind, self.record.error_text = str(kind), text

    def overhead_ms(self) -> float:
        """Time spent in the gateway itself before the first upstream byte: arrival → the serving attempt was
        sent, plus first upstream event → response headers (everything, for a reply without a turn)."""
        now = time.monotonic()
        if self.sent_at is None or self.opened_at is None:
            return round((now - self.started) * 1000, 3)
        return round(((self.sent_at - self.started) + (now - self.opened_at)) * 1000, 3)

    def responded_with(self, status: int) -> None:
        if self.responded:
            return
        self.responded = True
        self.record.status = status
        if self.record.overhead_ms is None:
            self.record.overhead_ms = self.overhead_ms()
        self._maybe_finish()

    def body_ended(self, complete: bool) -> None:
        """A streamed reply's body ended: sent to its end, or cut short (the client went away)."""
        self.body_complete = complete
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self.finished or not self.responded or self.turn_open or (self.streamed and self.body_complete is None):
            return
        self.finished = True
        record = self.record
        record.duration_ms = round((time.monotonic() - self.started) * 1000, 3)
        if record.status >= 400 or record.error_kind:
            record.outcome = "cancelled" if record.status == CLIENT_CLOSED else "error"
        elif self.streamed and not self.body_complete:
            record.outcome = "cancelled"
        # A turn that ended without usage under a complete reply was ended by the gateway on purpose (a stop
        # sequence): the client got a whole, correct reply, so it counts as ok.
        record.bodies = self.bodies
        try:
            self._finish(self)
        finally:
            if self.lease is not None:
                self.lease.release()
