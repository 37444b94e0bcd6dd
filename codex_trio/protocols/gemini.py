"""Gemini `generateContent` / `streamGenerateContent` ⇄ Codex Responses, sans-IO.

* `parse_request(model, body, stream, conversation_id=None) -> Turn` accepts camelCase and snake_case field
  names (google-genai and Gemini CLI send camelCase, litellm sends snake_case in places).
* `StreamEncoder(turn, meta, sse=True)` yields `GenerateContentResponse` chunks, framed either as SSE
  (`?alt=sse`: `data: <json>\\r\\n\\r\\n`) or as the JSON-array stream (`[`, `,`-separated objects, `]`).
  The last chunk always carries `finishReason` (Gemini CLI retries a stream that ends without one).
* `encode_response(turn, events, meta)` merges the same chunks into one response.
* `encode_error(err)` gives `{"error":{code,message,status}}` with Google's status names.
* `model_resource(info)` / `list_models(infos)` build `GET /v1beta/models[/{m}]` bodies;
  `split_model_action(tail)` splits the `{model}:{action}` path segment.

Reasoning round trip: like Gemini's own `thoughtSignature`, the encrypted upstream reasoning rides on the
next part of the reply as `thoughtSignature`; a part that comes back with one becomes a `reasoning` item again.
Gemini signatures are bytes (base64 in JSON; the SDKs re-encode them, possibly URL-safe), so the carrier
string is base64-wrapped and both alphabets are accepted back.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import orjson

from codex_trio.errors import ErrorKind, GatewayError, invalid_request
from codex_trio.protocols.codex_request import DEFAULT_INSTRUCTIONS, function_tool, structured_format
from codex_trio.protocols.failures import error_from_failed, premature_close
from codex_trio.protocols.json_body import load_json_object, parse_json_object
from codex_trio.protocols.meta import ResponseMeta
from codex_trio.protocols.reasoning import decode_reasoning_signature, effort_from_budget, encode_reasoning_signature
from codex_trio.protocols.schema import (OPT_TUPLE_SCHEMA, SUBSCHEMA_KEYS, SUBSCHEMA_LIST_KEYS, SUBSCHEMA_MAP_KEYS,
                                         restore_tuples)
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
    TextDelta,
    ToolCallDone,
)

GENERATION_METHODS = ["generateContent", "streamGenerateContent", "countTokens"]


def _get(obj: Mapping[str, Any], camel: str) -> Any:
    """A field under its camelCase or snake_case name (camelCase wins when both are present)."""
    if camel in obj:
        return obj[camel]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return obj.get(snake)


# additionalProperties too: Gemini schemas use it for map values
_SCHEMA_CHILDREN = (*SUBSCHEMA_KEYS, "additionalProperties", *SUBSCHEMA_LIST_KEYS)


def json_schema(schema: Any) -> Any:
    """Gemini's OpenAPI-style Schema (or a JSON schema written with its conventions) → plain JSON schema.

    Gemini accepts upper-case type names (`OBJECT`), `nullable`, and `propertyOrdering`; OpenAI-style
    backends know none of them. Returns a new object; the input is not modified.
    """
    if isinstance(schema, list):
        return [json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("propertyOrdering", "property_ordering", "nullable"):
            continue
        if key == "type":
            value = [v.lower() if isinstance(v, str) else v for v in value] if isinstance(value, list) else (
                value.lower() if isinstance(value, str) else value)
        elif key in SUBSCHEMA_MAP_KEYS and isinstance(value, dict):
            value = {k: json_schema(v) for k, v in value.items()}
        elif key in _SCHEMA_CHILDREN:
            value = json_schema(value)
        elif key == "any_of":
            key, value = "anyOf", json_schema(value)
        out[key] = value
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


# ---- reasoning carrier ---------------------------------------------------------------------------------


def thought_signature(item_id: str, encrypted_content: str) -> str:
    return base64.b64encode(encode_reasoning_signature(item_id, encrypted_content).encode()).decode()


def reasoning_from_thought_signature(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, str) or not value:
        return None
    standard = value.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return decode_reasoning_signature(raw)


# ---- request -------------------------------------------------------------------------------------------

_THINKING_LEVELS = {"MINIMAL": "minimal", "LOW": "low", "MEDIUM": "medium", "HIGH": "high"}


class _Contents:
    """Gemini contents → Codex input items. Call ids are the client's when it sends them, otherwise one
    counter across the whole conversation, and responses without id match the oldest open call by name."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self._parts: list[dict[str, Any]] = []
        self._role = "user"
        self._counter = 0
        self._open_calls: list[tuple[str, str]] = []  # (name, call id), oldest first

    def _flush(self) -> None:
        if self._parts:
            self.items.append({"type": "message", "role": self._role, "content": self._parts})
            self._parts = []

    def _new_id(self) -> str:
        call_id = f"fc_{self._counter}"
        self._counter += 1
        return call_id

    def add(self, content: Any, param: str) -> None:
        _expect(content, dict, param, "an object")
        role = content.get("role") or "user"
        if role not in ("user", "model", "function"):
            raise _fail("role must be 'user' or 'model'", f"{param}.role")
        assistant = role == "model"
        self._role = "assistant" if assistant else "user"
        parts = content.get("parts")
        if parts is None:
            return
        _expect(parts, list, f"{param}.parts", "an array")
        for i, part in enumerate(parts):
            self._add_part(part, assistant, f"{param}.parts[{i}]")
        self._flush()

    def _add_part(self, part: Any, assistant: bool, param: str) -> None:
        _expect(part, dict, param, "an object")
        reasoning = reasoning_from_thought_signature(_get(part, "thoughtSignature"))
        if reasoning is not None and assistant:
            self._flush()
            self.items.append(reasoning)
        if part.get("thought") is True:
            return  # thought summaries are display text; the reasoning itself travels in the signature
        text = part.get("text")
        inline = _get(part, "inlineData")
        file_data = _get(part, "fileData")
        call = _get(part, "functionCall")
        response = _get(part, "functionResponse")
        if text is not None:
            _expect(text, str, f"{param}.text", "a string")
            if text or not assistant:
                self._parts.append({"type": "output_text" if assistant else "input_text", "text": text})
        elif inline is not None:
            _expect(inline, dict, f"{param}.inlineData", "an object")
            mime = _expect(_get(inline, "mimeType"), str, f"{param}.inlineData.mimeType", "a string")
            data = _standard_base64(_expect(inline.get("data"), str, f"{param}.inlineData.data", "a string"))
            if not assistant:  # the backend takes images and files only as input
                url = f"data:{mime};base64,{data}"
                self._parts.append({"type": "input_image", "image_url": url} if mime.startswith("image/")
                                   else {"type": "input_file", "filename": "file", "file_data": url})
        elif file_data is not None:
            _expect(file_data, dict, f"{param}.fileData", "an object")
            uri = _expect(_get(file_data, "fileUri"), str, f"{param}.fileData.fileUri", "a string")
            mime = _get(file_data, "mimeType") or ""
            if not assistant:
                self._parts.append({"type": "input_image", "image_url": uri} if str(mime).startswith("image/")
                                   else {"type": "input_file", "file_url": uri})
        elif call is not None:
            self._flush()
            _expect(call, dict, f"{param}.functionCall", "an object")
            name = _expect(call.get("name"), str, f"{param}.functionCall.name", "a string")
            call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else self._new_id()
            args = call.get("args") if call.get("args") is not None else {}
            self._open_calls.append((name, call_id))
            self.items.append({"type": "function_call", "call_id": call_id, "name": name,
                               "arguments": orjson.dumps(args).decode()})
        elif response is not None:
            self._flush()
            _expect(response, dict, f"{param}.functionResponse", "an object")
            name = _expect(response.get("name"), str, f"{param}.functionResponse.name", "a string")
            call_id = response.get("id") if isinstance(response.get("id"), str) and response.get("id") else None
            if call_id is None:
                call_id = next((cid for n, cid in self._open_calls if n == name), None) or self._new_id()
            self._open_calls = [(n, cid) for n, cid in self._open_calls if cid != call_id]
            result = response.get("response") if response.get("response") is not None else {}
            self.items.append({"type": "function_call_output", "call_id": call_id,
                               "output": orjson.dumps(result).decode()})
        # executableCode / codeExecutionResult / videoMetadata parts have no Codex input equivalent.


