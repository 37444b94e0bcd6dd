"""OpenAI Chat Completions (`POST /v1/chat/completions`) ⇄ the canonical Codex request and event stream.

Sans-IO. `parse_request` validates the client body and builds the Turn; `StreamEncoder` turns normalized Codex
events into `chat.completion.chunk` SSE frames exactly as OpenAI streams them; `encode_response` builds the
non-streaming `chat.completion`; `encode_error` builds OpenAI's error envelope.

Where the reference gateway deviates from the official API (usage on the finish chunk, no `length` finish
reason, bare error lines without `[DONE]`, `n` ignored), this module follows the official API.

Wiring (route):
    turn = parse_request(body, custom_as_function=user_agent.lower().startswith("cursor/"))
    resolved = router.resolve(turn.requested_model)           # unknown model → 404 GatewayError
    router.apply(turn, resolved)
    meta = ResponseMeta("chatcmpl-<hex>", resolved.display_name, now)
    stream:  enc = StreamEncoder(turn, meta); send enc.start() (may go before upstream answers);
             for each normalized event: send enc.feed(ev); stop when enc.finished; on idle enc.heartbeat();
             on an error after the first byte enc.fail(err); at upstream EOF enc.finish()
    else:    encode_response(turn, collected_normalized_events, meta)
    errors before the first byte: status, body = encode_error(err) (+ err.headers, Retry-After)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from codex_trio.errors import ErrorKind, GatewayError, invalid_request
from codex_trio.protocols.failures import error_from_failed
from codex_trio.protocols.generated_images import image_arguments, image_markdown
from codex_trio.protocols.image_tool import validate_image_tool
from codex_trio.protocols.json_body import load_openai_json_object
from codex_trio.protocols.meta import ResponseMeta
from codex_trio.protocols.openai_envelope import encode_error
from codex_trio.protocols.response_items import sanitize_input
from codex_trio.protocols.schema import OPT_TUPLE_SCHEMA, prepare_schema, restore_tuples, text_format
from codex_trio.protocols.stops import StopScanner, apply_stops
from codex_trio.protocols.validators import REASONING_EFFORTS, SERVICE_TIERS, expect_type
from codex_trio.turn import Turn
from codex_trio.upstream.events import (
    Completed, Failed, ImageGenerated, NormalizedEvent, OutputItemDone, ReasoningDelta, TextDelta, ToolCallDelta,
    ToolCallDone, ToolCallStarted, Usage,
)

# Sampling and output-shaping parameters the Codex backend cannot take: accepted (type-checked) and dropped.
DROPPED_PARAMS: tuple[str, ...] = (
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "presence_penalty", "frequency_penalty",
    "logit_bias", "seed", "logprobs", "top_logprobs", "metadata", "store", "prediction", "audio",
)
# Turn.options keys this module sets (the encoders read them).
OPT_INCLUDE_USAGE = "include_usage"
OPT_CUSTOM_AS_FUNCTION = "custom_as_function"  # Cursor: custom tool calls in the function envelope

_NUMBER_PARAMS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
_INT_PARAMS = ("max_tokens", "max_completion_tokens", "seed", "top_logprobs")


# ---- request ------------------------------------------------------------------------------------------------

def _text_of(content: Any, param: str, *, allow_refusal: bool = False) -> str:
    """Text of a message content (string or array of text parts), parts joined with newlines."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    expect_type(content, list, param, "a string or an array of content parts")
    texts: list[str] = []
    for i, part in enumerate(content):
        part = expect_type(part, dict, f"{param}[{i}]", "a content part object")
        kind = part.get("type")
        if kind == "text" or (allow_refusal and kind == "refusal"):
            texts.append(expect_type(part.get(kind), str, f"{param}[{i}].{kind}", "a string"))
        else:
            raise invalid_request(f"Invalid content part type '{kind}' in '{param}[{i}]': only 'text' parts are "
                                  "allowed in this message role.", param=f"{param}[{i}].type")
    return "\n".join(texts)


