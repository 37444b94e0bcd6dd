"""Turn planning: from a validated request and a reply behaviour to the exact event sequence (pure).

The plan is a list of `Step`s (an event dict, or None for "drop the connection here", each with the real
time to wait before it) plus the output items and token usage. Transports (SSE or WebSocket) only encode
and pace the steps. Event payloads follow spec/upstream.md §5.2 and the stand-in replies captured with the
real client.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from . import media
from .scenario import Reply, TurnFacts
from .schema_instance import instance
from .validation import declared_tools

_LOREM = ("The simulated backend streams this text so that clients see realistic deltas, usage and timing. ")


@dataclass(slots=True)
class Step:
    event: dict[str, Any] | None  # None: drop the connection at this point
    delay: float = 0.0  # seconds to wait before this step


@dataclass
class TurnPlan:
    response_id: str
    steps: list[Step]
    output: list[dict[str, Any]]
    usage_tokens: int
    first_byte_delay: float = 0.0
    completed: bool = True


@dataclass
class _Builder:
    response_id: str
    model: str
    created_at: int
    new_id: Callable[[str], str]
    events: list[dict[str, Any]] = field(default_factory=list)
    output: list[dict[str, Any]] = field(default_factory=list)
    output_chars: int = 0
    reasoning_chars: int = 0

    def emit(self, kind: str, **payload: Any) -> None:
        self.events.append({"type": kind, "sequence_number": len(self.events), **payload})

    def response(self, status: str, **extra: Any) -> dict[str, Any]:
        return {"id": self.response_id, "object": "response", "created_at": self.created_at, "status": status,
                "model": self.model, "output": list(self.output), **extra}

    def begin(self, item: dict[str, Any]) -> int:
        index = len(self.output)
        self.emit("response.output_item.added", output_index=index, item=item)
        return index

    def finish(self, index: int, item: dict[str, Any]) -> None:
        self.output.append(item)
        self.emit("response.output_item.done", output_index=index, item=item)


def _chunks(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def _encrypted(seed: str) -> str:
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    return "gAAAAAB" + base64.urlsafe_b64encode(digest * 3).decode("ascii")


def _image_tool(body: dict) -> dict[str, Any]:
    for tool in declared_tools(body):
        if tool.get("type") == "image_generation":
            return tool
    return {}


def _json_schema(body: dict) -> dict[str, Any] | None:
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    if isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object"):
        return fmt
    return None


def default_text(facts: TurnFacts) -> str:
    text = facts.user_text.strip()
    return ("Echo: " + text[:4000]) if text else "Hello from the codex-trio simulator."


def plan_prewarm(response_id: str, model: str, created_at: int) -> TurnPlan:
    """A `generate:false` request: created + completed with an empty output and zero usage."""
    b = _Builder(response_id, model, created_at, lambda p: p)
    b.emit("response.created", response=b.response("in_progress"))
    usage = {"input_tokens": 0, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 0,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 0}
    b.emit("response.completed", response=b.response("completed", usage=usage))
    return TurnPlan(response_id, [Step(e) for e in b.events], [], 0)


def plan_turn(body: dict, reply: Reply | None, facts: TurnFacts, *, input_tokens: int, created_at: int,
              response_id: str, new_id: Callable[[str], str], cached_tokens: int = 0) -> TurnPlan:
    spec = reply or Reply()
    b = _Builder(response_id, facts.model, created_at, new_id)
    b.emit("response.created", response=b.response("in_progress"))
    b.emit("response.in_progress", response=b.response("in_progress"))

    include = body.get("include") or []
    wants_reasoning_item = spec.reasoning is not None or (reply is None and "reasoning.encrypted_content" in include)
    if wants_reasoning_item:
        _reasoning(b, spec.reasoning or "", spec.chunk_size)
    if spec.web_search is not None:
        _web_search(b, spec.web_search.query)
    image_usage = None
    if spec.image is not None:
        image_usage = _image(b, body, spec, facts)

    text = _text_for(body, reply, spec, facts)
    if text is not None:
        _message(b, text, spec.chunk_size)
    for call in spec.function_calls:
        arguments = call.arguments if isinstance(call.arguments, str) else orjson.dumps(call.arguments).decode()
        _function_call(b, call.name, arguments, call.namespace)
    for custom in spec.custom_tool_calls:
        _custom_call(b, custom.name, custom.input)

    output_tokens = (b.output_chars + 3) // 4 + (b.reasoning_chars + 3) // 4
    usage = {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": cached_tokens},
             "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": (b.reasoning_chars + 3) // 4},
             "total_tokens": input_tokens + output_tokens}
    completed = False
    if spec.fail is not None:
        b.emit("response.failed", response=b.response(
            "failed", error={"code": spec.fail.code, "message": spec.fail.message}, usage=None))
    elif spec.error_event is not None:
        b.emit("error", error={"type": "server_error" if spec.error_event.code == "server_error" else "invalid_request_error",
                               "code": spec.error_event.code, "message": spec.error_event.message, "param": None})
    elif spec.incomplete is not None:
        b.emit("response.incomplete", response=b.response(
            "incomplete", incomplete_details={"reason": spec.incomplete}, usage=usage))
    else:
        extra: dict[str, Any] = {"usage": usage}
        if image_usage is not None:
            extra["tool_usage"] = {"image_gen": image_usage}
        b.emit("response.completed", response=b.response("completed", **extra))
        completed = True

    steps = [Step(event, spec.pacing_ms / 1000 if i else 0.0) for i, event in enumerate(b.events)]
    if spec.idle_gap_ms and 0 < spec.idle_gap_after < len(steps):
        steps[spec.idle_gap_after].delay += spec.idle_gap_ms / 1000
    if spec.disconnect_after is not None and spec.disconnect_after < len(steps):
        steps = steps[:spec.disconnect_after] + [Step(None, spec.pacing_ms / 1000)]
        completed = False
    return TurnPlan(response_id, steps, b.output, input_tokens + output_tokens, spec.first_byte_delay_ms / 1000,
                    completed)


def _text_for(body: dict, reply: Reply | None, spec: Reply, facts: TurnFacts) -> str | None:
    if spec.text is not None:
        return spec.text
    if spec.text_length is not None:
        return (_LOREM * (spec.text_length // len(_LOREM) + 1))[:spec.text_length]
    fmt = _json_schema(body)
    if fmt is not None and spec.structured is not False and (reply is None or spec.structured or not _acts(spec)):
        if fmt.get("type") == "json_object":
            return orjson.dumps({"answer": default_text(facts)}).decode()
        return orjson.dumps(instance(fmt.get("schema") or {})).decode()
    if spec.web_search is not None:
        return spec.web_search.text or f"Here is what I found about {spec.web_search.query}."
    if reply is None or not _acts(spec):
        return default_text(facts)
    return None


def _acts(spec: Reply) -> bool:
    """Whether the reply produces something other than a message (then no default text is added)."""
    return bool(spec.function_calls or spec.custom_tool_calls or spec.image or spec.fail or spec.error_event)


def _reasoning(b: _Builder, summary: str, chunk: int) -> None:
    item_id = b.new_id("rs")
    index = b.begin({"type": "reasoning", "id": item_id, "summary": []})
    parts = []
    if summary:
        b.emit("response.reasoning_summary_part.added", item_id=item_id, output_index=index, summary_index=0,
               part={"type": "summary_text", "text": ""})
        for piece in _chunks(summary, max(chunk, 8)):
            b.emit("response.reasoning_summary_text.delta", item_id=item_id, output_index=index, summary_index=0,
                   delta=piece)
        b.emit("response.reasoning_summary_text.done", item_id=item_id, output_index=index, summary_index=0,
               text=summary)
        b.emit("response.reasoning_summary_part.done", item_id=item_id, output_index=index, summary_index=0,
               part={"type": "summary_text", "text": summary})
        parts = [{"type": "summary_text", "text": summary}]
    b.reasoning_chars += max(len(summary), 64)
    b.finish(index, {"type": "reasoning", "id": item_id, "summary": parts,
                     "encrypted_content": _encrypted(item_id + summary)})


def _message(b: _Builder, text: str, chunk: int) -> None:
    item_id = b.new_id("msg")
    index = b.begin({"type": "message", "id": item_id, "role": "assistant", "status": "in_progress", "content": []})
    where = {"item_id": item_id, "output_index": index, "content_index": 0}
    b.emit("response.content_part.added", **where, part={"type": "output_text", "text": "", "annotations": []})
    for piece in _chunks(text, chunk):
        b.emit("response.output_text.delta", **where, delta=piece)
    b.emit("response.output_text.done", **where, text=text)
    part = {"type": "output_text", "text": text, "annotations": []}
    b.emit("response.content_part.done", **where, part=part)
    b.output_chars += len(text)
    b.finish(index, {"type": "message", "id": item_id, "role": "assistant", "status": "completed", "content": [part]})


def _function_call(b: _Builder, name: str, arguments: str, namespace: str | None) -> None:
    item_id, call_id = b.new_id("fc"), b.new_id("call")
    head: dict[str, Any] = {"type": "function_call", "id": item_id, "call_id": call_id, "name": name}
    if namespace:
        head["namespace"] = namespace
    index = b.begin({**head, "arguments": "", "status": "in_progress"})
    for piece in _chunks(arguments, 16):
        b.emit("response.function_call_arguments.delta", item_id=item_id, output_index=index, delta=piece)
    b.emit("response.function_call_arguments.done", item_id=item_id, output_index=index, arguments=arguments)
    b.output_chars += len(arguments) + len(name)
    b.finish(index, {**head, "arguments": arguments, "status": "completed"})


def _custom_call(b: _Builder, name: str, text: str) -> None:
    item_id, call_id = b.new_id("ctc"), b.new_id("call")
    head = {"type": "custom_tool_call", "id": item_id, "call_id": call_id, "name": name}
    index = b.begin({**head, "input": "", "status": "in_progress"})
    for piece in _chunks(text, 16):
        b.emit("response.custom_tool_call_input.delta", item_id=item_id, output_index=index, delta=piece)
    b.emit("response.custom_tool_call_input.done", item_id=item_id, output_index=index, input=text)
    b.output_chars += len(text) + len(name)
    b.finish(index, {**head, "input": text, "status": "completed"})


def _web_search(b: _Builder, query: str) -> None:
    item_id = b.new_id("ws")
    index = b.begin({"type": "web_search_call", "id": item_id, "status": "in_progress"})
    for phase in ("in_progress", "searching", "completed"):
        b.emit(f"response.web_search_call.{phase}", output_index=index, item_id=item_id)
    b.finish(index, {"type": "web_search_call", "id": item_id, "status": "completed",
                     "action": {"type": "search", "query": query,
                                "sources": [{"type": "url", "url": "https://example.com/search-result"}]}})


def _image(b: _Builder, body: dict, spec: Reply, facts: TurnFacts) -> dict[str, int]:
    assert spec.image is not None
    tool = _image_tool(body)
    fmt = spec.image.format or tool.get("output_format") or "png"
    size = media.parse_size(spec.image.size or tool.get("size"))
    prompt = spec.image.prompt or facts.user_text or "an image"
    quality = tool.get("output_compression") if isinstance(tool.get("output_compression"), int) else None
    data = base64.b64encode(media.render(prompt, fmt, size, quality)).decode("ascii")
    partials = spec.image.partial_images if spec.image.partial_images is not None else int(tool.get("partial_images") or 0)
    item_id = b.new_id("ig")
    index = b.begin({"type": "image_generation_call", "id": item_id, "status": "in_progress"})
    b.emit("response.image_generation_call.in_progress", output_index=index, item_id=item_id)
    b.emit("response.image_generation_call.generating", output_index=index, item_id=item_id)
    for n in range(min(3, partials)):
        b.emit("response.image_generation_call.partial_image", output_index=index, item_id=item_id,
               partial_image_index=n, partial_image_b64=data, output_format=fmt,
               size=f"{size[0]}x{size[1]}")
    b.finish(index, {"type": "image_generation_call", "id": item_id, "status": "completed", "result": data,
                     "revised_prompt": prompt, "output_format": fmt, "size": f"{size[0]}x{size[1]}",
                     "background": tool.get("background", "opaque"), "quality": "medium"})
    return {"input_tokens": 50, "output_tokens": 1056, "total_tokens": 1106,
            "input_tokens_details": {"image_tokens": 0, "text_tokens": 50}}