def _standard_base64(data: str) -> str:
    """google-genai sends bytes URL-safe encoded (`-`, `_`); a data URL needs the standard alphabet, padded."""
    data = data.replace("-", "+").replace("_", "/")
    return data + "=" * (-len(data) % 4) if not data.endswith("=") else data


def _system_text(system: Any) -> str:
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    _expect(system, dict, "systemInstruction", "an object")
    parts = system.get("parts") or []
    _expect(parts, list, "systemInstruction.parts", "an array")
    texts = []
    for i, part in enumerate(parts):
        _expect(part, dict, f"systemInstruction.parts[{i}]", "an object")
        if isinstance(part.get("text"), str) and part.get("thought") is not True:
            texts.append(part["text"])
    return "\n".join(texts)


def _tools(tools: Any) -> list[dict[str, Any]]:
    if tools is None:
        return []
    _expect(tools, list, "tools", "an array")
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        _expect(tool, dict, f"tools[{i}]", "an object")
        declarations = _get(tool, "functionDeclarations")
        if declarations is not None:
            _expect(declarations, list, f"tools[{i}].functionDeclarations", "an array")
            for j, decl in enumerate(declarations):
                param = f"tools[{i}].functionDeclarations[{j}]"
                _expect(decl, dict, param, "an object")
                name = _expect(decl.get("name"), str, f"{param}.name", "a string")
                schema = _get(decl, "parametersJsonSchema")
                if schema is None:
                    schema = decl.get("parameters")
                if schema is not None:
                    _expect(schema, dict, f"{param}.parameters", "an object")
                out.append(function_tool(name, decl.get("description"), json_schema(schema)))
        if (_get(tool, "googleSearch") is not None or _get(tool, "googleSearchRetrieval") is not None) and not any(
                t.get("type") == "web_search" for t in out):
            out.append({"type": "web_search"})
    return out


