"""OpenAI Responses passthrough (`POST /v1/responses`, `/v1/responses/compact`, and the WebSocket form).

The client already speaks the backend's language, so its input items are kept (messages, function and custom tool
calls and outputs, reasoning items with `encrypted_content`, compaction items, Codex's own item types). Only what the
backend rejects is removed (sampling and truncation options, `user`, `metadata`, ...), the structured-output schema
is prepared like every other protocol's, and reasoning/compaction items are reduced to the fields the backend takes.

Streaming relays the raw backend events (`StreamEncoder.feed_raw`), re-serialised as named SSE events; the quota
snapshots (`codex.rate_limits`) stay inside the gateway. Sans-IO throughout.

Wiring (route):
    turn = parse_request(body, subagent="review" on the review paths)    # or parse_ws_message(text) per frame
    router.apply(turn, router.resolve(turn.requested_model, fallback_to_default=True))
    turn.options["client_metadata"]: the client's string metadata, for the upstream client to merge
    stream:  enc = StreamEncoder(turn, meta); send enc.feed_raw(raw_codex_event) per event (ws_feed for a
             WebSocket client), enc.heartbeat() when idle, enc.fail(err) / enc.finish() at the end
    else:    encode_response(turn, collected_raw_codex_events, meta)
    compact: parse_compact_request(body) → POST /codex/responses/compact → relay the JSON as is
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from codex_trio.errors import ErrorKind, GatewayError, invalid_request
from codex_trio.protocols.failures import error_from_failed
from codex_trio.protocols.image_tool import validate_image_tool
from codex_trio.protocols.json_body import load_openai_json_object
from codex_trio.protocols.meta import ResponseMeta
from codex_trio.protocols.openai_envelope import encode_error as _openai_error
from codex_trio.protocols.response_items import sanitize_input
from codex_trio.protocols.schema import OPT_TUPLE_SCHEMA, prepare_schema, restore_tuples
from codex_trio.protocols.validators import REASONING_EFFORTS, SERVICE_TIERS, expect_type
from codex_trio.turn import Turn
from codex_trio.upstream.events import TERMINAL_TYPES, CodexEvent, Failed, error_fields

# Accepted and removed: the backend answers 400 "Unsupported parameter" to these.
DROPPED_PARAMS: tuple[str, ...] = (
    "max_output_tokens", "temperature", "top_p", "truncation", "user", "metadata", "stream_options",
    "top_logprobs", "safety_identifier", "max_tool_calls", "store", "background", "context_window",
    "max_context_window", "truncation_policy",
)
OPT_CLIENT_METADATA = "client_metadata"  # the client's string-valued metadata, for the upstream client to merge
OPT_COMPACT = "compact"
_SUBAGENTS = ("review", "compact", "memory_consolidation", "collab_spawn")


# ---- request -----------------------------------------------------------------------------------------------------

def _prepare_text(text: Any, options: dict[str, Any]) -> dict[str, Any]:
    expect_type(text, dict, "text", "an object")
    out = {k: v for k, v in text.items() if k != "format"}
    fmt = text.get("format")
    if fmt is None:
        return out
    expect_type(fmt, dict, "text.format", "an object")
    if fmt.get("type") == "json_schema":
        schema = expect_type(fmt.get("schema"), dict, "text.format.schema", "a JSON schema object")
        prepared = prepare_schema(schema)
        if prepared.has_tuples:
            options[OPT_TUPLE_SCHEMA] = prepared.original
        fmt = {**fmt, "schema": prepared.schema}
    elif fmt.get("type") not in ("text", "json_object"):
        raise invalid_request(f"Invalid value for 'text.format.type': {orjson.dumps(fmt.get('type')).decode()}.",
                              param="text.format.type")
    out["format"] = fmt
    return out


def _tools(raw: Any) -> list[dict[str, Any]]:
    expect_type(raw, list, "tools", "an array of tools")
    tools = []
    for i, tool in enumerate(raw):
        tool = expect_type(tool, dict, f"tools[{i}]", "a tool object")
        tools.append(validate_image_tool(tool, f"tools[{i}]") if tool.get("type") == "image_generation"
                     else tool)
    return tools


def _client_metadata(raw: Any, subagent: str | None) -> dict[str, str]:
    metadata = {k: v for k, v in raw.items() if isinstance(v, str)} if isinstance(raw, dict) else {}
    if metadata.get("x-openai-subagent") not in _SUBAGENTS:
        metadata.pop("x-openai-subagent", None)
    if subagent is not None:
        metadata["x-openai-subagent"] = subagent
    return metadata


def parse_body(data: dict[str, Any], *, subagent: str | None = None, default_stream: bool = False) -> Turn:
    """Build the Turn from an already-decoded Responses body (HTTP or a WebSocket `response.create` frame)."""
    model = expect_type(data.get("model"), str, "model", "a string") if "model" in data else None
    if not model:
        raise invalid_request("You must provide a model parameter.", param="model", code="missing_required_parameter")
    if data.get("background") is True:
        raise invalid_request("Background responses are not supported: the backend does not store responses. Omit "
                              "'background'.", param="background", code="unsupported_value")
    for key in ("conversation", "prompt"):
        if data.get(key) is not None:
            raise invalid_request(f"'{key}' is not supported: the backend keeps no server-side state. Send the full "
                                  "input (or previous_response_id) instead.", param=key, code="unsupported_parameter")
    options: dict[str, Any] = {}
    request: dict[str, Any] = {"model": model}
    if isinstance(data.get("instructions"), str):
        request["instructions"] = data["instructions"]
    elif data.get("instructions") is not None:
        expect_type(data["instructions"], str, "instructions", "a string")
    request["input"] = sanitize_input(data.get("input", []))
    if data.get("tools") is not None:
        tools = _tools(data["tools"])
        if tools:
            request["tools"] = tools
    if data.get("tool_choice") is not None:
        request["tool_choice"] = expect_type(data["tool_choice"], (str, dict), "tool_choice", "a string or an object")
    if data.get("parallel_tool_calls") is not None:
        request["parallel_tool_calls"] = expect_type(data["parallel_tool_calls"], bool, "parallel_tool_calls",
                                                 "a boolean")
    effort = None
    if data.get("reasoning") is not None:
        reasoning = dict(expect_type(data["reasoning"], dict, "reasoning", "an object"))
        effort = reasoning.pop("effort", None)
        if effort is not None and effort not in REASONING_EFFORTS:
            raise invalid_request(f"Invalid value for 'reasoning.effort': {orjson.dumps(effort).decode()}. Supported "
                                  f"values: {', '.join(REASONING_EFFORTS)}.", param="reasoning.effort")
        reasoning.pop("generate_summary", None)  # deprecated alias the backend does not take
        request["reasoning"] = reasoning  # the router adds effort (field > suffix > default)
    if data.get("text") is not None:
        text = _prepare_text(data["text"], options)
        if text:
            request["text"] = text
    if data.get("include") is not None:
        include = expect_type(data["include"], list, "include", "an array of strings")
        request["include"] = [expect_type(v, str, f"include[{i}]", "a string") for i, v in enumerate(include)]
    for key in ("prompt_cache_key", "previous_response_id"):
        if data.get(key) is not None:
            request[key] = expect_type(data[key], str, key, "a string")
    if data.get("generate") is not None:
        request["generate"] = expect_type(data["generate"], bool, "generate", "a boolean")
    tier = data.get("service_tier")
    if tier is not None and tier not in SERVICE_TIERS:
        raise invalid_request(f"Invalid value for 'service_tier': {orjson.dumps(tier).decode()}.",
                              param="service_tier")
    stream = data.get("stream")
    stream = expect_type(stream, bool, "stream", "a boolean") if stream is not None else default_stream
    options[OPT_CLIENT_METADATA] = _client_metadata(data.get("client_metadata"), subagent)
    conversation = request.get("prompt_cache_key") or (data.get("user") if isinstance(data.get("user"), str)
                                                       else None) or None
    return Turn(request=request, requested_model=model, stream=stream, conversation_id=conversation,
                reasoning_effort=effort, service_tier=None if tier in ("auto", "default") else tier,
                options=options)


def parse_request(body: bytes, *, subagent: str | None = None) -> Turn:
    """`POST /v1/responses` body → Turn. `subagent="review"` for the review paths (or the client's
    `x-openai-subagent` header when it is one of review/compact/memory_consolidation/collab_spawn)."""
    return parse_body(load_openai_json_object(body), subagent=subagent)


def parse_compact_request(body: bytes) -> Turn:
    """`POST /v1/responses/compact` → Turn (non-streaming; the route posts it to `/codex/responses/compact`).
    Only `model, input, instructions, tools, parallel_tool_calls, reasoning, text` are kept."""
    data = load_openai_json_object(body)
    turn = parse_body(data)
    request = {k: v for k, v in turn.request.items()
               if k in ("model", "input", "instructions", "tools", "parallel_tool_calls", "reasoning", "text")}
    if "text" in request and isinstance(data.get("text"), dict):
        request["text"] = data["text"]  # compact takes the schema as given
    request.setdefault("instructions", "")
    turn.request = request
    turn.stream = False
    turn.options = {OPT_COMPACT: True}
    return turn


# ---- streaming -------------------------------------------------------------------------------------------------

_PING = b": ping\n\n"
# Events after which a message's text is complete (buffered tuple text is released before them).
_TEXT_END = frozenset({"response.output_text.done", "response.content_part.done", "response.output_item.done"})
_TEXT_DELTA = "response.output_text.delta"
_TEXT_DELTA_HEAD = b"event: " + _TEXT_DELTA.encode() + b"\ndata: "


def sse_frame(event_type: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event_type.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def failed_event(err: GatewayError, response_id: str, *, model: str | None = None,
                 created_at: int | None = None) -> dict[str, Any]:
    """A `response.failed` event object carrying `err` (OpenAI error types)."""
    _, body = _openai_error(err)
    error = {"type": body["error"]["type"], "code": err.code or body["error"]["type"], "message": err.message}
    response: dict[str, Any] = {"id": response_id, "object": "response", "status": "failed", "error": error,
                                "output": []}
    if created_at is not None:
        response["created_at"] = created_at
    if model is not None:
        response["model"] = model
    return {"type": "response.failed", "response": response, "error": error}


class StreamEncoder:
    """Raw backend events → client events, relayed as received (tuple schemas are the one rewrite).

    The core (`events`, `failure`, `end`) works on event objects; `feed_raw` / `fail` / `finish` frame them as
    named SSE events, `ws_feed` / `ws_fail` / `ws_finish` as WebSocket text messages (the same JSON, no names).
    """

    def __init__(self, turn: Turn, meta: ResponseMeta) -> None:
        self._meta = meta
        self._tuple_schema = turn.options.get(OPT_TUPLE_SCHEMA)
        self._held_text: list[str] = []
        self._held_delta: dict[str, Any] | None = None
        self._response_id: str | None = None
        self._finished = False

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def stopped(self) -> bool:
        """The Responses API has no stop sequences: only the backend ends a turn."""
        return False

    # -- core ------------------------------------------------------------------------------------------------

    def events(self, event: CodexEvent) -> list[dict[str, Any]]:
        """The client events for one backend event (usually exactly it; none for quota snapshots)."""
        if self._finished or event.type == "codex.rate_limits":
            return []
        data = event.data
        if data.get("type") != event.type:
            data = {**data, "type": event.type}
        response = data.get("response")
        if isinstance(response, dict) and isinstance(response.get("id"), str):
            self._response_id = response["id"]
        out: list[dict[str, Any]] = []
        if self._tuple_schema is not None:
            if event.type == "response.output_text.delta" and isinstance(data.get("delta"), str):
                self._held_text.append(data["delta"])
                self._held_delta = self._held_delta or data
                return []
            if self._held_text and (event.type in _TEXT_END or event.type in TERMINAL_TYPES):
                out.append(self._flush_tuple_text())
            data = _restore_event_text(data, self._tuple_schema)
        out.append(data)
        if event.type == "error":
            # A bare `error` ends the backend's stream; Responses clients wait for `response.failed` (the SDK's
            # final response, Codex's turn end), so it follows the relayed error.
            code, message = error_fields(data)
            out.extend(self.failure(error_from_failed(Failed(code, message))))
        elif event.type in TERMINAL_TYPES:
            self._finished = True
        return out

    def _flush_tuple_text(self) -> dict[str, Any]:
        text = restore_tuples("".join(self._held_text), self._tuple_schema)
        self._held_text.clear()
        delta = {**(self._held_delta or {"type": "response.output_text.delta"}), "delta": text}
        self._held_delta = None
        return delta

    def failure(self, err: GatewayError) -> list[dict[str, Any]]:
        """A terminal `response.failed` for a stream that cannot finish (nothing if it already ended)."""
        if self._finished:
            return []
        self._finished = True
        return [failed_event(err, self._response_id or self._meta.id, model=self._meta.model,
                             created_at=self._meta.created)]

    def end(self) -> list[dict[str, Any]]:
        """Upstream is done: nothing after a terminal event; a synthetic failure if it never came."""
        return self.failure(GatewayError(502, "Upstream stream closed before response.completed.",
                                         ErrorKind.UPSTREAM, code="stream_disconnected"))

    # -- SSE -------------------------------------------------------------------------------------------------

    def feed_raw(self, event: CodexEvent) -> bytes:
        data = event.data
        if event.type == _TEXT_DELTA and data.get("type") == _TEXT_DELTA and self._tuple_schema is None \
                and not self._finished:
            # Most events of a reply: relayed as they came, so the frame `events` + `sse_frame` would make.
            return _TEXT_DELTA_HEAD + orjson.dumps(data) + b"\n\n"
        return b"".join(sse_frame(d["type"], d) for d in self.events(event))

    # The module-wide shape: `feed` takes what the route has; for Responses that is the raw event.
    feed = feed_raw

    def heartbeat(self) -> bytes:
        return _PING

    def fail(self, err: GatewayError) -> bytes:
        return b"".join(sse_frame(d["type"], d) for d in self.failure(err))

    def finish(self) -> bytes:
        return b"".join(sse_frame(d["type"], d) for d in self.end())

    # -- WebSocket -------------------------------------------------------------------------------------------

    def ws_feed(self, event: CodexEvent) -> list[str]:
        return [orjson.dumps(d).decode() for d in self.events(event)]

    def ws_fail(self, err: GatewayError) -> list[str]:
        return [orjson.dumps(d).decode() for d in self.failure(err)]

    def ws_finish(self) -> list[str]:
        return [orjson.dumps(d).decode() for d in self.end()]


def _restore_part(part: Any, schema: dict[str, Any]) -> Any:
    if isinstance(part, dict) and part.get("type") == "output_text" and isinstance(part.get("text"), str):
        return {**part, "text": restore_tuples(part["text"], schema)}
    return part


def _restore_item(item: Any, schema: dict[str, Any]) -> Any:
    if isinstance(item, dict) and item.get("type") == "message" and isinstance(item.get("content"), list):
        return {**item, "content": [_restore_part(part, schema) for part in item["content"]]}
    return item


def restore_response_text(response: Any, schema: dict[str, Any]) -> Any:
    """A response object with its output_text parts run through `restore_tuples`."""
    if not isinstance(response, dict) or not isinstance(response.get("output"), list):
        return response
    return {**response, "output": [_restore_item(item, schema) for item in response["output"]]}


def _restore_event_text(data: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Every place a finished text appears in an event, with tuples restored."""
    kind = data.get("type")
    if kind == "response.output_text.done" and isinstance(data.get("text"), str):
        return {**data, "text": restore_tuples(data["text"], schema)}
    if kind == "response.content_part.done":
        return {**data, "part": _restore_part(data.get("part"), schema)}
    if kind == "response.output_item.done":
        return {**data, "item": _restore_item(data.get("item"), schema)}
    if kind in ("response.completed", "response.incomplete"):
        return {**data, "response": restore_response_text(data.get("response"), schema)}
    return data


