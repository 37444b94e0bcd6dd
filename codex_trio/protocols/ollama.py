"""Ollama API adapter (the separate Ollama listener, default 127.0.0.1:11434).

Requests: `POST /api/chat` and `POST /api/generate` become a `Turn`; the other Ollama endpoints the
gateway answers itself (`/api/version`, `/api/tags`, `/api/show`, `/api/ps`, `/api/pull`) are pure functions
of the model list here.

Replies: Ollama streams NDJSON (one JSON object per line, `done:false` chunks, then one `done:true` line with
`done_reason`, token counts and durations in nanoseconds) and answers `stream:false` with the same final
object carrying the whole message. Tool calls carry `arguments` as a JSON object and, unlike OpenAI, clients
send no ids back: ids are synthesised from the position of each call in the history, so the same history
always gives the same ids (prompt caching) and a `role:"tool"` message maps to its call by name and order.

Sans-IO: timestamps and durations are passed in by the route (`now_iso=`, `timings=`); nothing here reads a
clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

import orjson

from ..errors import ErrorKind, GatewayError, invalid_request, not_found
from ..turn import Turn
from ..upstream.events import (
    Completed,
    Failed,
    NormalizedEvent,
    OutputItemDone,
    ReasoningDelta,
    TextDelta,
    ToolCallDone,
    Usage,
)
from .failures import premature_close
from .meta import ResponseMeta
from .stops import StopScanner

NDJSON_CONTENT_TYPE = "application/x-ndjson"
DEFAULT_VERSION = "0.13.5"  # codex --oss refuses an Ollama older than 0.13.4

THINK_LEVELS = ("low", "medium", "high", "xhigh")
SCHEMA_FORMAT_NAME = "ollama_schema"
# An assistant tool call the client never answered would make the backend reject the whole history
# ("No tool output found for function call ..."); the gateway answers it with this text instead.
MISSING_TOOL_RESULT = "(no tool result was provided)"


# ---- small helpers -------------------------------------------------------------------------------------


def iso_timestamp(unix_seconds: float) -> str:
    """Ollama's `created_at` format: RFC 3339 UTC with microseconds, e.g. 2026-11-22T04:05:53.123456Z."""
    return datetime.fromtimestamp(unix_seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Timings:
    """Durations (nanoseconds) the route measured for the `done` line."""

    total_ns: int = 0  # request received -> reply finished
    load_ns: int = 0  # request received -> upstream accepted the request
    prompt_eval_ns: int = 0  # upstream accepted -> first token
    eval_ns: int = 0  # first token -> reply finished

    @classmethod
    def from_marks(cls, start: float, accepted: float, first_token: float | None, end: float) -> "Timings":
        """Durations from four monotonic clock readings in seconds (`first_token` None when none came)."""
        first = end if first_token is None else first_token

        def ns(seconds: float) -> int:
            return max(0, round(seconds * 1e9))

        return cls(ns(end - start), ns(accepted - start), ns(first - accepted), ns(end - first))


def _dumps_line(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj) + b"\n"


def _loads_object(body: bytes) -> dict[str, Any]:
    if not body or not body.strip():
        raise invalid_request("missing request body")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid_request(f"invalid JSON body: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise invalid_request("request body must be a JSON object", code="invalid_json")
    return data


def _model_field(data: dict[str, Any], *, legacy_name: bool = False) -> str:
    model = data.get("model")
    if legacy_name and (model is None or model == ""):
        model = data.get("name")  # /api/show and /api/pull still accept the pre-0.5 `name`
    if not isinstance(model, str) or not model.strip():
        raise invalid_request("model is required", param="model")
    return model.strip()


def _optional_bool(data: dict[str, Any], key: str, default: bool) -> bool:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid_request(f"{key} must be true or false", param=key)
    return value


def _optional_str(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid_request(f"{where} must be a string", param=where)
    return value


# ---- images --------------------------------------------------------------------------------------------

_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def _sniff_image(raw: bytes) -> str | None:
    for magic, mime in _IMAGE_MAGIC:
        if raw.startswith(magic):
            return mime
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    return None


def _image_part(value: Any, where: str) -> dict[str, Any]:
    """An Ollama image (bare base64, as every Ollama client sends it) as an `input_image` data URI."""
    if not isinstance(value, str) or not value:
        raise invalid_request(f"{where} must be a base64-encoded image", param=where)
    if value.startswith("data:image/"):  # some OpenAI-minded clients send a data URI; keep it
        return {"type": "input_image", "image_url": value}
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_request(f"{where} is not valid base64", param=where) from None
    mime = _sniff_image(raw)
    if mime is None:
        raise invalid_request(f"{where} is not a PNG, JPEG, WebP or GIF image", param=where)
    return {"type": "input_image", "image_url": f"data:{mime};base64,{value}"}


def _image_parts(images: Any, where: str) -> list[dict[str, Any]]:
    if images is None:
        return []
    if not isinstance(images, list):
        raise invalid_request(f"{where} must be a list of base64 images", param=where)
    return [_image_part(image, f"{where}[{i}]") for i, image in enumerate(images)]


def _user_message(text: str, images: list[dict[str, Any]]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if text or not images:
        content.append({"type": "input_text", "text": text})
    content.extend(images)
    return {"type": "message", "role": "user", "content": content}


def _assistant_message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}


# ---- request options shared by /api/chat and /api/generate ---------------------------------------------


def _apply_think(data: dict[str, Any], turn: Turn) -> None:
    """`think`: false hides thinking; true / a level shows it; a level also sets the reasoning effort."""
    think = data.get("think")
    if think is None:
        return
    if isinstance(think, str) and think.lower() in ("true", "false"):
        think = think.lower() == "true"
    if think is False:
        # Hidden, and as little of it as the model allows: the route picks the weakest effort once the model
        # is resolved (an effort suffix on the model name still wins).
        turn.expose_reasoning = False
        turn.options["think"] = False
        return
    if think is True:
        # No level given: the route fills in the model's default effort once the model is resolved (so an
        # effort suffix on the model name still wins), and the summary is asked for so thinking shows.
        turn.expose_reasoning = True
        turn.options["think"] = True
        return
    if isinstance(think, str) and think.lower() in THINK_LEVELS:
        effort = think.lower()
        turn.expose_reasoning = True
        turn.reasoning_effort = effort
        turn.request["reasoning"] = {"effort": effort, "summary": "auto"}
        return
    raise invalid_request('think must be true, false, "low", "medium", "high" or "xhigh"', param="think")


def _apply_format(data: dict[str, Any], turn: Turn) -> None:
    fmt = data.get("format")
    if fmt is None or fmt == "":
        return
    if fmt == "json":
        turn.request["text"] = {"format": {"type": "json_object"}}
        return
    if isinstance(fmt, dict):
        # Not strict: strict mode makes the backend reject ordinary schemas (optional properties, no
        # additionalProperties:false), and Ollama's own `format` never implied it.
        turn.request["text"] = {"format": {"type": "json_schema", "name": SCHEMA_FORMAT_NAME,
                                           "schema": fmt, "strict": False}}
        return
    raise invalid_request('format must be "json" or a JSON schema object', param="format")


def _apply_options(data: dict[str, Any], turn: Turn) -> None:
    """`options`: only `stop` has an effect; sampling and context options have no Codex equivalent."""
    options = data.get("options")
    if options is None:
        return
    if not isinstance(options, dict):
        raise invalid_request("options must be an object", param="options")
    stop = options.get("stop")
    if stop is None:
        return
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise invalid_request("options.stop must be a string or a list of strings", param="options.stop")
    turn.stop_sequences = [s for s in stop if s]


def _function_tool(tool: Any, where: str) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise invalid_request(f"{where} must be an object", param=where)
    if tool.get("type") not in (None, "function"):
        raise invalid_request(f"{where}.type must be \"function\"", param=where)
    function = tool.get("function")
    if not isinstance(function, dict):
        raise invalid_request(f"{where}.function must be an object", param=where)
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise invalid_request(f"{where}.function.name is required", param=where)
    out: dict[str, Any] = {"type": "function", "name": name}
    description = function.get("description")
    if isinstance(description, str) and description:
        out["description"] = description
    parameters = function.get("parameters")
    if parameters is not None:
        if not isinstance(parameters, dict):
            raise invalid_request(f"{where}.function.parameters must be an object", param=where)
        if parameters.get("type") == "object" and "properties" not in parameters:
            parameters = {**parameters, "properties": {}}  # the backend rejects objects without properties
        out["parameters"] = parameters
    out["strict"] = False
    return out


# ---- POST /api/chat ------------------------------------------------------------------------------------


@dataclass
class _History:
    """Builds the Codex input from Ollama messages, pairing tool results with the calls they answer."""

    input: list[dict[str, Any]] = field(default_factory=list)
    instructions: list[str] = field(default_factory=list)
    # Calls not answered yet, in order: (call_id, name).
    pending: list[tuple[str, str]] = field(default_factory=list)

    def close_pending_calls(self) -> None:
        for call_id, _ in self.pending:
            self.input.append({"type": "function_call_output", "call_id": call_id, "output": MISSING_TOOL_RESULT})
        self.pending.clear()

    def add(self, index: int, message: Any) -> None:
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise invalid_request(f"{where} must be an object", param=where)
        role = message.get("role")
        if not isinstance(role, str):
            raise invalid_request(f"{where}.role is required", param=where)
        content = _optional_str(message.get("content"), f"{where}.content")
        if role == "tool":
            self._tool_result(message, content, where)
            return
        self.close_pending_calls()
        if role in ("system", "developer"):
            if content:
                self.instructions.append(content)
        elif role == "user":
            self.input.append(_user_message(content, _image_parts(message.get("images"), f"{where}.images")))
        elif role == "assistant":
            self._assistant(index, message, content, where)
        else:
            raise invalid_request(f'{where}.role must be "system", "user", "assistant" or "tool"', param=where)

    def _assistant(self, index: int, message: dict[str, Any], content: str, where: str) -> None:
        calls = message.get("tool_calls")
        if calls is None:
            calls = []
        if not isinstance(calls, list):
            raise invalid_request(f"{where}.tool_calls must be a list", param=where)
        if content or not calls:
            self.input.append(_assistant_message(content))
        for number, call in enumerate(calls):
            call_where = f"{where}.tool_calls[{number}]"
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                raise invalid_request(f"{call_where}.function must be an object", param=call_where)
            name = function.get("name")
            if not isinstance(name, str) or not name:
                raise invalid_request(f"{call_where}.function.name is required", param=call_where)
            arguments = function.get("arguments")
            if arguments is None:
                arguments = {}
            if isinstance(arguments, str):  # tolerated: an OpenAI-style JSON string
                arguments_json = arguments
            elif isinstance(arguments, dict):
                arguments_json = orjson.dumps(arguments).decode()
            else:
                raise invalid_request(f"{call_where}.function.arguments must be an object", param=call_where)
            given_id = call.get("id")
            call_id = given_id if isinstance(given_id, str) and given_id else synthetic_call_id(index, number)
            self.input.append({"type": "function_call", "call_id": call_id, "name": name,
                               "arguments": arguments_json})
            self.pending.append((call_id, name))

    def _tool_result(self, message: dict[str, Any], content: str, where: str) -> None:
        call_id = self._answered_call(message)
        if call_id is None:
            # A result for a call that is not in the history (e.g. trimmed by the client): keep the information
            # as text, since the backend rejects outputs without their call.
            name = message.get("tool_name") or message.get("name")
            label = f"Result of tool {name}" if isinstance(name, str) and name else "Tool result"
            self.input.append(_user_message(f"{label}:\n{content}", []))
            return
        self.input.append({"type": "function_call_output", "call_id": call_id, "output": content})

    def _answered_call(self, message: dict[str, Any]) -> str | None:
        """Which pending call a tool message answers: its `tool_call_id`, else the first one with its name,
        else the first one still open (clients that send neither id nor name answer in order)."""
        if not self.pending:
            return None
        wanted_id = message.get("tool_call_id")
        name = message.get("tool_name") or message.get("name")
        position = next((i for i, (cid, _) in enumerate(self.pending) if cid == wanted_id), None)
        if position is None and isinstance(name, str):
            position = next((i for i, (_, n) in enumerate(self.pending) if n == name), None)
        if position is None:
            position = 0
        call_id, _ = self.pending.pop(position)
        return call_id


def synthetic_call_id(message_index: int, call_index: int) -> str:
    """The id of an Ollama tool call that came without one: its position in the history, so it is stable."""
    return f"call_{message_index}_{call_index}"


def parse_chat(body: bytes) -> Turn:
    """`POST /api/chat` body -> Turn. Raises `GatewayError` (400) on bad input."""
    data = _loads_object(body)
    model = _model_field(data)
    messages = data.get("messages")
    if messages is None:
        messages = []
    if not isinstance(messages, list):
        raise invalid_request("messages must be a list", param="messages")
    history = _History()
    for index, message in enumerate(messages):
        history.add(index, message)
    history.close_pending_calls()

    tools = data.get("tools")
    if tools is None:
        tools = []
    if not isinstance(tools, list):
        raise invalid_request("tools must be a list", param="tools")

    request: dict[str, Any] = {"model": model, "input": history.input,
                               "tools": [_function_tool(t, f"tools[{i}]") for i, t in enumerate(tools)]}
    if history.instructions:
        request["instructions"] = "\n\n".join(history.instructions)
    turn = Turn(request=request, requested_model=model, stream=_optional_bool(data, "stream", True),
                options={"endpoint": "chat"})
    if not messages:
        # Ollama clients send an empty chat to preload a model; the route answers with `load_reply`.
        turn.options["load_only"] = True
    elif not history.input:
        history.input.append(_user_message("", []))  # only system messages: the backend needs some input
    _apply_think(data, turn)
    _apply_format(data, turn)
    _apply_options(data, turn)
    return turn


# ---- POST /api/generate --------------------------------------------------------------------------------


def parse_generate(body: bytes) -> Turn:
    """`POST /api/generate` body -> Turn. `raw`, `template`, `context`, `suffix`, `keep_alive` are accepted and
    have no effect (there is no prompt template to bypass and no token context to resume)."""
    data = _loads_object(body)
    model = _model_field(data)
    prompt = _optional_str(data.get("prompt"), "prompt")
    system = _optional_str(data.get("system"), "system")
    images = _image_parts(data.get("images"), "images")
    request: dict[str, Any] = {"model": model, "input": [], "tools": []}
    if prompt or images:
        request["input"].append(_user_message(prompt, images))
    if system:
        request["instructions"] = system
    turn = Turn(request=request, requested_model=model, stream=_optional_bool(data, "stream", True),
                options={"endpoint": "generate"})
    if not request["input"]:
        turn.options["load_only"] = True  # an empty prompt preloads the model
    _apply_think(data, turn)
    _apply_format(data, turn)
    _apply_options(data, turn)
    return turn


def parse_request(body: bytes, *, endpoint: str = "chat") -> Turn:
    """Adapter-shaped entry point: `endpoint` is "chat" (/api/chat) or "generate" (/api/generate)."""
    return parse_generate(body) if endpoint == "generate" else parse_chat(body)


# ---- replies -------------------------------------------------------------------------------------------


def _arguments_object(arguments: str) -> dict[str, Any]:
    """Ollama carries tool arguments as a JSON object; the backend sends a JSON string.

    Anything that is not a JSON object (empty, truncated) becomes {}: Ollama clients type `arguments` as a map
    and would fail on the whole reply, while a call without arguments reaches the tool, which can say so.
    """
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _message_text(item: dict[str, Any]) -> str:
    """The text of a finished assistant message item (for messages that arrived without deltas)."""
    if item.get("type") != "message":
        return ""
    parts = item.get("content") or []
    return "".join(p.get("text") or "" for p in parts if isinstance(p, dict) and p.get("type") == "output_text")


def _done_reason(completed: Completed | None, stopped: bool) -> str:
    if stopped or completed is None:
        return "stop"
    if completed.incomplete_reason == "max_output_tokens":
        return "length"
    return "stop"


def _usage_fields(usage: Usage, timings: Timings) -> dict[str, Any]:
    return {
        "total_duration": timings.total_ns,
        "load_duration": timings.load_ns,
        "prompt_eval_count": usage.input_tokens,
        "prompt_eval_duration": timings.prompt_eval_ns,
        "eval_count": usage.output_tokens,
        "eval_duration": timings.eval_ns,
    }


def _upstream_error(failed: Failed) -> GatewayError:
    return GatewayError(502, failed.message or "upstream request failed", ErrorKind.UPSTREAM, code=failed.code)


class StreamEncoder:
    """NDJSON for a streaming `/api/chat` or `/api/generate` (which one comes from `turn.options["endpoint"]`).

    `feed(event, now_iso=..., timings=...)` gives the lines for one event; pass the current time as
    `now_iso` (see `iso_timestamp`) and, at least with the terminal event, the measured `timings`.
    After the `done` line or an error line every call returns b"".
    """

    def __init__(self, turn: Turn, meta: ResponseMeta) -> None:
        self.chat = turn.options.get("endpoint", "chat") != "generate"
        self.model = meta.model
        self.expose_reasoning = turn.expose_reasoning
        self.created_at = iso_timestamp(meta.created)
        self.scanner = StopScanner(turn.stop_sequences)
        self.tool_calls = 0
        self.finished = False
        self.streamed_items: set[str] = set()  # message items whose text came as deltas

    @property
    def stopped(self) -> bool:
        """True once a stop sequence ended the text; the route may stop reading upstream and call finish()."""
        return self.scanner.hit

    def _line(self, *, content: str = "", thinking: str | None = None,
              tool_calls: list[dict[str, Any]] | None = None) -> bytes:
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if thinking is not None:
                message["thinking"] = thinking
            if tool_calls is not None:
                message["tool_calls"] = tool_calls
            return _dumps_line({"model": self.model, "created_at": self.created_at, "message": message,
                                "done": False})
        obj: dict[str, Any] = {"model": self.model, "created_at": self.created_at, "response": content}
        if thinking is not None:
            obj["thinking"] = thinking
        obj["done"] = False
        return _dumps_line(obj)

    def _done(self, completed: Completed | None, timings: Timings | None) -> bytes:
        self.finished = True
        tail = self.scanner.flush()
        out = self._line(content=tail) if tail else b""
        final: dict[str, Any] = {"model": self.model, "created_at": self.created_at}
        if self.chat:
            final["message"] = {"role": "assistant", "content": ""}
        else:
            final["response"] = ""
        final["done_reason"] = _done_reason(completed, self.scanner.hit)
        final["done"] = True
        final.update(_usage_fields(completed.usage if completed else Usage(), timings or Timings()))
        return out + _dumps_line(final)

    def feed(self, event: NormalizedEvent, *, now_iso: str | None = None,
             timings: Timings | None = None) -> bytes:
        if self.finished:
            return b""
        if now_iso is not None:
            self.created_at = now_iso
        if isinstance(event, TextDelta):
            self.streamed_items.add(event.item_id)
            text = self.scanner.feed(event.delta)
            return self._line(content=text) if text else b""
        if isinstance(event, OutputItemDone):
            # The backend may send a message only as a finished item, without deltas.
            if event.item.get("id") in self.streamed_items:
                return b""
            text = self.scanner.feed(_message_text(event.item))
            return self._line(content=text) if text else b""
        if isinstance(event, ReasoningDelta):
            if not self.expose_reasoning or self.scanner.hit:
                return b""
            return self._line(thinking=event.delta)
        if isinstance(event, ToolCallDone):
            if not self.chat or self.scanner.hit:
                return b""
            # Real Ollama sends each parsed call in its own done:false chunk, text held back so far first.
            tail = self.scanner.flush()
            call = _tool_call(event, self.tool_calls)
            self.tool_calls += 1
            return (self._line(content=tail) if tail else b"") + self._line(tool_calls=[call])
        if isinstance(event, Completed):
            return self._done(event, timings)
        if isinstance(event, Failed):
            return self.fail(_upstream_error(event))
        return b""

    def heartbeat(self) -> bytes:
        return b""  # NDJSON has no comment syntax; Ollama clients wait without one

    def fail(self, error: GatewayError) -> bytes:
        if self.finished:
            return b""
        self.finished = True
        return _dumps_line({"error": error.message})

    def finish(self, *, now_iso: str | None = None, timings: Timings | None = None) -> bytes:
        """End of the upstream stream: b"" after the done line; the done line if a stop sequence ended the
        text before the backend finished; an error line if the backend went away without finishing."""
        if self.finished:
            return b""
        if now_iso is not None:
            self.created_at = now_iso
        if self.scanner.hit:
            return self._done(None, timings)
        return self.fail(premature_close())


def _tool_call(event: ToolCallDone, index: int) -> dict[str, Any]:
    return {"id": event.call_id,
            "function": {"index": index, "name": event.name, "arguments": _arguments_object(event.arguments)}}


def encode_response(turn: Turn, events: Iterable[NormalizedEvent], meta: ResponseMeta, *,
                    now_iso: str | None = None, timings: Timings | None = None) -> dict[str, Any]:
    """The `stream:false` reply from the collected events. Raises `GatewayError` if the backend failed."""
    chat = turn.options.get("endpoint", "chat") != "generate"
    scanner = StopScanner(turn.stop_sequences)
    text: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    completed: Completed | None = None
    streamed_items: set[str] = set()
    for event in events:
        if isinstance(event, TextDelta):
            streamed_items.add(event.item_id)
            text.append(scanner.feed(event.delta))
        elif isinstance(event, OutputItemDone) and event.item.get("id") not in streamed_items:
            text.append(scanner.feed(_message_text(event.item)))
        elif isinstance(event, ReasoningDelta) and turn.expose_reasoning and not scanner.hit:
            thinking.append(event.delta)
        elif isinstance(event, ToolCallDone) and chat and not scanner.hit:
            calls.append(_tool_call(event, len(calls)))
        elif isinstance(event, Completed):
            completed = event
            break
        elif isinstance(event, Failed):
            raise _upstream_error(event)
    if completed is None and not scanner.hit:
        raise premature_close()
    text.append(scanner.flush())
    body: dict[str, Any] = {"model": meta.model, "created_at": now_iso or iso_timestamp(meta.created)}
    if chat:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(text)}
        if thinking:
            message["thinking"] = "".join(thinking)
        if calls:
            message["tool_calls"] = calls
        body["message"] = message
    else:
        body["response"] = "".join(text)
        if thinking:
            body["thinking"] = "".join(thinking)
    body["done_reason"] = _done_reason(completed, scanner.hit)
    body["done"] = True
    body.update(_usage_fields(completed.usage if completed else Usage(), timings or Timings()))
    return body


def load_reply(turn: Turn, meta: ResponseMeta, *, now_iso: str | None = None) -> dict[str, Any]:
    """Ollama's answer to an empty chat / prompt (`turn.options["load_only"]`): the model is "loaded"."""
    body: dict[str, Any] = {"model": meta.model, "created_at": now_iso or iso_timestamp(meta.created)}
    if turn.options.get("endpoint", "chat") == "generate":
        body["response"] = ""
    else:
        body["message"] = {"role": "assistant", "content": ""}
    body["done_reason"] = "load"
    body["done"] = True
    return body


def encode_error(error: GatewayError) -> tuple[int, dict[str, Any]]:
    """Ollama's error envelope is a bare `{"error": "<message>"}`."""
    return error.status, {"error": error.message}


# ---- model endpoints -----------------------------------------------------------------------------------

_FAMILY_PREFIXES = ("gpt-5.6", "gpt-5.5", "gpt-5.4", "gpt-5.3", "gpt-5.2", "gpt-5.1", "gpt-oss", "codex")


@dataclass(frozen=True, slots=True)
class OllamaModel:
    """What the Ollama endpoints say about one model the gateway serves (built by the route from the catalog)."""

    name: str  # the name clients use, e.g. "gpt-5.4"
    context_length: int = 131072
    vision: bool = True  # the model accepts image input
    reasoning_efforts: tuple[str, ...] = ()  # supported efforts; non-empty means "thinking" capable
    default_effort: str | None = None
    display_name: str | None = None

    @property
    def family(self) -> str:
        lowered = self.name.lower()
        for prefix in _FAMILY_PREFIXES:
            if lowered.startswith(prefix):
                return prefix
        for separator in (":", "/", "-"):
            lowered = lowered.split(separator, 1)[0]
        return lowered or "codex"

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()

    def details(self) -> dict[str, Any]:
        return {"parent_model": "", "format": "codex", "family": self.family, "families": [self.family],
                "parameter_size": "unknown", "quantization_level": "unknown"}


def find_model(models: Iterable[OllamaModel], name: str) -> OllamaModel:
    """The model called `name`; Ollama's implicit `:latest` tag is accepted. Raises 404 otherwise."""
    wanted = name.strip()
    base = wanted[: -len(":latest")] if wanted.endswith(":latest") else wanted
    for model in models:
        if model.name in (wanted, base):
            return model
    raise not_found(f"model '{wanted}' not found")


def version_body(version: str = DEFAULT_VERSION) -> dict[str, Any]:
    """`GET /api/version`."""
    return {"version": version}


def tags_body(models: Iterable[OllamaModel], *, modified_at: str) -> dict[str, Any]:
    """`GET /api/tags`. `modified_at`: an ISO time (e.g. when the gateway started), see `iso_timestamp`."""
    return {"models": [{"name": m.name, "model": m.name, "modified_at": modified_at, "size": 0,
                        "digest": m.digest, "details": m.details()} for m in models]}


def show_body(body: bytes, models: Iterable[OllamaModel], *, modified_at: str,
              disable_vision: bool = False) -> dict[str, Any]:
    """`POST /api/show` with `{"model": …}` or the legacy `{"name": …}`. Raises 400 / 404 `GatewayError`."""
    model = find_model(models, _model_field(_loads_object(body), legacy_name=True))
    capabilities = ["completion", "tools"]
    if model.reasoning_efforts:
        capabilities.append("thinking")
    if model.vision and not disable_vision:
        capabilities.append("vision")
    parameters = f"num_ctx {model.context_length}"
    if model.reasoning_efforts:
        parameters += f"\nreasoning {model.default_effort or 'medium'}"
    family = model.family
    return {
        "license": "Served by codex-trio from a ChatGPT subscription",
        "modelfile": f"FROM {model.name}\n",
        "parameters": parameters,
        "template": "{{ .Prompt }}",
        "details": model.details(),
        "model_info": {
            "general.architecture": family,
            "general.basename": model.name,
            f"{family}.context_length": model.context_length,
            "context_length": model.context_length,
            "display_name": model.display_name or model.name,
            "supported_reasoning_efforts": list(model.reasoning_efforts),
            "default_reasoning_effort": model.default_effort,
        },
        "capabilities": capabilities,
        "modified_at": modified_at,
    }


def ps_body(models: Iterable[OllamaModel], *, expires_at: str) -> dict[str, Any]:
    """`GET /api/ps`: the given models as "loaded" (nothing is ever unloaded; `expires_at` is an ISO time)."""
    return {"models": [{"name": m.name, "model": m.name, "size": 0, "digest": m.digest, "details": m.details(),
                        "expires_at": expires_at, "size_vram": 0, "context_length": m.context_length}
                       for m in models]}


_PULL_STEPS = ("pulling manifest", "verifying sha256 digest", "writing manifest", "success")


def pull_reply(body: bytes, models: Iterable[OllamaModel]) -> tuple[str, bytes]:
    """`POST /api/pull`: nothing to download, so a known model "pulls" at once.

    Returns (content type, body): NDJSON status lines when `stream` is true (the default), else one JSON
    object. An unknown model raises a 404 `GatewayError` (this gateway cannot fetch models).
    """
    data = _loads_object(body)
    name = _model_field(data, legacy_name=True)
    try:
        find_model(models, name)
    except GatewayError:
        raise not_found(f"model '{name}' not found; this gateway cannot pull models, "
                        "use one listed by /api/tags") from None
    if _optional_bool(data, "stream", True):
        return NDJSON_CONTENT_TYPE, b"".join(_dumps_line({"status": step}) for step in _PULL_STEPS)
    return "application/json", orjson.dumps({"status": "success"})