def _tool_choice(config: Any, tools: list[dict[str, Any]]) -> tuple[Any, list[dict[str, Any]]]:
    if config is None:
        return "auto", tools
    _expect(config, dict, "toolConfig", "an object")
    calling = _get(config, "functionCallingConfig")
    if calling is None:
        return "auto", tools
    _expect(calling, dict, "toolConfig.functionCallingConfig", "an object")
    mode = calling.get("mode") or "AUTO"
    choice = {"AUTO": "auto", "VALIDATED": "auto", "ANY": "required", "NONE": "none",
              "MODE_UNSPECIFIED": "auto"}.get(str(mode).upper())
    if choice is None:
        raise _fail("must be AUTO, ANY, NONE or VALIDATED", "toolConfig.functionCallingConfig.mode")
    allowed = _get(calling, "allowedFunctionNames")
    if allowed:
        param = "toolConfig.functionCallingConfig.allowedFunctionNames"
        _expect(allowed, list, param, "an array of strings")
        names = {_expect(name, str, f"{param}[{i}]", "a string") for i, name in enumerate(allowed)}
        # The allowed set narrows what the model may call: offer only those functions.
        tools = [t for t in tools if t.get("type") != "function" or t.get("name") in names]
        if choice == "required" and len(names) == 1:
            choice = {"type": "function", "name": next(iter(names))}
    return choice, tools


ACTIONS = ("generateContent", "streamGenerateContent", "countTokens")


