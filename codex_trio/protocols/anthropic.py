"""Anthropic Messages (`POST /v1/messages`) ⇄ Codex Responses, sans-IO.

* `parse_request(body, session_id=None) -> Turn` validates a Messages body and builds the Codex request.
* `StreamEncoder(turn, meta)` turns normalized Codex events into Anthropic SSE frames
  (`event: <type>\\ndata: <json>\\n\\n`), exactly the event order the Anthropic API streams.
* `encode_response(turn, events, meta)` builds the non-streaming `message` object (Claude Code falls back to it)
  by replaying the same block state machine and accumulating its events.
* `encode_error(err)` gives Anthropic's `{"type":"error","error":{type,message}}` envelope and status.

Multi-turn reasoning: upstream reasoning items carry `encrypted_content`. Outbound, a thinking block's
`signature` is `REASONING_SIGNATURE_PREFIX + base64url(item id) + "." + encrypted_content`; inbound, a thinking
block whose signature decodes becomes a `reasoning` input item again, so the model keeps its chain of thought
across turns. Signatures we did not mint (real Anthropic ones) cannot be replayed upstream and are dropped.

What it shares with the other adapters lives in shared modules: reasoning.py (signature codec, effort from a
thinking budget), codex_request.py (function tools, structured output), json_body.py, validators.py, stops.py,
failures.py.
Structured output whose schema has tuples is held back and sent once, through `restore_tuples`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson

from codex_trio.errors import ErrorKind, GatewayError
from codex_trio.protocols.codex_request import DEFAULT_INSTRUCTIONS, function_tool, structured_format
from codex_trio.protocols.failures import error_from_failed, premature_close
from codex_trio.protocols.generated_images import image_markdown
from codex_trio.protocols.json_body import load_json_object, parse_json_object
from codex_trio.protocols.meta import ResponseMeta
from codex_trio.protocols.reasoning import decode_reasoning_signature, effort_from_budget, encode_reasoning_signature
from codex_trio.protocols.schema import OPT_TUPLE_SCHEMA, restore_tuples
from codex_trio.protocols.stops import StopScanner
from codex_trio.protocols.token_count import Counter, count_turn_tokens
from codex_trio.protocols.validators import expect_field as _expect, invalid_field as _fail
from codex_trio.turn import Turn
from codex_trio.upstream.events import (
    Completed,
    Failed,
    ImageGenerated,
    NormalizedEvent,
    ReasoningDelta,
    ReasoningDone,
    ResponseStarted,
    TextDelta,
    ToolCallDelta,
    ToolCallDone,
    ToolCallStarted,
)

# Claude Code prepends a system block whose values rotate on every request; keeping it would defeat the
# upstream prompt cache, and it means nothing to the model.
BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"
IMAGE_TOOL = "image_generation"
OPT_TOOL_NAMES = "tool_names"  # Turn.options: the names of the client's own tools

# ---- request --------------------------------------------------------------------------------------------

_THINKING_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "max": "xhigh", "xhigh": "xhigh"}


def _positive_int(value: Any, param: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _fail("must be a positive integer", param)
    return value


def _system_blocks(system: Any) -> list[str]:
    """The texts of `system`: a string or an array of text blocks."""
    if system is None:
        return []
    if isinstance(system, str):
        return [system]
    _expect(system, list, "system", "a string or an array of text blocks")
    texts = []
    for i, block in enumerate(system):
        _expect(block, dict, f"system[{i}]", "an object")
        if block.get("type") == "text":
            texts.append(_expect(block.get("text"), str, f"system[{i}].text", "a string"))
    return texts


def _image_url(block: dict[str, Any], param: str) -> str:
    source = _expect(block.get("source"), dict, f"{param}.source", "an object")
    kind = source.get("type")
    if kind == "base64":
        media_type = _expect(source.get("media_type"), str, f"{param}.source.media_type", "a string")
        data = _expect(source.get("data"), str, f"{param}.source.data", "a string")
        return f"data:{media_type};base64,{data}"
    if kind == "url":
        return _expect(source.get("url"), str, f"{param}.source.url", "a string")
    raise _fail("image source type must be 'base64' or 'url'", f"{param}.source.type")


def _document_part(block: dict[str, Any], param: str) -> dict[str, Any]:
    source = _expect(block.get("source"), dict, f"{param}.source", "an object")
    kind = source.get("type")
    if kind == "text":
        return {"type": "input_text", "text": _expect(source.get("data"), str, f"{param}.source.data", "a string")}
    if kind == "base64":
        media_type = _expect(source.get("media_type"), str, f"{param}.source.media_type", "a string")
        data = _expect(source.get("data"), str, f"{param}.source.data", "a string")
        name = block.get("title") if isinstance(block.get("title"), str) else "document.pdf"
        return {"type": "input_file", "filename": name, "file_data": f"data:{media_type};base64,{data}"}
    if kind == "url":
        return {"type": "input_file", "file_url": _expect(source.get("url"), str, f"{param}.source.url", "a string")}
    raise _fail("document source type must be 'base64', 'url' or 'text'", f"{param}.source.type")


class _InputBuilder:
    """Turns Anthropic messages into Codex input items, keeping the order of blocks within each message."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self._parts: list[dict[str, Any]] = []
        self._role = "user"

    def _flush(self) -> None:
        if self._parts:
            self.items.append({"type": "message", "role": self._role, "content": self._parts})
            self._parts = []

    def add_message(self, message: Any, param: str) -> None:
        _expect(message, dict, param, "an object")
        role = message.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise _fail("role must be 'user' or 'assistant' (or 'system')", f"{param}.role")
        # Codex speaks `developer` for mid-conversation instructions (Claude Code sends role "system" there).
        self._role = {"system": "developer"}.get(role, role)
        text_type = "output_text" if role == "assistant" else "input_text"
        content = message.get("content")
        if isinstance(content, str):
            self._parts.append({"type": text_type, "text": content})
            self._flush()
            return
        _expect(content, list, f"{param}.content", "a string or an array of content blocks")
        for i, block in enumerate(content):
            self._add_block(block, role, text_type, f"{param}.content[{i}]")
        self._flush()

    def _add_block(self, block: Any, role: str, text_type: str, param: str) -> None:
        _expect(block, dict, param, "an object")
        kind = block.get("type")
        if kind == "text":
            self._parts.append({"type": text_type, "text": _expect(block.get("text"), str, f"{param}.text", "a string")})
        elif kind == "image":
            url = _image_url(block, param)
            if role != "assistant":  # the backend accepts images only as input
                self._parts.append({"type": "input_image", "image_url": url})
        elif kind == "document":
            part = _document_part(block, param)
            if role != "assistant":
                self._parts.append(part)
        elif kind == "tool_use":
            self._flush()
            call_id = _expect(block.get("id"), str, f"{param}.id", "a string")
            name = _expect(block.get("name"), str, f"{param}.name", "a string")
            arguments = block.get("input", {})
            self.items.append({"type": "function_call", "call_id": call_id, "name": name,
                               "arguments": orjson.dumps(arguments).decode()})
        elif kind == "tool_result":
            self._flush()
            self._add_tool_result(block, param)
        elif kind in ("thinking", "redacted_thinking"):
            signature = block.get("signature") if kind == "thinking" else block.get("data")
            item = decode_reasoning_signature(signature)
            if item is not None:
                self._flush()
                thinking = block.get("thinking")
                if isinstance(thinking, str) and thinking:
                    item["summary"] = [{"type": "summary_text", "text": thinking}]
                self.items.append(item)
        # Other block types (server_tool_use, web_search_tool_result, container_upload, ...) describe work the
        # Anthropic platform did; they have no Codex input equivalent and are skipped like the API skips them.

    def _add_tool_result(self, block: dict[str, Any], param: str) -> None:
        call_id = _expect(block.get("tool_use_id"), str, f"{param}.tool_use_id", "a string")
        content = block.get("content", "")
        images: list[dict[str, Any]] = []
        if isinstance(content, list):
            texts = []
            for i, inner in enumerate(content):
                _expect(inner, dict, f"{param}.content[{i}]", "an object")
                if inner.get("type") == "text":
                    texts.append(_expect(inner.get("text"), str, f"{param}.content[{i}].text", "a string"))
                elif inner.get("type") == "image":
                    images.append({"type": "input_image", "image_url": _image_url(inner, f"{param}.content[{i}]")})
            output = "\n".join(texts)
        elif isinstance(content, str):
            output = content
        elif content is None:
            output = ""
        else:
            raise _fail("must be a string or an array of content blocks", f"{param}.content")
        if block.get("is_error") is True:
            output = f"Error: {output}"
        self.items.append({"type": "function_call_output", "call_id": call_id, "output": output})
        if images:  # function_call_output carries text; the images follow as the user's own message
            self.items.append({"type": "message", "role": "user", "content": images})


