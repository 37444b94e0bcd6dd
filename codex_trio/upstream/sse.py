"""Sans-IO decoder for the backend's Server-Sent Events stream (spec/translation.md §1.4).

Feed it byte chunks as they arrive (boundaries anywhere, even between `\\r` and `\\n`), get `CodexEvent`s
out. The event type is the JSON `type` (what codex-rs dispatches on), else the `event:` line.

Linear in the input: bytes are appended to one buffer and each byte is scanned for line ends once, so a
single 4 MiB image event arriving in small chunks costs no more than it would in one piece. One event may
not exceed `max_event_bytes` (64 MiB by default: a 4K image arrives as one base64 event); past that the
stream ends with an `error` event instead of growing without bound.
"""

from __future__ import annotations

from typing import Any

import orjson

from codex_trio.upstream.events import CodexEvent

MAX_EVENT_BYTES = 64 * 1024 * 1024
_RAW_BODY_KEEP = 1024 * 1024  # how much of a non-SSE body is kept to explain it


def error_event(code: str, message: str) -> CodexEvent:
    return CodexEvent("error", {"type": "error", "error": {"type": "error", "code": code, "message": message}})


def _non_sse_message(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return text
    if isinstance(parsed, dict):
        error = parsed.get("error")
        for candidate in (parsed.get("detail"), error.get("message") if isinstance(error, dict) else error,
                          parsed.get("message")):
            if isinstance(candidate, str) and candidate:
                return candidate
    return text


class SseDecoder:
    def __init__(self, *, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._max = max_event_bytes
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already searched for a line end
        self._scan_mark = 0
        self._event_name: str | None = None
        self._data: list[bytes] = []
        self._data_bytes = 0
        self._raw_head = bytearray()  # the start of the body while no event has been seen
        self.events_seen = 0
        self.failed = False

    def feed(self, chunk: bytes) -> list[CodexEvent]:
        if self.failed or not chunk:
            return []
        if self.events_seen == 0 and len(self._raw_head) < _RAW_BODY_KEEP:
            self._raw_head += chunk[: _RAW_BODY_KEEP - len(self._raw_head)]
        self._buf += chunk
        out: list[CodexEvent] = []
        buf = self._buf
        start = 0
        while True:
            end, next_start = self._line_end(buf, start)
            if end < 0:
                break
            event = self._line(bytes(buf[start:end]))
            start = next_start
            if event is not None:
                out.append(event)
        if start:
            del buf[:start]
        self._scanned = self._scan_mark - start
        if len(buf) + self._data_bytes > self._max:
            out.append(self._too_large())
        return out

    def close(self) -> list[CodexEvent]:
        """End of body: flush a last event without its blank line, or explain a body that was not SSE."""
        if self.failed:
            return []
        out: list[CodexEvent] = []
        if self._buf:
            tail = bytes(self._buf.rstrip(b"\r"))
            self._buf.clear()
            event = self._line(tail)
            if event is not None:
                out.append(event)
        event = self._dispatch()
        if event is not None:
            out.append(event)
        if self.events_seen == 0 and self._raw_head.strip():
            self.failed = True
            out.append(error_event("non_sse_response", _non_sse_message(bytes(self._raw_head))))
        return out

    # -- internals -----------------------------------------------------------------------------------------

    def _line_end(self, buf: bytearray, start: int) -> tuple[int, int]:
        """(end of line, start of next line) for the first complete line at or after `start`, or (-1, -1).
        A `\\r` at the very end is not a line end yet: the `\\n` of a `\\r\\n` may be in the next chunk."""
        scan_from = max(start, self._scanned)
        lf = buf.find(b"\n", scan_from)
        cr = buf.find(b"\r", scan_from, lf if lf >= 0 else len(buf))
        if cr >= 0:
            if cr + 1 == len(buf):
                self._scan_mark = cr  # rescan this \r when more data arrives
                return -1, -1
            return cr, cr + 2 if buf[cr + 1] == 0x0A else cr + 1
        if lf >= 0:
            return lf, lf + 1
        self._scan_mark = len(buf)
        return -1, -1

    def _line(self, line: bytes) -> CodexEvent | None:
        if not line:
            return self._dispatch()
        if line[0] == 0x3A:  # ":" comment
            return None
        name, sep, value = line.partition(b":")
        if not sep:
            name, value = line, b""
        elif value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._add_data(value)
        elif name == b"event":
            self._event_name = value.decode("utf-8", "replace")
        elif name in (b"id", b"retry"):
            pass
        elif self._data:
            # Tolerance for pretty-printed JSON error bodies: unprefixed lines continue the data.
            self._add_data(line)
        return None

    def _add_data(self, value: bytes) -> None:
        self._data.append(value)
        self._data_bytes += len(value) + 1

    def _dispatch(self) -> CodexEvent | None:
        if not self._data:
            self._event_name = None
            return None
        raw = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        name = self._event_name
        self._data, self._data_bytes, self._event_name = [], 0, None
        if raw == b"[DONE]":
            return None
        self.events_seen += 1
        self._raw_head = bytearray()
        try:
            data: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            event_type = data.get("type")
            return CodexEvent(event_type if isinstance(event_type, str) and event_type else name or "message", data)
        # Not a JSON object: keep the text so an `error` event still says something.
        text = raw.decode("utf-8", "replace")
        event_type = name or "message"
        return CodexEvent(event_type, {"type": event_type, "message": text} if data is None else
                          {"type": event_type, "value": data})

    def _too_large(self) -> CodexEvent:
        self.failed = True
        self._buf.clear()
        self._data.clear()
        return error_event("sse_event_too_large",
                           f"an upstream event exceeded {self._max // (1024 * 1024)} MiB; the stream was cut")