def split_model_action(name: str) -> tuple[str, str]:
    """`models/{model}:{action}` path tail → (model, action); the model may itself contain ':'."""
    model, sep, action = name.removeprefix("models/").rpartition(":")
    if not sep or not model:
        raise invalid_request(f"Expected 'models/{{model}}:{{action}}', got {name!r}.", param="model")
    if action not in ACTIONS:
        raise invalid_request(f"Unknown action {action!r}; expected one of {', '.join(ACTIONS)}.", param="action")
    return model, action


def parse_request(model: str, body: bytes, stream: bool, *, conversation_id: str | None = None) -> Turn:
    """A generateContent body for `models/{model}` → Turn."""
    data = load_json_object(body)
    model = model.removeprefix("models/")
    if not model:
        raise _fail("is required", "model")
    contents = data.get("contents")
    if not isinstance(contents, list) or not contents:
        raise _fail("is required and must be a non-empty array", "contents")
    builder = _Contents()
    for i, content in enumerate(contents):
        builder.add(content, f"contents[{i}]")
    items = builder.items or [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": ""}]}]

    tools = _tools(data.get("tools"))
    tool_choice, tools = _tool_choice(_get(data, "toolConfig"), tools)
    request: dict[str, Any] = {"model": model, "instructions": _system_text(_get(data, "systemInstruction")).strip()
                               or DEFAULT_INSTRUCTIONS, "input": items, "tools": tools, "tool_choice": tool_choice,
                               "parallel_tool_calls": True}

    config = _get(data, "generationConfig")
    if config is None:
        config = {}
    _expect(config, dict, "generationConfig", "an object")
    candidates = _get(config, "candidateCount")
    if candidates is not None and (not isinstance(candidates, int) or isinstance(candidates, bool) or candidates != 1):
        raise _fail("only 1 candidate is supported", "generationConfig.candidateCount")
    options: dict[str, Any] = {}
    text_format = _text_format(config, options)
    if text_format is not None:
        request["text"] = {"format": text_format}

    effort, expose = None, False
    thinking = _get(config, "thinkingConfig")
    if thinking is not None:
        _expect(thinking, dict, "generationConfig.thinkingConfig", "an object")
        budget = _get(thinking, "thinkingBudget")
        if budget is not None:
            effort = effort_from_budget(_expect(budget, int, "generationConfig.thinkingConfig.thinkingBudget",
                                                "an integer"))
        level = _get(thinking, "thinkingLevel")
        if level is not None:
            effort = _THINKING_LEVELS.get(str(level).upper())
            if effort is None:
                raise _fail("must be MINIMAL, LOW, MEDIUM or HIGH", "generationConfig.thinkingConfig.thinkingLevel")
        expose = _get(thinking, "includeThoughts") is True
    request["reasoning"] = {"effort": effort, "summary": "auto"} if effort else {"summary": "auto"}

    stops = _get(config, "stopSequences") or []
    _expect(stops, list, "generationConfig.stopSequences", "an array of strings")
    for i, stop in enumerate(stops):
        _expect(stop, str, f"generationConfig.stopSequences[{i}]", "a string")
    max_tokens = _get(config, "maxOutputTokens")
    if max_tokens is not None:
        options["max_output_tokens"] = _expect(max_tokens, int, "generationConfig.maxOutputTokens", "an integer")
    return Turn(request=request, requested_model=model, stream=stream, conversation_id=conversation_id,
                reasoning_effort=effort, expose_reasoning=expose, stop_sequences=list(stops), options=options)


def _text_format(config: dict[str, Any], options: dict[str, Any]) -> dict[str, Any] | None:
    mime = _get(config, "responseMimeType")
    schema = _get(config, "responseJsonSchema")
    if schema is None:
        schema = config.get("_responseJsonSchema")
    if schema is None:
        schema = _get(config, "responseSchema")
    if mime in (None, "text/plain"):
        return None
    if mime != "application/json":
        raise _fail("only 'text/plain' and 'application/json' are supported", "generationConfig.responseMimeType")
    if not schema:
        return {"type": "json_object"}
    _expect(schema, dict, "generationConfig.responseSchema", "an object")
    return structured_format("response", json_schema(schema), options)


# ---- response ------------------------------------------------------------------------------------------

_FINISH = {"max_output_tokens": "MAX_TOKENS", "content_filter": "SAFETY"}


def _usage_metadata(completed: Completed) -> dict[str, int]:
    usage = completed.usage
    thoughts = min(usage.reasoning_tokens, usage.output_tokens)
    out = {"promptTokenCount": usage.input_tokens, "candidatesTokenCount": usage.output_tokens - thoughts,
           "totalTokenCount": usage.input_tokens + usage.output_tokens}
    if usage.cached_tokens:
        out["cachedContentTokenCount"] = usage.cached_tokens
    if thoughts:
        out["thoughtsTokenCount"] = thoughts
    return out


@dataclass
class _Chunks:
    """Normalized events → GenerateContentResponse chunks (dicts)."""

    turn: Turn
    meta: ResponseMeta
    finished: bool = False
    signature: str | None = None  # reasoning waiting to ride on the next part
    held_text: list[str] = field(default_factory=list)  # structured output waiting for `restore_tuples`
    stops: StopScanner = field(init=False)

    def __post_init__(self) -> None:
        self.stops = StopScanner(self.turn.stop_sequences)
        self.tuple_schema = self.turn.options.get(OPT_TUPLE_SCHEMA)

    def chunk(self, parts: list[dict[str, Any]], finish: str | None = None,
              usage: dict[str, int] | None = None) -> dict[str, Any]:
        if self.signature is not None and parts:
            parts[0]["thoughtSignature"], self.signature = self.signature, None
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if finish is not None:
            candidate["finishReason"] = finish
        candidate["index"] = 0
        out: dict[str, Any] = {"candidates": [candidate]}
        if usage is not None:
            out["usageMetadata"] = usage
        out["modelVersion"] = self.meta.model
        out["responseId"] = self.meta.id
        return out

    def feed(self, event: NormalizedEvent) -> list[dict[str, Any]]:
        if self.finished:
            return []
        stopped = self.stops.matched is not None
        if isinstance(event, TextDelta) and self.tuple_schema is not None:
            self.held_text.append(event.delta)  # tuples come back as objects: only the whole text can be mapped
            return []
        if isinstance(event, TextDelta):
            text = self.stops.feed(event.delta)
            return [self.chunk([{"text": text}])] if text else []
        if isinstance(event, ReasoningDelta) and self.turn.expose_reasoning and not stopped:
            return [self.chunk([{"text": event.delta, "thought": True}])]
        if isinstance(event, ReasoningDone) and not stopped:
            encrypted, item_id = event.encrypted_content, event.item.get("id")
            if not encrypted or not item_id:
                return []
            # A part carries one signature: one still waiting goes out on an empty text part of its own.
            out = [self.chunk([{"text": ""}])] if self.signature is not None else []
            self.signature = thought_signature(item_id, encrypted)
            return out
        if isinstance(event, ToolCallDone) and not stopped:
            args = parse_json_object(event.arguments) if event.kind == "function" else {"input": event.arguments}
            return [self.chunk([{"functionCall": {"id": event.call_id, "name": event.name, "args": args}}])]
        if isinstance(event, ImageGenerated) and not stopped:
            return [self.chunk([{"inlineData": {"mimeType": f"image/{event.output_format}", "data": event.result_b64}}])]
        if isinstance(event, Completed):
            return [self._final(event)]
        return []

    def _final(self, completed: Completed | None) -> dict[str, Any]:
        self.finished = True
        reason = completed.incomplete_reason if completed is not None else None
        finish = "STOP" if reason is None or self.stops.matched is not None else _FINISH.get(reason, "OTHER")
        usage = _usage_metadata(completed) if completed is not None else None
        text = ""
        if self.held_text:
            text, self.held_text = self.stops.feed(restore_tuples("".join(self.held_text), self.tuple_schema)), []
        return self.chunk([{"text": text + self.stops.flush()}], finish, usage)

    def finish(self) -> list[dict[str, Any]]:
        if self.finished or self.stops.matched is None:
            return []
        return [self._final(None)]


class StreamEncoder:
    """Normalized Codex events → Gemini stream bytes: SSE (`sse=True`, for `?alt=sse`) or a JSON array."""

    def __init__(self, turn: Turn, meta: ResponseMeta, *, sse: bool = True) -> None:
        self._chunks = _Chunks(turn, meta)
        self._sse = sse
        self._opened = False  # JSON array: "[" written
        self._closed = False
        # Text goes out as it came (no stop sequence to scan, no tuple schema to restore at the end); a text
        # chunk is then these two around the text's JSON string, framed for SSE or as a further array element.
        self._plain_text = not turn.stop_sequences and self._chunks.tuple_schema is None
        self._text_head = (b"data: " if sse else b",\r\n") + b'{"candidates":[{"content":{"parts":[{"text":'
        self._text_tail = (b'}],"role":"model"},"index":0}],"modelVersion":' + orjson.dumps(meta.model)
                           + b',"responseId":' + orjson.dumps(meta.id) + b"}" + (b"\r\n\r\n" if sse else b""))

    @property
    def done(self) -> bool:
        """True once the last chunk (with finishReason) or an error was written and the framing closed."""
        return self._closed or (self._sse and self._chunks.finished)

    @property
    def stopped(self) -> bool:
        """A stop sequence matched: the route may stop reading upstream and call `finish()`."""
        return self._chunks.stops.matched is not None

    def _frame(self, chunks: list[dict[str, Any]]) -> bytes:
        if self._sse:
            return b"".join(b"data: " + orjson.dumps(c) + b"\r\n\r\n" for c in chunks)
        out = []
        for c in chunks:
            out.append(b",\r\n" if self._opened else b"[")
            self._opened = True
            out.append(orjson.dumps(c))
        return b"".join(out)

    def feed(self, event: NormalizedEvent) -> bytes:
        if (type(event) is TextDelta and self._plain_text and event.delta and (self._sse or self._opened)
                and self._chunks.signature is None and not self._chunks.finished and not self._closed):
            # Most events of a reply: the chunk `_Chunks.chunk` would make for this text, framed.
            return self._text_head + orjson.dumps(event.delta) + self._text_tail
        if self._closed:
            return b""
        if isinstance(event, Failed):
            return self.fail(error_from_failed(event))
        out = self._frame(self._chunks.feed(event))
        return out + self._close() if self._chunks.finished and not self._sse else out

    def heartbeat(self) -> bytes:
        """What keeps a silent stream alive. The real API never sends an SSE comment, and Gemini clients break
        on one: google-genai parses every non-`data:` line as JSON, and @google/genai (Gemini CLI) only ever
        consumes `data: …` events at the start of its buffer, so any other bytes stall it for good. So the SSE
        keep-alive is a real chunk with an empty text part (the API's own last chunk often looks like that):
        google-genai yields a chunk whose `.text` is "", Gemini CLI skips it as content-free. The JSON-array
        stream gets whitespace between elements, which is legal JSON."""
        if not self._sse:
            return b"\r\n"
        meta = self._chunks.meta
        chunk = {"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "index": 0}],
                 "modelVersion": meta.model, "responseId": meta.id}
        return b"data: " + orjson.dumps(chunk) + b"\r\n\r\n"

    def fail(self, error: GatewayError) -> bytes:
        if self._closed or self._chunks.finished and self._sse:
            return b""
        self._chunks.finished = True
        _, body = encode_error(error)
        if self._sse:
            self._closed = True
            return b"data: " + orjson.dumps(body) + b"\r\n\r\n"
        return self._frame([body]) + self._close()

    def _close(self) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        return b"]" if self._opened else b"[]"

    def finish(self) -> bytes:
        """Call once upstream is over. Ends a stream cut off by a stop sequence cleanly, and one that ended
        without a terminal event with an error, so no stream ever stops without its terminal chunk."""
        if self._closed or (self._sse and self._chunks.finished):
            return b""
        out = self._frame(self._chunks.finish())
        if not self._chunks.finished:
            return out + self.fail(premature_close())
        return out + (self._close() if not self._sse else b"")


def encode_response(turn: Turn, events: Iterable[NormalizedEvent], meta: ResponseMeta) -> dict[str, Any]:
    """The non-streaming GenerateContentResponse. Raises the GatewayError of a failed upstream turn."""
    chunks = _Chunks(turn, meta)
    parts: list[dict[str, Any]] = []
    last: dict[str, Any] | None = None
    for event in events:
        if isinstance(event, Failed):
            raise error_from_failed(event)
        for chunk in chunks.feed(event):
            last = chunk
            for part in chunk["candidates"][0]["content"]["parts"]:
                previous = parts[-1] if parts else None
                mergeable = (previous is not None and "text" in part and "text" in previous
                             and part.get("thought") == previous.get("thought") and "thoughtSignature" not in part)
                if mergeable:
                    previous["text"] += part["text"]
                elif "text" not in part or part["text"] or "thoughtSignature" in part:
                    parts.append(dict(part))
    for chunk in chunks.finish():
        last = chunk
    if last is None or not chunks.finished:
        raise premature_close()
    response = dict(last)
    candidate = dict(response["candidates"][0])
    candidate["content"] = {"parts": parts or [{"text": ""}], "role": "model"}
    response["candidates"] = [candidate]
    return response


# ---- errors and model listing ------------------------------------------------------------------------------

_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 409: "ABORTED", 413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
                 500: "INTERNAL", 501: "NOT_IMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def count_tokens(model: str, body: bytes, count: Counter) -> dict[str, int]:
    """`POST /v1beta/models/{m}:countTokens` → `{"totalTokens": n}`. The body is either `{contents}` or
    `{generateContentRequest: {...}}`; bad bodies raise GatewayError (400)."""
    data = load_json_object(body)
    inner = data.get("generateContentRequest", data.get("generate_content_request"))
    if inner is not None:
        if not isinstance(inner, dict):
            raise invalid_request("generateContentRequest: must be an object", param="generateContentRequest")
        body = orjson.dumps(inner)
    turn = parse_request(model, body, False)
    return {"totalTokens": count_turn_tokens(turn, count)}


def encode_error(error: GatewayError) -> tuple[int, dict[str, Any]]:
    """Status and Google's error envelope. Overloaded is 503 UNAVAILABLE (Google has no 529)."""
    status = error.status
    if error.kind is ErrorKind.OVERLOADED:
        status = 503
    elif error.kind is ErrorKind.TIMEOUT:
        status = 504
    if not 400 <= status <= 599:
        status = 500
    name = _STATUS_NAMES.get(status) or ("INVALID_ARGUMENT" if status < 500 else "INTERNAL")
    if status == 502:
        name = "UNAVAILABLE"
    return status, {"error": {"code": status, "message": error.message, "status": name}}


def model_resource(info: str | Mapping[str, Any]) -> dict[str, Any]:
    """One `Model` resource. `info` is a model id or a mapping with `id` and optionally `display_name`,
    `description`, `context_window`, `max_output_tokens`."""
    if isinstance(info, str):
        info = {"id": info}
    model_id = str(info["id"])
    out: dict[str, Any] = {"name": f"models/{model_id}", "baseModelId": model_id, "version": "001",
                           "displayName": info.get("display_name") or model_id,
                           "description": info.get("description") or ""}
    if info.get("context_window"):
        out["inputTokenLimit"] = int(info["context_window"])
    if info.get("max_output_tokens"):
        out["outputTokenLimit"] = int(info["max_output_tokens"])
    out["supportedGenerationMethods"] = list(GENERATION_METHODS)
    out["thinking"] = True
    return out


def list_models(infos: Iterable[str | Mapping[str, Any]]) -> dict[str, Any]:
    """`GET /v1beta/models` body."""
    return {"models": [model_resource(info) for info in infos]}
