"""Typed Codex events.

Two levels, both sans-IO:

* `CodexEvent` is one event as the backend sent it (SSE `data:` object or WebSocket text frame), parsed with
  orjson. The Responses passthrough relays these almost untouched.
* `EventNormalizer` turns that stream into the small typed vocabulary every other protocol encoder consumes
  (text, reasoning, tool calls, images, terminal outcome with usage). It keeps the registry that maps an
  output item id to its tool call, because argument deltas name the item, not the call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union


@dataclass(slots=True)
class CodexEvent:
    type: str
    data: dict[str, Any]


@dataclass(slots=True, frozen=True)
class Usage:
    input_tokens: int = 0  # total prompt tokens, cached included
    output_tokens: int = 0  # reasoning included
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    image_input_tokens: int = 0
    image_output_tokens: int = 0
    reported: bool = False  # False when upstream sent no usage object at all

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def from_response(cls, response: dict[str, Any] | None) -> "Usage":
        response = response or {}
        usage = response.get("usage")
        image = ((response.get("tool_usage") or {}).get("image_gen")) or {}
        if not isinstance(usage, dict):
            return cls(image_input_tokens=_int(image.get("input_tokens")),
                       image_output_tokens=_int(image.get("output_tokens")))
        return cls(
            input_tokens=_int(usage.get("input_tokens")),
            output_tokens=_int(usage.get("output_tokens")),
            cached_tokens=_int((usage.get("input_tokens_details") or {}).get("cached_tokens")),
            reasoning_tokens=_int((usage.get("output_tokens_details") or {}).get("reasoning_tokens")),
            image_input_tokens=_int(image.get("input_tokens")),
            image_output_tokens=_int(image.get("output_tokens")),
            reported=True,
        )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# ---- the normalized vocabulary -------------------------------------------------------------------------

ToolKind = Literal["function", "custom"]


@dataclass(slots=True, frozen=True)
class ResponseStarted:
    response_id: str
    model: str | None


# The delta types are built once per upstream event on the relay's hot path, so they are not frozen: a frozen
# dataclass's __init__ sets every field through object.__setattr__ (about three times the cost). Nothing
# changes them after the normalizer made them.

@dataclass(slots=True)
class TextDelta:
    item_id: str
    output_index: int
    delta: str


@dataclass(slots=True)
class ReasoningDelta:
    """A delta of the reasoning summary (what clients may show as thinking)."""

    item_id: str
    summary_index: int
    delta: str


@dataclass(slots=True, frozen=True)
class ReasoningDone:
    """A finished reasoning item; `item` carries `encrypted_content` for multi-turn round trips."""

    item: dict[str, Any]

    @property
    def encrypted_content(self) -> str | None:
        value = self.item.get("encrypted_content")
        return value if isinstance(value, str) else None

    @property
    def summary_text(self) -> str:
        parts = self.item.get("summary") or []
        return "".join(p.get("text", "") for p in parts if isinstance(p, dict))


@dataclass(slots=True, frozen=True)
class ToolCallStarted:
    item_id: str
    call_id: str
    name: str
    kind: ToolKind
    output_index: int


@dataclass(slots=True)
class ToolCallDelta:
    call_id: str
    delta: str  # a piece of the JSON arguments (function) or of the free-form input (custom)


@dataclass(slots=True, frozen=True)
class ToolCallDone:
    call_id: str
    name: str
    arguments: str  # complete JSON arguments (function) or input text (custom)
    kind: ToolKind
    item: dict[str, Any]


@dataclass(slots=True, frozen=True)
class ImageGenerated:
    item_id: str
    result_b64: str
    revised_prompt: str | None
    output_format: str  # png / jpeg / webp
    item: dict[str, Any]


@dataclass(slots=True, frozen=True)
class PartialImage:
    item_id: str
    index: int
    b64: str


@dataclass(slots=True, frozen=True)
class OutputItemDone:
    """Any other finished output item (message, web_search_call, ...), for collectors that rebuild output."""

    item: dict[str, Any]


@dataclass(slots=True, frozen=True)
class Completed:
    """Terminal success (`response.completed`) or truncation (`response.incomplete`)."""

    response: dict[str, Any]
    usage: Usage
    incomplete_reason: str | None = None  # "max_output_tokens", "content_filter", ... when incomplete

    @property
    def response_id(self) -> str | None:
        return self.response.get("id")


@dataclass(slots=True, frozen=True)
class Failed:
    """Terminal failure: `response.failed` or an `error` event."""

    code: str
    message: str
    response: dict[str, Any] | None = None


@dataclass(slots=True, frozen=True)
class RateLimitsUpdate:
    """`codex.rate_limits` (WebSocket only): quota snapshot for the pool; never forwarded to clients."""

    data: dict[str, Any]


NormalizedEvent = Union[
    ResponseStarted, TextDelta, ReasoningDelta, ReasoningDone, ToolCallStarted, ToolCallDelta, ToolCallDone,
    ImageGenerated, PartialImage, OutputItemDone, Completed, Failed, RateLimitsUpdate,
]

_TEXT_DELTA = "response.output_text.delta"
TERMINAL_TYPES = frozenset({"response.completed", "response.incomplete", "response.failed", "error"})


def error_fields(data: Any) -> tuple[str, str]:
    """(code, message) of an `error` / `response.failed` event in any of the shapes the backend uses."""
    if not isinstance(data, dict):
        text = str(data)
        return ("malformed_error_event" if text.startswith("{") else "unknown", text)
    response = data.get("response") if isinstance(data.get("response"), dict) else {}
    record = data.get("error") if isinstance(data.get("error"), dict) else None
    if record is None and isinstance(response.get("error"), dict):
        record = response["error"]
    record = record or data
    message = next(
        (v for v in (record.get("message"), record.get("detail"), record.get("error_description"),
                     data.get("message"), data.get("detail"), response.get("message"), response.get("detail"))
         if isinstance(v, str) and v),
        None,
    )
    code = record.get("code") or response.get("code")
    if not code:
        event_type = record.get("type")
        code = event_type if event_type not in (None, "error", "response.failed") else "unknown"
    if message is None:
        import orjson

        message = orjson.dumps(record).decode()
    return str(code), message


@dataclass
class EventNormalizer:
    """Sans-IO: feed raw events in order, get normalized events out."""

    response_id: str | None = None
    _calls: dict[str, ToolCallStarted] = field(default_factory=dict)  # item id -> call
    _finished_calls: set[str] = field(default_factory=set)
    terminal: Completed | Failed | None = None

    def feed(self, event: CodexEvent) -> list[NormalizedEvent]:
        if self.terminal is not None:
            return []
        if event.type == _TEXT_DELTA:  # most events of a reply: no handler lookup, no call
            data = event.data
            delta = data.get("delta")
            if type(delta) is not str or not delta:
                return []
            index = data.get("output_index")
            return [TextDelta(data.get("item_id") or "",
                              index if type(index) is int else 0, delta)]  # _int's rule, inlined
        handler = _HANDLERS.get(event.type)
        if handler is None:
            return []
        return handler(self, event.data)

    # -- handlers ------------------------------------------------------------------------------------------

    def _created(self, data: dict[str, Any]) -> list[NormalizedEvent]:
        response = data.get("response") or {}
        if self.response_id is not None:
            return []
        self.response_id = response.get("id") or ""
        return [ResponseStarted(self.response_id, response.get("model"))]

    def _reasoning_delta(self, data: dict[str, Any]) -> list[NormalizedEvent]:
        delta = data.get("delta")
        if not isinstance(delta, str) or not delta:
            return []
        return [ReasoningDelta(data.get("item_id") or "", _int(data.get("summary_index")), delta)]

    def _item_added(self, data: dict[str, Any]) -> list[NormalizedEvent]:
        item = data.get("item") or {}
        kind = {"function_call": "function", "custom_tool_call": "custom"}.get(item.get("type"))
        if kind is None or not item.get("call_id") or not item.get("name"):
            return []
        started = ToolCallStarted(item.get("id") or item["call_id"], item["call_id"], item["name"], kind,
                                  _int(data.get("output_index")))
        self._calls[started.item_id] = started
        return [started]

    def _call_for(self, data: dict[str, Any]) -> ToolCallStarted | None:
        item_id = data.get("item_id")
        if item_id in self._calls:
            return self._calls[item_id]
        call_id = data.get("call_id")
        return next((c for c in self._calls.values() if c.call_id == call_id), None)

    def _args_delta(self, data: dict[str, Any]) -> list[NormalizedEvent]:
        call = self._call_for(data)
        delta = data.get("delta")
        if call is None or not isinstance(delta, str) or not delta:
            return []
        return [ToolCallDelta(call.call_id, delta)]

    def _args_done(self, data: dict[str, Any], field_name: str) -> list[NormalizedEvent]:
        call = self._call_for(data)
        if call is None or call.item_id in self._finished_calls:
            return []
        self._finished_calls.add(call.item_id)
        value = data.get(field_name)
        item = {"type": "function_call" if call.kind == "function" else "custom_tool_call", "id": call.item_id,
                "call_id": call.call_id, "name": data.get("name") or call.name,
                field_name: value if isinstance(value, str) else ""}
        return [ToolCallDone(call.call_id, item["name"], item[field_name], call.kind, item)]

    def _item_done(self, data: dict[str, Any]) -> list[NormalizedEvent]:
        item = data.get("item") or {}
        item_type = item.get("type")
        if item_type == "reasoning":
            return [ReasoningDone(item)]
        if item_type in ("function_call", "custom_tool_call"):
            call = self._calls.get(item.get("id")) or next(
                (c for c in self._calls.values() if c.call_id == item.get("call_id")), None)
            out: list[NormalizedEvent] = []
            if call is None:  # a call that never announced itself: announce it now
                kind: ToolKind = "function" if item_type == "function_call" else "custom"
                call = ToolCallStarted(item.get("id") or item.get("call_id") or "", item.get("call_id") or "",
                                       item.get("name") or "", kind, _int(data.get("output_index")))
                self._calls[call.item_id] = call
                out.append(call)
            if call.item_id in self._finished_calls:
                return out
            self._finished_calls.add(call.item_id)
            payload = item.get("arguments" if item_type == "function_call" else "input")
            out.append(ToolCallDone(call.call_id, item.get("name") or call.name,
                                    payload if isinstance(payload, str) else "", call.kind, item))
            return out
        if item_type == "image_generation_call":
            result = item.get("result")
            if not isinstance(result, str) or not result:
                return [OutputItemDone(item)]
            return [ImageGenerated(item.get("id") or "", result, item.get("revised_prompt"),
                                   item.get("output_format") or "png", item)]
        return [OutputItemDone(item)]

    def _partial_image(self, data: dict[str, Any]) -> list[NormalizedEvent]:
        b64 = data.get("partial_image_b64")
        if not isinstance(b64, str):
            return []
        return [PartialImage(data.get("item_id") or "", _int(data.get("partial_image_index")), b64)]

    def _completed(self, data: dict[str, Any]) -> list[NormalizedEvent]:
        response = data.get("response") or {}
        reason = None
        if response.get("status") == "incomplete" or data.get("type") == "response.incomplete":
            reason = (response.get("incomplete_details") or {}).get("reason") or "unknown"
        self.terminal = Completed(response, Usage.from_response(response), reason)
        return [self.terminal]

    def _failed(self, data: dict[str, Any]) -> list[NormalizedEvent]:
        code, message = error_fields(data)
        self.terminal = Failed(code, message, data.get("response") if isinstance(data.get("response"), dict) else None)
        return [self.terminal]

    def _rate_limits(self, data: dict[str, Any]) -> list[NormalizedEvent]:
        return [RateLimitsUpdate(data)]


_HANDLERS = {  # "response.output_text.delta" is handled in `feed` itself (the hot path)
    "response.created": EventNormalizer._created,
    "response.in_progress": EventNormalizer._created,
    "response.reasoning_summary_text.delta": EventNormalizer._reasoning_delta,
    "response.output_item.added": EventNormalizer._item_added,
    "response.function_call_arguments.delta": EventNormalizer._args_delta,
    "response.function_call_arguments.done": lambda self, d: self._args_done(d, "arguments"),
    "response.custom_tool_call_input.delta": EventNormalizer._args_delta,
    "response.custom_tool_call_input.done": lambda self, d: self._args_done(d, "input"),
    "response.output_item.done": EventNormalizer._item_done,
    "response.image_generation_call.partial_image": EventNormalizer._partial_image,
    "response.completed": EventNormalizer._completed,
    "response.incomplete": EventNormalizer._completed,
    "response.failed": EventNormalizer._failed,
    "error": EventNormalizer._failed,
    "codex.rate_limits": EventNormalizer._rate_limits,
}