def _is_hosted_web_search(tool: dict[str, Any]) -> bool:
    kind = tool.get("type")
    return isinstance(kind, str) and (kind == "web_search" or kind.startswith("web_search_"))


def _convert_tools(tools: Any) -> tuple[list[dict[str, Any]], set[str]]:
    """Codex tools plus the names that refer to the hosted web search (for tool_choice)."""
    if tools is None:
        return [], set()
    _expect(tools, list, "tools", "an array")
    out: list[dict[str, Any]] = []
    hosted_names: set[str] = set()
    for i, tool in enumerate(tools):
        param = f"tools[{i}]"
        _expect(tool, dict, param, "an object")
        kind = tool.get("type")
        if _is_hosted_web_search(tool):
            if isinstance(tool.get("name"), str):
                hosted_names.add(tool["name"])
            if not any(t.get("type") == "web_search" for t in out):
                out.append({"type": "web_search"})
            continue
        if kind not in (None, "custom"):
            raise _fail(f"tool type {kind!r} is not supported by this gateway; declare it as a custom tool "
                        "with an input_schema instead", f"{param}.type")
        name = _expect(tool.get("name"), str, f"{param}.name", "a string")
        if not name:
            raise _fail("must not be empty", f"{param}.name")
        schema = tool.get("input_schema")
        if schema is not None:
            _expect(schema, dict, f"{param}.input_schema", "an object")
        # Anthropic-only fields such as cache_control, defer_loading or input_examples are not carried over.
        out.append(function_tool(name, tool.get("description"), schema))
    return out, hosted_names


