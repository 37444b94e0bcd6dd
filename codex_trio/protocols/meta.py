"""What an encoder needs to know about the reply that is not in the events (sans-IO: no clock, no RNG)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ResponseMeta:
    id: str  # the id the client sees (chatcmpl-…, msg_…, resp_…), chosen by the route
    model: str  # the model name to echo (display name after resolution, or what the client asked)
    created: int  # unix seconds