def _user_parts(content: Any, param: str) -> list[dict[str, Any]]:
    """Codex input parts for a user message: input_text, input_image, input_file."""
    if content is None:
        return [{"type": "input_text", "text": ""}]
    if isinstance(content, str):
        return [{"type": "input_text", "text": content}]
    expect_type(content, list, param, "a string or an array of content parts")
    parts: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        where = f"{param}[{i}]"
        part = expect_type(part, dict, where, "a content part object")
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "input_text", "text": expect_type(part.get("text"), str, f"{where}.text", "a string")})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if url is None:
                continue
            url = expect_type(url, str, f"{where}.image_url.url", "a string (an http(s) URL or a data: URL)")
            if not url.startswith(("http://", "https://", "data:image/")):
                raise invalid_request(f"Invalid image URL in '{where}': use an http(s) URL or a base64 data URL "
                                      "such as 'data:image/png;base64,...'.", param=f"{where}.image_url.url",
                                      code="invalid_image_url")
            parts.append({"type": "input_image", "image_url": url})
        elif kind == "file":
            file = expect_type(part.get("file"), dict, f"{where}.file", "an object")
            item: dict[str, Any] = {"type": "input_file"}
            for key in ("file_data", "file_id", "filename"):
                if isinstance(file.get(key), str):
                    item[key] = file[key]
            if "file_data" not in item and "file_id" not in item:
                raise invalid_request(f"'{where}.file' needs 'file_data' or 'file_id'.", param=f"{where}.file")
            parts.append(item)
        elif kind == "input_audio":
            raise invalid_request("Audio input is not supported by this gateway; send text or images.",
                                  param=f"{where}.type", code="unsupported_content_type")
        else:
            raise invalid_request(f"Invalid content part type '{kind}' in '{where}': expected 'text', 'image_url' "
                                  "or 'file'.", param=f"{where}.type")
    return parts or [{"type": "input_text", "text": ""}]