def _convert_tool_choice(choice: Any, hosted_names: set[str]) -> tuple[Any, bool | None]:
    """(Codex tool_choice, parallel_tool_calls override)."""
    _expect(choice, dict, "tool_choice", "an object")
    kind = choice.get("type")
    parallel = False if choice.get("disable_parallel_tool_use") is True else None
    if kind == "auto":
        return "auto", parallel
    if kind == "any":
        return "required", parallel
    if kind == "none":
        return "none", parallel
    if kind == "tool":
        name = _expect(choice.get("name"), str, "tool_choice.name", "a string")
        if name in hosted_names:
            return {"type": "web_search"}, parallel
        return {"type": "function", "name": name}, parallel
    raise _fail("type must be one of 'auto', 'any', 'tool', 'none'", "tool_choice.type")


def _output_format(data: dict[str, Any], options: dict[str, Any]) -> dict[str, Any] | None:
    """Structured output: `output_config.format` (current API) or top-level `output_format` (beta)."""
    config = data.get("output_config")
    fmt, param = (config.get("format"), "output_config.format") if isinstance(config, dict) else (None, "")
    if fmt is None and data.get("output_format") is not None:
        fmt, param = data["output_format"], "output_format"
    if fmt is None:
        return None
    _expect(fmt, dict, param, "an object")
    if fmt.get("type") != "json_schema":
        raise _fail("type must be 'json_schema'", f"{param}.type")
    schema = _expect(fmt.get("schema"), dict, f"{param}.schema", "an object")
    return structured_format("output", schema, options)


def _conversation_id(metadata: Any) -> str | None:
    if metadata is None:
        return None
    _expect(metadata, dict, "metadata", "an object")
    user_id = metadata.get("user_id")
    if user_id is None:
        return None
    _expect(user_id, str, "metadata.user_id", "a string")
    # Claude Code sends a JSON string {device_id, account_uuid, session_id}: the session is the conversation.
    if user_id.startswith("{"):
        try:
            parsed = orjson.loads(user_id)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("session_id"), str) and parsed["session_id"].strip():
            return parsed["session_id"].strip()
    return user_id.strip() or None


