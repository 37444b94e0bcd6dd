"""Sans-IO decoding of the Responses WebSocket's server frames (spec/chatgpt-mode.md §5).

Each text frame is one JSON event object, the same objects the SSE stream carries in `data:`, plus
`codex.rate_limits` and wrapped HTTP errors (`{"type":"error","status_code":429,"error":{…},"headers":{…}}`).
A frame that is not a JSON object, or a binary frame, becomes an `error` event: codex-rs treats both as a
broken stream, and so must the turn that reads them.
"""

from __future__ import annotations

import orjson

from codex_trio.upstream.events import CodexEvent
from codex_trio.upstream.sse import error_event


def decode_text_frame(payload: str | bytes) -> CodexEvent:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        text = payload if isinstance(payload, str) else payload.decode("utf-8", "replace")
        return error_event("malformed_ws_frame", f"upstream sent a WebSocket frame that is not JSON: {text[:200]}")
    if not isinstance(data, dict) or not isinstance(data.get("type"), str) or not data["type"]:
        return error_event("malformed_ws_frame", "upstream sent a WebSocket frame without an event type")
    return CodexEvent(data["type"], data)


def binary_frame_event() -> CodexEvent:
    return error_event("unexpected_binary_frame", "upstream sent a binary WebSocket frame")


def closed_early_event(close_code: int | None) -> CodexEvent:
    """The socket closed before a terminal event: a retryable stream error, never a silent end."""
    return error_event("stream_closed_early",
                       f"upstream closed the WebSocket (code {close_code}) before response.completed")