def _message(role: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": parts}


def _convert_tools(raw: Any, param: str) -> tuple[list[dict[str, Any]], set[str]]:
    """Flat Codex tools, plus the names of declared custom tools."""
    expect_type(raw, list, param, "an array of tools")
    tools: list[dict[str, Any]] = []
    custom_names: set[str] = set()
    for i, tool in enumerate(raw):
        where = f"{param}[{i}]"
        tool = expect_type(tool, dict, where, "a tool object")
        kind = tool.get("type", "function")
        if kind == "function":
            fn = tool.get("function") if isinstance(tool.get("function"), dict) else tool
            name = expect_type(fn.get("name"), str, f"{where}.function.name", "a string")
            out: dict[str, Any] = {"type": "function", "name": name}
            if fn.get("description") is not None:
                out["description"] = expect_type(fn["description"], str, f"{where}.function.description", "a string")
            params = fn.get("parameters", {"type": "object", "properties": {}})
            params = expect_type(params, dict, f"{where}.function.parameters", "a JSON schema object")
            if params.get("type") == "object" and "properties" not in params:
                params = {**params, "properties": {}}
            out["parameters"] = params
            strict = fn.get("strict")
            out["strict"] = bool(expect_type(strict, bool, f"{where}.function.strict", "a boolean")) if strict is not None \
                else False
            tools.append(out)
        elif kind == "custom":
            spec = tool.get("custom") if isinstance(tool.get("custom"), dict) else tool
            name = expect_type(spec.get("name"), str, f"{where}.custom.name", "a string")
            out = {"type": "custom", "name": name}
            if spec.get("description") is not None:
                out["description"] = expect_type(spec["description"], str, f"{where}.custom.description", "a string")
            if spec.get("format") is not None:
                out["format"] = expect_type(spec["format"], dict, f"{where}.custom.format", "an object")
            custom_names.add(name)
            tools.append(out)
        elif kind in ("web_search", "web_search_preview"):
            out = {"type": "web_search"}
            for key in ("search_context_size", "user_location", "filters"):
                if tool.get(key) is not None:
                    out[key] = tool[key]
            tools.append(out)
        elif kind == "image_generation":
            tools.append(validate_image_tool(tool, where))
        else:
            raise invalid_request(f"Unsupported tool type '{kind}' in '{where}': use 'function', 'custom', "
                                  "'web_search' or 'image_generation'.", param=f"{where}.type")
    return tools, custom_names


def _convert_tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise invalid_request(f"Invalid value for 'tool_choice': '{choice}'. Use 'none', 'auto', 'required' or "
                                  "a named tool.", param="tool_choice")
        return choice
    expect_type(choice, dict, "tool_choice", "a string or an object")
    kind = choice.get("type")
    if kind == "function":
        fn = choice.get("function") if isinstance(choice.get("function"), dict) else choice
        return {"type": "function", "name": expect_type(fn.get("name"), str, "tool_choice.function.name", "a string")}
    if kind == "custom":
        spec = choice.get("custom") if isinstance(choice.get("custom"), dict) else choice
        return {"type": "custom", "name": expect_type(spec.get("name"), str, "tool_choice.custom.name", "a string")}
    if kind == "allowed_tools":
        allowed = expect_type(choice.get("allowed_tools"), dict, "tool_choice.allowed_tools", "an object")
        mode = allowed.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise invalid_request("'tool_choice.allowed_tools.mode' must be 'auto' or 'required'.",
                                  param="tool_choice.allowed_tools.mode")
        refs = []
        for i, ref in enumerate(expect_type(allowed.get("tools"), list, "tool_choice.allowed_tools.tools", "an array")):
            where = f"tool_choice.allowed_tools.tools[{i}]"
            ref = expect_type(ref, dict, where, "an object")
            ref_type = expect_type(ref.get("type", "function"), str, f"{where}.type", "a string")
            inner = ref[ref_type] if isinstance(ref.get(ref_type), dict) else ref
            name = inner.get("name")
            refs.append({"type": ref_type, "name": expect_type(name, str, f"{where}.name", "a string")}
                        if name is not None else {"type": ref_type})
        return {"type": "allowed_tools", "mode": mode, "tools": refs}
    if kind in ("web_search", "web_search_preview", "image_generation"):
        return {"type": "web_search" if kind.startswith("web_search") else kind}
    raise invalid_request(f"Invalid 'tool_choice.type': '{kind}'.", param="tool_choice.type")


def _assistant_items(msg: dict[str, Any], where: str, custom_names: set[str],
                     custom_ids: set[str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    text = _text_of(msg.get("content"), f"{where}.content", allow_refusal=True)
    calls = msg.get("tool_calls") or []
    expect_type(calls, list, f"{where}.tool_calls", "an array")
    legacy = msg.get("function_call")
    if text or not (calls or legacy):
        items.append(_message("assistant", [{"type": "output_text", "text": text}]))
    for i, call in enumerate(calls):
        cwhere = f"{where}.tool_calls[{i}]"
        call = expect_type(call, dict, cwhere, "a tool call object")
        call_id = expect_type(call.get("id"), str, f"{cwhere}.id", "a string")
        if call.get("type") == "custom":
            spec = expect_type(call.get("custom"), dict, f"{cwhere}.custom", "an object")
            name = expect_type(spec.get("name"), str, f"{cwhere}.custom.name", "a string")
            items.append({"type": "custom_tool_call", "call_id": call_id, "name": name,
                          "input": expect_type(spec.get("input", ""), str, f"{cwhere}.custom.input", "a string")})
            custom_ids.add(call_id)
            continue
        fn = expect_type(call.get("function"), dict, f"{cwhere}.function", "an object")
        name = expect_type(fn.get("name"), str, f"{cwhere}.function.name", "a string")
        arguments = expect_type(fn.get("arguments", ""), str, f"{cwhere}.function.arguments", "a string")
        if name in custom_names:  # Cursor sends custom calls in function envelopes
            items.append({"type": "custom_tool_call", "call_id": call_id, "name": name, "input": arguments})
            custom_ids.add(call_id)
        else:
            items.append({"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments})
    if isinstance(legacy, dict):
        name = legacy.get("name") if isinstance(legacy.get("name"), str) else "unknown"
        args = legacy.get("arguments") if isinstance(legacy.get("arguments"), str) else ""
        items.append({"type": "function_call", "call_id": f"fc_{name}", "name": name, "arguments": args})
    return items


def _convert_messages(messages: Any, custom_names: set[str]) -> tuple[str, list[dict[str, Any]]]:
    """(instructions, input). Leading system/developer messages become instructions; later ones stay in place."""
    expect_type(messages, list, "messages", "an array of messages")
    if not messages:
        raise invalid_request("'messages' must contain at least one message.", param="messages",
                              code="empty_array")
    instructions: list[str] = []
    items: list[dict[str, Any]] = []
    custom_ids: set[str] = set()
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        msg = expect_type(msg, dict, where, "a message object")
        role = msg.get("role")
        if role in ("system", "developer"):
            text = _text_of(msg.get("content"), f"{where}.content")
            if not items:
                if text.strip():
                    instructions.append(text)
            else:
                items.append(_message("developer", [{"type": "input_text", "text": text}]))
        elif role == "user":
            items.append(_message("user", _user_parts(msg.get("content"), f"{where}.content")))
        elif role == "assistant":
            items.extend(_assistant_items(msg, where, custom_names, custom_ids))
        elif role == "tool":
            call_id = expect_type(msg.get("tool_call_id"), str, f"{where}.tool_call_id", "a string")
            output = _text_of(msg.get("content"), f"{where}.content")
            kind = "custom_tool_call_output" if call_id in custom_ids else "function_call_output"
            items.append({"type": kind, "call_id": call_id, "output": output})
        elif role == "function":
            name = msg.get("name") if isinstance(msg.get("name"), str) else "unknown"
            items.append({"type": "function_call_output", "call_id": f"fc_{name}",
                          "output": _text_of(msg.get("content"), f"{where}.content")})
        else:
            raise invalid_request(f"Invalid value for '{where}.role': '{role}'. Supported roles: system, developer, "
                                  "user, assistant, tool.", param=f"{where}.role")
    if not items:
        items.append(_message("user", [{"type": "input_text", "text": ""}]))
    return "\n\n".join(instructions), items


def _responses_shaped_input(data: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Some clients (Cursor) post a Responses-shaped body (`input`, `instructions`) to Chat Completions: its items
    are already Codex items, so they are taken as the Responses passthrough takes them."""
    instructions = data.get("instructions")
    if instructions is not None:
        expect_type(instructions, str, "instructions", "a string")
    items = sanitize_input(data["input"])
    if not items:
        raise invalid_request("'input' must contain at least one item.", param="input", code="empty_array")
    return instructions or "", items


def _response_format(fmt: Any, options: dict[str, Any]) -> dict[str, Any] | None:
    expect_type(fmt, dict, "response_format", "an object")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return text_format("json_object")
    if kind == "json_schema":
        spec = expect_type(fmt.get("json_schema"), dict, "response_format.json_schema", "an object")
        name = expect_type(spec.get("name"), str, "response_format.json_schema.name", "a string")
        schema = expect_type(spec.get("schema", {"type": "object", "properties": {}}), dict,
                         "response_format.json_schema.schema", "a JSON schema object")
        strict = spec.get("strict")
        if strict is not None:
            expect_type(strict, bool, "response_format.json_schema.strict", "a boolean")
        description = spec.get("description")
        prepared = prepare_schema(schema)
        if prepared.has_tuples:
            options[OPT_TUPLE_SCHEMA] = prepared.original
        return text_format("json_schema", name=name, prepared=prepared, strict=strict,
                           description=description if isinstance(description, str) else None)
    raise invalid_request(f"Invalid value for 'response_format.type': '{kind}'. Use 'text', 'json_object' or "
                          "'json_schema'.", param="response_format.type")


def _check_dropped(data: dict[str, Any]) -> None:
    for key in _NUMBER_PARAMS:
        if data.get(key) is not None:
            expect_type(data[key], (int, float), key, "a number")
    for key in _INT_PARAMS:
        if data.get(key) is not None:
            expect_type(data[key], int, key, "an integer")
    if data.get("logit_bias") is not None:
        expect_type(data["logit_bias"], dict, "logit_bias", "an object")
    if data.get("logprobs") is not None:
        expect_type(data["logprobs"], bool, "logprobs", "a boolean")


def parse_request(body: bytes, *, custom_as_function: bool = False) -> Turn:
    """Validate a Chat Completions body and build the Turn (model still the client's name; the router resolves it).

    `custom_as_function`: emit custom tool calls in the function envelope (Cursor, detected by the route from
    its `User-Agent: cursor/...`).
    """
    data = load_openai_json_object(body)
    model = data.get("model")
    if model is None:
        raise invalid_request("You must provide a model parameter.", param="model", code="missing_required_parameter")
    model = expect_type(model, str, "model", "a string")
    if not model.strip():
        raise invalid_request("'model' must not be empty.", param="model", code="invalid_value")
    stream = data.get("stream")
    stream = bool(expect_type(stream, bool, "stream", "a boolean")) if stream is not None else False
    n = data.get("n")
    if n is not None and expect_type(n, int, "n", "an integer") != 1:
        raise invalid_request(f"n={n} is not supported: the Codex backend returns one choice per request. Send n=1 "
                              "(or omit it) and make several requests for several choices.", param="n",
                              code="unsupported_value")
    modalities = data.get("modalities")
    if modalities is not None and any(m != "text" for m in expect_type(modalities, list, "modalities", "an array")):
        raise invalid_request("Only the 'text' output modality is supported.", param="modalities",
                              code="unsupported_value")
    _check_dropped(data)
    options: dict[str, Any] = {OPT_INCLUDE_USAGE: False}

    tools: list[dict[str, Any]] = []
    custom_names: set[str] = set()
    if data.get("tools") is not None:
        tools, custom_names = _convert_tools(data["tools"], "tools")
    if not tools and data.get("functions") is not None:
        tools, custom_names = _convert_tools(
            [{"type": "function", "function": f} for f in expect_type(data["functions"], list, "functions", "an array")],
            "functions")
    web_search = data.get("web_search_options")
    if web_search is not None:
        expect_type(web_search, dict, "web_search_options", "an object")
        if not any(t["type"] == "web_search" for t in tools):
            tools.append({"type": "web_search", **{k: v for k, v in web_search.items()
                                                   if k in ("search_context_size", "user_location")}})

    if "messages" not in data and "input" in data:
        instructions, input_items = _responses_shaped_input(data)
    else:
        instructions, input_items = _convert_messages(data.get("messages"), custom_names)
    # Like the real Codex CLI, no `instructions` key when there is no system text (not an empty string).
    request: dict[str, Any] = {"model": model, "instructions": instructions} if instructions else {"model": model}
    request["input"] = input_items
    if tools:
        request["tools"] = tools
    if data.get("tool_choice") is not None:
        request["tool_choice"] = _convert_tool_choice(data["tool_choice"])
    elif data.get("function_call") is not None:  # the legacy form of tool_choice
        legacy = data["function_call"]
        request["tool_choice"] = _convert_tool_choice(
            {"type": "function", "function": legacy} if isinstance(legacy, dict) else legacy)
    if data.get("parallel_tool_calls") is not None:
        request["parallel_tool_calls"] = expect_type(data["parallel_tool_calls"], bool, "parallel_tool_calls", "a boolean")

    text: dict[str, Any] = {}
    if data.get("response_format") is not None:
        fmt = _response_format(data["response_format"], options)
        if fmt is not None:
            text["format"] = fmt
    verbosity = data.get("verbosity")
    if verbosity is not None:
        if verbosity not in ("low", "medium", "high"):
            raise invalid_request("'verbosity' must be 'low', 'medium' or 'high'.", param="verbosity")
        text["verbosity"] = verbosity
    if text:
        request["text"] = text

    effort = data.get("reasoning_effort")
    if effort is None and isinstance(data.get("reasoning"), dict):
        effort = data["reasoning"].get("effort")  # Responses-shaped bodies (Cursor)
    if effort is not None and effort not in REASONING_EFFORTS:
        raise invalid_request(f"Invalid value for 'reasoning_effort': {orjson.dumps(effort).decode()}. Supported "
                              f"values: {', '.join(REASONING_EFFORTS)}.", param="reasoning_effort",
                              code="invalid_value")
    tier = data.get("service_tier")
    if tier is not None and tier not in SERVICE_TIERS:
        raise invalid_request(f"Invalid value for 'service_tier': {orjson.dumps(tier).decode()}. Supported values: "
                              f"{', '.join(SERVICE_TIERS)}.", param="service_tier", code="invalid_value")

    stream_options = data.get("stream_options")
    if stream_options is not None:
        expect_type(stream_options, dict, "stream_options", "an object")
        include = stream_options.get("include_usage")
        if include is not None:
            options[OPT_INCLUDE_USAGE] = expect_type(include, bool, "stream_options.include_usage", "a boolean")

    stop = data.get("stop")
    stops: list[str] = []
    if isinstance(stop, str):
        stops = [stop]
    elif stop is not None:
        for i, s in enumerate(expect_type(stop, list, "stop", "a string or an array of strings")):
            stops.append(expect_type(s, str, f"stop[{i}]", "a string"))
    stops = [s for s in stops if s]

    conversation = None
    for key in ("prompt_cache_key", "user", "safety_identifier"):
        value = data.get(key)
        if value is not None:
            expect_type(value, str, key, "a string")
            conversation = conversation or value or None
    if isinstance(data.get("prompt_cache_key"), str) and data["prompt_cache_key"]:
        request["prompt_cache_key"] = data["prompt_cache_key"]
    if custom_as_function:
        options[OPT_CUSTOM_AS_FUNCTION] = True

    return Turn(request=request, requested_model=model, stream=stream, conversation_id=conversation,
                reasoning_effort=effort, service_tier=None if tier in ("auto", "default") else tier,
                stop_sequences=stops, options=options)


# ---- shared helpers for the replies ---------------------------------------------------------------------------

def usage_object(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def message_text(item: dict[str, Any]) -> str:
    """The text of a finished assistant `message` item (for streams that sent it without deltas)."""
    if item.get("type") != "message" or not isinstance(item.get("content"), list):
        return ""
    return "".join(p["text"] for p in item["content"]
                   if isinstance(p, dict) and p.get("type") == "output_text" and isinstance(p.get("text"), str))


def _finish_reason(completed: Completed | None, tool_calls: bool, stopped: bool) -> str:
    if stopped or completed is None:
        return "stop"
    if completed.incomplete_reason == "content_filter":
        return "content_filter"
    if completed.incomplete_reason is not None:
        return "length"
    return "tool_calls" if tool_calls else "stop"


# ---- streaming ------------------------------------------------------------------------------------------------

_DONE = b"data: [DONE]\n\n"
_PING = b": ping\n\n"


class StreamEncoder:
    """Normalized Codex events → `chat.completion.chunk` SSE frames (one `data:` frame each, then `[DONE]`)."""

    def __init__(self, turn: Turn, meta: ResponseMeta) -> None:
        self._include_usage = bool(turn.options.get(OPT_INCLUDE_USAGE))
        self._expose_reasoning = turn.expose_reasoning
        self._inline_images = turn.inline_images
        self._custom_as_function = bool(turn.options.get(OPT_CUSTOM_AS_FUNCTION))
        self._tuple_schema = turn.options.get(OPT_TUPLE_SCHEMA)
        self._tuple_text: list[str] = []
        self._stop = StopScanner(turn.stop_sequences) if turn.stop_sequences else None
        head = orjson.dumps({"id": meta.id, "object": "chat.completion.chunk", "created": meta.created,
                             "model": meta.model})[:-1]
        self._prefix = b"data: " + head + b',"choices":[{"index":0,"delta":'
        usage_tail = b',"usage":null' if self._include_usage else b""
        self._suffix = b',"logprobs":null,"finish_reason":null}]' + usage_tail + b"}\n\n"
        self._head = head
        self._content_prefix = self._prefix + b'{"content":'  # a text delta's chunk: these + its JSON string
        self._content_suffix = b"}" + self._suffix
        # Text goes out as it came (no stop sequence to scan, no tuple schema to restore at the end).
        self._plain_text = self._stop is None and self._tuple_schema is None
        self._started = False
        self._finished = False
        self._text_emitted = False
        self._call_index: dict[str, int] = {}  # call id → tool_calls index
        self._calls_with_deltas: set[str] = set()
        self._call_kind: dict[str, str] = {}
        self._reasoning_part: tuple[str, int] | None = None
        self._text_items: set[str | None] = set()  # message items whose text arrived as deltas

    @property
    def finished(self) -> bool:
        """True once the stream has its terminal frames (the route may stop reading upstream)."""
        return self._finished

    @property
    def stopped(self) -> bool:
        """A stop sequence ended the text: the route stops reading upstream (cancelling the turn) and calls
        `finish()`, which ends the stream cleanly."""
        return self._stop is not None and self._stop.hit

    # -- frame builders --------------------------------------------------------------------------------------

    def _delta(self, delta: bytes) -> bytes:
        return self._prefix + delta + self._suffix

    def start(self) -> bytes:
        """The role chunk. Sent before anything else; the route may send it before upstream answers."""
        if self._started:
            return b""
        self._started = True
        return self._delta(b'{"role":"assistant","content":"","refusal":null}')

    def _content(self, text: str) -> bytes:
        if not text:
            return b""
        self._text_emitted = True
        return self._content_prefix + orjson.dumps(text) + self._content_suffix

    def _tool_delta(self, call: dict[str, Any]) -> bytes:
        return self._delta(b'{"tool_calls":[' + orjson.dumps(call) + b"]}")

    # -- events ----------------------------------------------------------------------------------------------

    def feed(self, event: NormalizedEvent) -> bytes:
        kind = type(event)
        if kind is TextDelta and self._plain_text and self._started and not self._finished and event.delta:
            # Most events of a reply: the chunk `_on_text` would build, without its checks and calls.
            self._text_items.add(event.item_id)
            self._text_emitted = True
            return self._content_prefix + orjson.dumps(event.delta) + self._content_suffix
        if self._finished:
            return b""
        out = self.start()
        if kind is TextDelta:
            self._text_items.add(event.item_id)
            return out + self._on_text(event.delta)
        if kind is OutputItemDone:
            item_id = event.item.get("id")
            if item_id in self._text_items:
                return out
            self._text_items.add(item_id)
            return out + self._on_text(message_text(event.item))
        if kind is ReasoningDelta:
            return out + self._on_reasoning(event)
        if kind is ToolCallStarted:
            return out + self._on_call_started(event)
        if kind is ToolCallDelta:
            return out + self._on_call_delta(event)
        if kind is ToolCallDone:
            return out + self._on_call_done(event)
        if kind is ImageGenerated:
            return out + self._on_image(event)
        if kind is Completed:
            return out + self._on_completed(event)
        if kind is Failed:
            return out + self.fail(error_from_failed(event))
        return out

    def _stopped(self) -> bool:
        return self._stop is not None and self._stop.hit

    def _on_text(self, text: str) -> bytes:
        if not text:
            return b""
        if self._tuple_schema is not None:
            self._tuple_text.append(text)
            return b""
        if self._stop is not None:
            if self._stop.hit:
                return b""
            return self._content(self._stop.feed(text))
        return self._content(text)

    def _on_reasoning(self, event: ReasoningDelta) -> bytes:
        if not self._expose_reasoning or self._stopped():
            return b""
        text = event.delta
        part = (event.item_id, event.summary_index)
        if self._reasoning_part is not None and self._reasoning_part != part:
            text = "\n\n" + text  # summary parts are paragraphs
        self._reasoning_part = part
        return self._delta(b'{"reasoning_content":' + orjson.dumps(text) + b"}")

    def _open_call(self, call_id: str) -> int:
        index = self._call_index.get(call_id)
        if index is None:
            index = self._call_index[call_id] = len(self._call_index)
        return index

    def _envelope(self, kind: str) -> str:
        return "function" if kind == "function" or self._custom_as_function else "custom"

    def _on_call_started(self, event: ToolCallStarted) -> bytes:
        if self._stopped() or event.call_id in self._call_index:
            return b""
        index = self._open_call(event.call_id)
        envelope = self._envelope(event.kind)
        self._call_kind[event.call_id] = envelope
        if envelope == "function":
            body = {"name": event.name, "arguments": ""}
        else:
            body = {"name": event.name, "input": ""}
        return self._tool_delta({"index": index, "id": event.call_id, "type": envelope, envelope: body})

    def _on_call_delta(self, event: ToolCallDelta) -> bytes:
        if self._stopped():
            return b""
        index = self._call_index.get(event.call_id)
        if index is None:
            return b""
        self._calls_with_deltas.add(event.call_id)
        envelope = self._call_kind[event.call_id]
        key = "arguments" if envelope == "function" else "input"
        return self._tool_delta({"index": index, envelope: {key: event.delta}})

    def _on_call_done(self, event: ToolCallDone) -> bytes:
        if self._stopped() or event.call_id in self._calls_with_deltas:
            return b""
        out = b""
        if event.call_id not in self._call_index:
            out = self._on_call_started(ToolCallStarted(event.call_id, event.call_id, event.name, event.kind, 0))
        self._calls_with_deltas.add(event.call_id)
        if not event.arguments:
            return out
        envelope = self._call_kind[event.call_id]
        key = "arguments" if envelope == "function" else "input"
        return out + self._tool_delta({"index": self._call_index[event.call_id], envelope: {key: event.arguments}})

    def _on_image(self, event: ImageGenerated) -> bytes:
        if self._stopped():
            return b""
        if self._inline_images:
            out = self._content(self._stop.flush()) if self._stop is not None else b""
            separator = "\n\n" if self._text_emitted else ""
            return out + self._content(separator + image_markdown(event))
        index = self._open_call(event.item_id)
        self._call_kind[event.item_id] = "function"
        return (self._tool_delta({"index": index, "id": event.item_id, "type": "function",
                                  "function": {"name": "image_generation", "arguments": ""}})
                + self._tool_delta({"index": index, "function": {"arguments": image_arguments(event)}}))

    def _on_completed(self, event: Completed | None) -> bytes:
        """The finish chunk (and usage). `event` is None when a stop sequence ended the turn before the
        backend finished it: the turn was cancelled, so its usage is unknown (reported as zeros)."""
        out = b""
        if self._tuple_schema is not None and self._tuple_text:
            text = restore_tuples("".join(self._tuple_text), self._tuple_schema)
            self._tuple_text.clear()
            out += self._content(self._stop.feed(text) if self._stop is not None else text)
        if self._stop is not None:
            out += self._content(self._stop.flush())
        reason = _finish_reason(event, bool(self._call_index), self._stopped())
        usage_tail = b',"usage":null' if self._include_usage else b""
        out += (self._prefix + b'{},"logprobs":null,"finish_reason":"' + reason.encode() + b'"}]' + usage_tail
                + b"}\n\n")
        if self._include_usage:
            usage = event.usage if event is not None else Usage()
            out += (b"data: " + self._head + b',"choices":[],"usage":' + orjson.dumps(usage_object(usage))
                    + b"}\n\n")
        self._finished = True
        return out + _DONE

    def heartbeat(self) -> bytes:
        return _PING

    def fail(self, err: GatewayError) -> bytes:
        """End a started stream with an error frame (OpenAI's envelope) and `[DONE]`."""
        if self._finished:
            return b""
        self._finished = True
        _, body = encode_error(err)
        return self.start() + b"data: " + orjson.dumps(body) + b"\n\n" + _DONE

    def finish(self) -> bytes:
        """Upstream ended: nothing to add after a terminal event; a stop sequence ends the stream cleanly;
        otherwise the stream was cut short."""
        if self._finished:
            return b""
        if self._stopped():
            return self.start() + self._on_completed(None)
        return self.fail(GatewayError(502, "The upstream stream closed before the response was complete. Retry "
                                           "the request.", ErrorKind.UPSTREAM, code="stream_disconnected"))


# ---- non-streaming --------------------------------------------------------------------------------------------

def encode_response(turn: Turn, events: Iterable[NormalizedEvent], meta: ResponseMeta) -> dict[str, Any]:
    """The `chat.completion` object for collected events; raises GatewayError if the upstream failed."""
    text: list[str] = []
    reasoning: list[str] = []
    reasoning_part: tuple[str, int] | None = None
    calls: list[dict[str, Any]] = []
    custom_as_function = bool(turn.options.get(OPT_CUSTOM_AS_FUNCTION))
    completed: Completed | None = None
    text_items: set[str | None] = set()
    for event in events:
        kind = type(event)
        if kind is TextDelta:
            text_items.add(event.item_id)
            text.append(event.delta)
        elif kind is OutputItemDone:
            if event.item.get("id") not in text_items:
                text_items.add(event.item.get("id"))
                text.append(message_text(event.item))
        elif kind is ReasoningDelta:
            part = (event.item_id, event.summary_index)
            if reasoning_part is not None and part != reasoning_part:
                reasoning.append("\n\n")
            reasoning_part = part
            reasoning.append(event.delta)
        elif kind is ToolCallDone:
            if event.kind == "function" or custom_as_function:
                calls.append({"id": event.call_id, "type": "function",
                              "function": {"name": event.name, "arguments": event.arguments}})
            else:
                calls.append({"id": event.call_id, "type": "custom",
                              "custom": {"name": event.name, "input": event.arguments}})
        elif kind is ImageGenerated:
            if turn.inline_images:
                text.append(("\n\n" if text else "") + image_markdown(event))
            else:
                calls.append({"id": event.item_id, "type": "function",
                              "function": {"name": "image_generation", "arguments": image_arguments(event)}})
        elif kind is Completed:
            completed = event
            break
        elif kind is Failed:
            raise error_from_failed(event)
    content = "".join(text)
    tuple_schema = turn.options.get(OPT_TUPLE_SCHEMA)
    if tuple_schema is not None and content:
        content = restore_tuples(content, tuple_schema)
    content, matched = apply_stops(content, turn.stop_sequences)
    stopped = matched is not None
    if completed is None and not stopped:  # only a stop sequence may end a turn before the backend did
        raise GatewayError(502, "The upstream stream closed before the response was complete. Retry the request.",
                           ErrorKind.UPSTREAM, code="stream_disconnected")
    if stopped:
        calls = []
    message: dict[str, Any] = {"role": "assistant", "content": content or None, "refusal": None}
    if turn.expose_reasoning and reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = calls
    return {
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": _finish_reason(completed, bool(calls), stopped)}],
        "usage": usage_object(completed.usage if completed is not None else Usage()),
    }