def _thinking(thinking: Any, output_config: Any) -> tuple[str | None, bool]:
    """(explicit effort, expose thinking blocks)."""
    effort: str | None = None
    expose = False
    if thinking is not None:
        _expect(thinking, dict, "thinking", "an object")
        kind = thinking.get("type")
        if kind == "enabled":
            effort = effort_from_budget(_positive_int(thinking.get("budget_tokens"), "thinking.budget_tokens"))
            expose = True
        elif kind == "adaptive":
            if thinking.get("budget_tokens") is not None:
                effort = effort_from_budget(_positive_int(thinking["budget_tokens"], "thinking.budget_tokens"))
            expose = True
        elif kind != "disabled":
            raise _fail("type must be 'enabled', 'adaptive' or 'disabled'", "thinking.type")
    if output_config is not None:
        _expect(output_config, dict, "output_config", "an object")
        level = output_config.get("effort")
        if level is not None:
            if not isinstance(level, str) or level not in _THINKING_EFFORTS:
                raise _fail("must be one of 'low', 'medium', 'high', 'xhigh', 'max'", "output_config.effort")
            effort = _THINKING_EFFORTS[level]
    return effort, expose


def parse_request(body: bytes, *, session_id: str | None = None, count_only: bool = False) -> Turn:
    """A Messages body → Turn. `session_id` is the `X-Claude-Code-Session-Id` header when present.

    `count_only` validates a `/v1/messages/count_tokens` body (no `max_tokens`).
    """
    data = load_json_object(body)
    model = data.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _fail("is required and must be a non-empty string", "model")
    if not count_only:
        max_tokens = _positive_int(data.get("max_tokens"), "max_tokens")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _fail("is required and must be a non-empty array", "messages")
    for name in ("temperature", "top_p", "top_k"):  # accepted, but the backend has no sampling knobs
        value = data.get(name)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise _fail("must be a number", name)
    stream = data.get("stream", False)
    _expect(stream, bool, "stream", "a boolean")

    kept = [b.strip() for b in _system_blocks(data.get("system"))
            if b.strip() and not b.lstrip().startswith(BILLING_HEADER_PREFIX)]
    instructions = "\n\n".join(kept) or DEFAULT_INSTRUCTIONS

    builder = _InputBuilder()
    for i, message in enumerate(messages):
        builder.add_message(message, f"messages[{i}]")
    items = builder.items or [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": ""}]}]

    tools, hosted_names = _convert_tools(data.get("tools"))
    options: dict[str, Any] = {OPT_TOOL_NAMES: [t["name"] for t in tools if t.get("type") == "function"]}
    request: dict[str, Any] = {"model": model, "instructions": instructions, "input": items, "tools": tools,
                               "tool_choice": "auto", "parallel_tool_calls": True}
    if data.get("tool_choice") is not None:
        request["tool_choice"], parallel = _convert_tool_choice(data["tool_choice"], hosted_names)
        if parallel is not None:
            request["parallel_tool_calls"] = parallel

    effort, expose = _thinking(data.get("thinking"), data.get("output_config"))
    output_format = _output_format(data, options)
    if output_format is not None:
        request["text"] = {"format": output_format}
    request["reasoning"] = {"effort": effort, "summary": "auto"} if effort else {"summary": "auto"}

    stops = data.get("stop_sequences")
    stop_sequences: list[str] = []
    if stops is not None:
        _expect(stops, list, "stop_sequences", "an array of strings")
        for i, stop in enumerate(stops):
            stop_sequences.append(_expect(stop, str, f"stop_sequences[{i}]", "a string"))

    conversation = session_id.strip() if isinstance(session_id, str) and session_id.strip() else None
    conversation = conversation or _conversation_id(data.get("metadata"))
    if not count_only:
        options["max_tokens"] = max_tokens
    return Turn(request=request, requested_model=model, stream=stream, conversation_id=conversation,
                reasoning_effort=effort, expose_reasoning=expose, stop_sequences=stop_sequences, options=options)


# ---- response: one block state machine, two renderings ----------------------------------------------------


def _usage(completed: Completed | None) -> dict[str, int]:
    if completed is None:
        return {"input_tokens": 0, "output_tokens": 0}
    usage = completed.usage
    out = {"input_tokens": max(usage.input_tokens - usage.cached_tokens, 0), "output_tokens": usage.output_tokens}
    if usage.cached_tokens:
        out["cache_read_input_tokens"] = usage.cached_tokens
    return out


@dataclass
class _Blocks:
    """Normalized events → Anthropic stream events (as dicts), in the API's order and index discipline."""

    turn: Turn
    meta: ResponseMeta
    started: bool = False
    finished: bool = False
    saw_tool: bool = False
    saw_text: bool = False
    next_index: int = 0
    text_index: int | None = None
    thinking_index: int | None = None
    thinking_item: str | None = None
    thinking_summary: int = 0
    tools: dict[str, int] = field(default_factory=dict)  # call id -> block index
    tool_deltas: set[str] = field(default_factory=set)  # call ids that streamed argument deltas
    open_tools: set[str] = field(default_factory=set)
    custom_calls: set[str] = field(default_factory=set)
    images: set[str] = field(default_factory=set)  # generated images already delivered as text
    held_text: list[str] = field(default_factory=list)  # structured output waiting for `restore_tuples`
    stops: StopScanner = field(init=False)

    def __post_init__(self) -> None:
        self.stops = StopScanner(self.turn.stop_sequences)
        self.tuple_schema = self.turn.options.get(OPT_TUPLE_SCHEMA)

    def start(self) -> list[dict[str, Any]]:
        if self.started:
            return []
        self.started = True
        return [{"type": "message_start", "message": {
            "id": self.meta.id, "type": "message", "role": "assistant", "model": self.meta.model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}}]

    def _open(self, block: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        index, self.next_index = self.next_index, self.next_index + 1
        return index, {"type": "content_block_start", "index": index, "content_block": block}

    def _close_text(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self.text_index is not None:
            out.append({"type": "content_block_stop", "index": self.text_index})
            self.text_index = None
        return out

    def _close_thinking(self, signature: str | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self.thinking_index is not None:
            if signature:
                out.append({"type": "content_block_delta", "index": self.thinking_index,
                            "delta": {"type": "signature_delta", "signature": signature}})
            out.append({"type": "content_block_stop", "index": self.thinking_index})
            self.thinking_index, self.thinking_item = None, None
        return out

    def _text(self, text: str) -> list[dict[str, Any]]:
        if not text:
            return []
        self.saw_text = True
        out = self._close_thinking()
        if self.text_index is None:
            self.text_index, opening = self._open({"type": "text", "text": ""})
            out.append(opening)
        out.append({"type": "content_block_delta", "index": self.text_index,
                    "delta": {"type": "text_delta", "text": text}})
        return out

    def _open_thinking(self, item_id: str) -> list[dict[str, Any]]:
        out = self._close_text()
        if self.thinking_index is not None and self.thinking_item != item_id:
            out += self._close_thinking()
        if self.thinking_index is None:
            self.thinking_index, opening = self._open({"type": "thinking", "thinking": "", "signature": ""})
            self.thinking_item, self.thinking_summary = item_id, 0
            out.append(opening)
        return out

    def feed(self, event: NormalizedEvent) -> list[dict[str, Any]]:
        if self.finished:
            return []
        out = self.start()
        stopped = self.stops.matched is not None
        if isinstance(event, TextDelta) and self.tuple_schema is not None:
            self.held_text.append(event.delta)  # tuples come back as objects: only the whole text can be mapped
        elif isinstance(event, TextDelta):
            out += self._text(self.stops.feed(event.delta))
        elif isinstance(event, ReasoningDelta) and self.turn.expose_reasoning and not stopped:
            out += self._open_thinking(event.item_id)
            delta = event.delta
            if event.summary_index != self.thinking_summary:  # a new summary paragraph
                self.thinking_summary, delta = event.summary_index, "\n\n" + delta
            out.append({"type": "content_block_delta", "index": self.thinking_index,
                        "delta": {"type": "thinking_delta", "thinking": delta}})
        elif isinstance(event, ReasoningDone) and self.turn.expose_reasoning and not stopped:
            encrypted, item_id = event.encrypted_content, event.item.get("id")
            signature = encode_reasoning_signature(item_id, encrypted) if encrypted and item_id else None
            if self.thinking_index is not None and self.thinking_item != item_id:
                out += self._close_thinking()  # the open block belongs to another reasoning item
            if self.thinking_index is None and signature:  # no summary streamed: still carry the reasoning
                out += self._open_thinking(item_id)
            if self.thinking_index is not None:
                out += self._close_thinking(signature)
        elif isinstance(event, ToolCallStarted) and not stopped:
            out += self._start_tool(event.call_id, event.name, event.kind)
        elif isinstance(event, ToolCallDelta) and event.call_id in self.open_tools and not stopped:
            if event.call_id not in self.custom_calls:  # custom input is wrapped as JSON at the end
                self.tool_deltas.add(event.call_id)
                out.append({"type": "content_block_delta", "index": self.tools[event.call_id],
                            "delta": {"type": "input_json_delta", "partial_json": event.delta}})
        elif isinstance(event, ToolCallDone) and not stopped:
            out += self._finish_tool(event)
        elif isinstance(event, ImageGenerated) and not stopped:
            out += self._image(event)
        elif isinstance(event, Completed):
            out += self._complete(event)
        return out

    def _start_tool(self, call_id: str, name: str, kind: str) -> list[dict[str, Any]]:
        if call_id in self.tools:
            return []
        out = self._close_thinking() + self._close_text()
        self.saw_tool = True
        self.tools[call_id], opening = self._open({"type": "tool_use", "id": call_id, "name": name, "input": {}})
        self.open_tools.add(call_id)
        if kind == "custom":
            self.custom_calls.add(call_id)
        out.append(opening)
        return out

    def _finish_tool(self, event: ToolCallDone) -> list[dict[str, Any]]:
        out = self._start_tool(event.call_id, event.name, event.kind)
        if event.call_id not in self.open_tools:
            return out
        self.open_tools.discard(event.call_id)
        index = self.tools[event.call_id]
        if event.call_id in self.tool_deltas:
            return out + [{"type": "content_block_stop", "index": index}]
        payload = event.arguments if event.kind == "function" else orjson.dumps({"input": event.arguments}).decode()
        if payload:
            out.append({"type": "content_block_delta", "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": payload}})
        out.append({"type": "content_block_stop", "index": index})
        return out

    def _image(self, event: ImageGenerated) -> list[dict[str, Any]]:
        """Anthropic has no assistant image block, and the hosted image tool is none the client declared (a
        call of an undeclared tool is an error to Claude Code): the image is markdown text with a data URI,
        as on the Chat path. Only a client that declared a tool of that name, with `images_as_markdown`
        off, gets the image as a call of it."""
        if event.item_id in self.tools or event.item_id in self.images:
            return []
        self.images.add(event.item_id)
        if self.turn.inline_images or IMAGE_TOOL not in self.turn.options.get(OPT_TOOL_NAMES, ()):
            held = self.stops.flush()
            separator = "\n\n" if self.saw_text or held else ""
            return self._text(held + separator + image_markdown(event))
        out = self._start_tool(event.item_id, IMAGE_TOOL, "function")
        index = self.tools[event.item_id]
        arguments = {"result": event.result_b64, "output_format": event.output_format}
        if event.revised_prompt:
            arguments["revised_prompt"] = event.revised_prompt
        self.open_tools.discard(event.item_id)
        out.append({"type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": orjson.dumps(arguments).decode()}})
        out.append({"type": "content_block_stop", "index": index})
        return out

    def _complete(self, completed: Completed | None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self.held_text:
            out += self._text(self.stops.feed(restore_tuples("".join(self.held_text), self.tuple_schema)))
            self.held_text.clear()
        out += self._text(self.stops.flush())
        out += self._close_thinking() + self._close_text()
        for call_id in list(self.open_tools):  # calls the upstream never finished
            out.append({"type": "content_block_stop", "index": self.tools[call_id]})
        self.open_tools.clear()
        reason = completed.incomplete_reason if completed is not None else None
        if self.stops.matched is not None:
            stop_reason = "stop_sequence"
        elif reason == "max_output_tokens":
            stop_reason = "max_tokens"
        elif reason == "content_filter":
            stop_reason = "refusal"
        elif self.saw_tool:
            stop_reason = "tool_use"
        else:
            stop_reason = "end_turn"
        self.finished = True
        out.append({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": self.stops.matched},
                    "usage": _usage(completed)})
        out.append({"type": "message_stop"})
        return out

    def finish(self) -> list[dict[str, Any]]:
        """End of upstream without a terminal event: only a stop-sequence hit makes that a clean end."""
        if self.finished or self.stops.matched is None:
            return []
        return self.start() + self._complete(None)


def _frame(event: dict[str, Any]) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


class StreamEncoder:
    """Normalized Codex events → Anthropic SSE bytes."""

    def __init__(self, turn: Turn, meta: ResponseMeta) -> None:
        self._blocks = _Blocks(turn, meta)
        # Text goes out as it came (no stop sequence to scan, no tuple schema to restore at the end).
        self._plain_text = not turn.stop_sequences and self._blocks.tuple_schema is None
        self._text_frame_head: tuple[int | None, bytes] = (None, b"")  # the open text block's delta frame start

    @property
    def done(self) -> bool:
        """True once message_stop (or an error event) was written."""
        return self._blocks.finished

    @property
    def stopped(self) -> bool:
        """A stop sequence matched: the route may stop reading upstream and call `finish()`."""
        return self._blocks.stops.matched is not None

    def feed(self, event: NormalizedEvent) -> bytes:
        blocks = self._blocks
        if (type(event) is TextDelta and self._plain_text and blocks.text_index is not None and event.delta
                and blocks.thinking_index is None and not blocks.finished):
            # Most events of a reply: the text block is open, so the frame is the one `_Blocks._text` makes.
            return self._text_delta_head(blocks.text_index) + orjson.dumps(event.delta) + b"}}\n\n"
        if isinstance(event, Failed):
            return self.fail(error_from_failed(event))
        if isinstance(event, ResponseStarted):
            return b"".join(_frame(e) for e in self._blocks.start())
        return b"".join(_frame(e) for e in self._blocks.feed(event))

    def _text_delta_head(self, index: int) -> bytes:
        """`_frame` of a `text_delta` in block `index`, up to the text's JSON string."""
        if self._text_frame_head[0] != index:
            self._text_frame_head = (index, b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
                                     + str(index).encode() + b',"delta":{"type":"text_delta","text":')
        return self._text_frame_head[1]

    def heartbeat(self) -> bytes:
        return b'event: ping\ndata: {"type": "ping"}\n\n'

    def fail(self, error: GatewayError) -> bytes:
        if self._blocks.finished:
            return b""
        self._blocks.finished = True
        _, body = encode_error(error)
        return _frame(body)

    def finish(self) -> bytes:
        """Call once upstream is over. Ends a stream cut off by a stop sequence cleanly, and one that ended
        without a terminal event with an error event, so no stream ever stops without its terminal event."""
        out = b"".join(_frame(e) for e in self._blocks.finish())
        return out if self._blocks.finished else out + self.fail(premature_close())


def encode_response(turn: Turn, events: Iterable[NormalizedEvent], meta: ResponseMeta) -> dict[str, Any]:
    """The non-streaming `message`. Raises the GatewayError of a failed upstream turn."""
    blocks = _Blocks(turn, meta)
    message: dict[str, Any] = {}
    content: list[dict[str, Any]] = []
    partial_json: dict[int, str] = {}
    for event in [*(e for ev in events for e in _collect(blocks, ev)), *blocks.finish()]:
        kind = event["type"]
        if kind == "message_start":
            message = dict(event["message"])
        elif kind == "content_block_start":
            content.append(dict(event["content_block"]))
        elif kind == "content_block_delta":
            block, delta = content[event["index"]], event["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            else:
                partial_json[event["index"]] = partial_json.get(event["index"], "") + delta["partial_json"]
        elif kind == "content_block_stop" and content[event["index"]]["type"] == "tool_use":
            content[event["index"]]["input"] = parse_json_object(partial_json.get(event["index"], ""))
        elif kind == "message_delta":
            message.update(event["delta"])
            message["usage"] = event["usage"]
    if not blocks.finished:
        raise premature_close()
    message["content"] = content
    return message


def _collect(blocks: _Blocks, event: NormalizedEvent) -> list[dict[str, Any]]:
    if isinstance(event, Failed):
        raise error_from_failed(event)
    return blocks.feed(event)


# ---- count_tokens ----------------------------------------------------------------------------------------


def count_tokens(body: bytes, count: Counter) -> dict[str, int]:
    """`POST /v1/messages/count_tokens` → `{"input_tokens": n}`; bad bodies raise GatewayError (400)."""
    turn = parse_request(body, count_only=True)
    return {"input_tokens": count_turn_tokens(turn, count)}


# ---- models ----------------------------------------------------------------------------------------------

MODEL_PAGE_DEFAULT = 20
MODEL_PAGE_MAX = 1000


def model_info(model_id: str, display_name: str | None, created_at: str) -> dict[str, Any]:
    """One `ModelInfo` (`GET /v1/models/{id}`). `created_at` is an RFC 3339 time (the API allows an epoch
    value when the release date is unknown)."""
    return {"type": "model", "id": model_id, "display_name": display_name or model_id, "created_at": created_at}


def model_page(infos: list[dict[str, Any]], *, limit: str | None = None, after_id: str | None = None,
               before_id: str | None = None) -> dict[str, Any]:
    """`GET /v1/models` for Anthropic clients: a page of `ModelInfo`s with Anthropic's cursor fields
    (`limit` 1–1000, default 20; `after_id` / `before_id` name the model the page starts after / ends before)."""
    size = MODEL_PAGE_DEFAULT
    if limit is not None:
        try:
            size = int(limit)
        except ValueError:
            size = 0
        if not 1 <= size <= MODEL_PAGE_MAX:
            raise _fail(f"must be an integer from 1 to {MODEL_PAGE_MAX}", "limit")
    ids = [info["id"] for info in infos]
    start, end = 0, len(infos)
    for cursor, param in ((after_id, "after_id"), (before_id, "before_id")):
        if cursor is not None and cursor not in ids:
            raise _fail(f"no model with id {cursor!r}", param)
    if before_id is not None:
        end = ids.index(before_id)
        start = max(0, end - size)
        has_more = start > 0
    else:
        start = ids.index(after_id) + 1 if after_id is not None else 0
        end = min(len(infos), start + size)
        has_more = end < len(infos)
    data = infos[start:end]
    return {"data": data, "has_more": has_more, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}


# ---- errors ----------------------------------------------------------------------------------------------

_ERROR_TYPES: dict[ErrorKind, tuple[str, int | None]] = {
    ErrorKind.INVALID_REQUEST: ("invalid_request_error", None),
    ErrorKind.AUTHENTICATION: ("authentication_error", 401),
    ErrorKind.PERMISSION: ("permission_error", 403),
    ErrorKind.NOT_FOUND: ("not_found_error", 404),
    ErrorKind.REQUEST_TOO_LARGE: ("request_too_large", 413),
    ErrorKind.RATE_LIMIT: ("rate_limit_error", 429),
    ErrorKind.OVERLOADED: ("overloaded_error", 529),
    ErrorKind.UPSTREAM: ("api_error", None),
    ErrorKind.TIMEOUT: ("timeout_error", 504),
    ErrorKind.SERVER: ("api_error", 500),
}


def encode_error(error: GatewayError) -> tuple[int, dict[str, Any]]:
    """Status and Anthropic error envelope (Anthropic's types: overloaded is its 529, a timeout 504
    `timeout_error`, 402 `billing_error`); other kinds keep their status."""
    error_type, fixed_status = _ERROR_TYPES.get(error.kind, ("api_error", None))
    status = fixed_status or error.status
    if status == 402:  # an exhausted plan or credit balance
        return 402, {"type": "error", "error": {"type": "billing_error", "message": error.message}}
    if error.kind is ErrorKind.INVALID_REQUEST and not 400 <= status < 500:
        status = 400
    return status, {"type": "error", "error": {"type": error_type, "message": error.message}}