# ---- non-streaming -----------------------------------------------------------------------------------------------

def encode_response(turn: Turn, events: Iterable[CodexEvent], meta: ResponseMeta) -> dict[str, Any]:
    """`stream:false`: the final `response` object, with `output` rebuilt from the items when the terminal event
    carries none. A failed response raises GatewayError; an incomplete one is returned as is (status incomplete)."""
    items: list[dict[str, Any]] = []
    text: list[str] = []
    final: dict[str, Any] | None = None
    for event in events:
        if event.type == "response.output_item.done" and isinstance(event.data.get("item"), dict):
            items.append(event.data["item"])
        elif event.type == "response.output_text.delta" and isinstance(event.data.get("delta"), str):
            text.append(event.data["delta"])
        elif event.type in ("response.completed", "response.incomplete"):
            final = dict(event.data.get("response") or {})
            break
        elif event.type in ("response.failed", "error"):
            code, message = error_fields(event.data)
            raise error_from_failed(Failed(code, message))
    if final is None:
        raise GatewayError(502, "Upstream stream closed before response.completed. Retry the request.",
                           ErrorKind.UPSTREAM, code="stream_disconnected")
    if not final.get("output"):
        if items:
            final["output"] = items
        elif text:
            final["output"] = [{"type": "message", "role": "assistant", "status": "completed",
                                "content": [{"type": "output_text", "text": "".join(text), "annotations": []}]}]
        else:
            final["output"] = []
    final.setdefault("id", meta.id)
    final.setdefault("object", "response")
    final.setdefault("created_at", meta.created)
    final.setdefault("model", meta.model)
    tuple_schema = turn.options.get(OPT_TUPLE_SCHEMA)
    if tuple_schema is not None:
        final = restore_response_text(final, tuple_schema)
    return final


