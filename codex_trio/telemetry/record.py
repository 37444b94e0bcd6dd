"""The record of one request: what usage accounting, the request log and the metrics are made of."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

# ok: the turn completed (or the reply needed no turn); error: the client got an error (status, or a terminal
# error frame mid-stream); cancelled: the client went away (or shutdown cut the stream) before the end.
Outcome = Literal["ok", "error", "cancelled"]


@dataclass(slots=True)
class RequestRecord:
    id: str
    started_at: float  # wall clock, seconds
    protocol: str  # openai, responses, anthropic, gemini, ollama, images
    path: str
    method: str = "POST"
    key_id: str = ""  # the client key's id; "" for the admin key (or the keyless Ollama listener)
    key_name: str = ""
    requested_model: str = ""
    model: str = ""  # the Codex model id after alias and suffix resolution
    account: str = ""  # the account (pool id) that served the turn
    status: int = 0  # the HTTP status the client got (200 for a stream, whatever happened in it)
    outcome: Outcome = "ok"
    stream: bool = False
    input_tokens: int = 0  # cached included, as the backend counts them
    cached_tokens: int = 0
    output_tokens: int = 0  # reasoning included
    reasoning_tokens: int = 0
    ttfb_ms: float | None = None  # request arrival → first substantive upstream event
    duration_ms: float = 0.0
    overhead_ms: float | None = None  # time spent in the gateway itself before the first upstream byte
    error_kind: str = ""
    error_text: str = ""
    transport: str = ""  # upstream transport of the serving attempt: websocket / sse
    failovers: int = 0  # accounts given up on before one served (or before giving up)
    user_agent: str = ""
    client_ip: str = ""
    cost_usd: float = 0.0
    bodies: dict[str, Any] | None = field(default=None)  # captured request/response bodies (when enabled)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if data["bodies"] is None:
            del data["bodies"]
        data["total_tokens"] = self.total_tokens
        return data