def encode_error(err: GatewayError) -> tuple[int, dict[str, Any]]:
    """Same envelope as Chat (`{"error": {message, type, param, code}}`): the official Responses API uses it."""
    return _openai_error(err)


# ---- WebSocket downstream (`GET /v1/responses` upgraded) ----------------------------------------------------------

def parse_ws_message(text: str | bytes) -> Turn:
    """One client text frame (`{"type":"response.create", ...body}`) → Turn (always streaming)."""
    data = load_openai_json_object(text.encode() if isinstance(text, str) else text)
    if data.get("type") != "response.create":
        raise invalid_request(f"Unsupported WebSocket message type {orjson.dumps(data.get('type')).decode()}: send "
                              "'response.create'.", param="type", code="unsupported_message_type")
    body = {k: v for k, v in data.items() if k != "type"}
    turn = parse_body(body, default_stream=True)
    turn.stream = True
    return turn


def ws_error_message(err: GatewayError) -> str:
    """An error frame in the backend's own WebSocket shape (`{"type":"error","status_code",...}`), which Codex
    clients map back to an HTTP error with that status."""
    _, body = _openai_error(err)
    frame: dict[str, Any] = {"type": "error", "status_code": err.status,
                             "error": {"type": body["error"]["type"], "code": err.code, "message": err.message}}
    if err.param:
        frame["error"]["param"] = err.param
    if err.headers:
        frame["headers"] = dict(err.headers)
    return orjson.dumps(frame).decode()

