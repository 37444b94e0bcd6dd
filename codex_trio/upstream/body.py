"""Request bodies as Codex CLI 0.169.0 and 0.171.0 serialise them (spec/chatgpt-mode.md §4, §5, §7; the body
rules did not change in 0.171.0, spec/codex-0.171.md).

Input: the canonical Codex request of a `Turn` (`Turn.request`, any key order, possibly carrying fields the
backend rejects) plus the identity and the thread/turn values. Output: a dict in the real client's field
order (serde struct order), which `encode_json` turns into the compact bytes that client sends. The rules
applied here are the gateway's, not the adapters': store:false, stream:true, encrypted reasoning included,
the thread's prompt_cache_key, client_metadata as codex builds it, previous_response_id only on WebSocket.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlencode

import hashlib

import orjson
import zstandard

from codex_trio.upstream.context import ModelTraits, ThreadContext, TurnContext
from codex_trio.upstream.headers import turn_metadata
from codex_trio.upstream.identity import Identity

Transport = Literal["http", "websocket"]

# Top-level order of a `/codex/responses` body / `response.create` frame. Everything not listed is dropped
# (the backend answers unknown parameters with 400 "Unsupported parameter"). `instructions` and
# `service_tier` were not in the captures; their places follow the codex-rs request struct.
RESPONSES_FIELD_ORDER = (
    "type", "model", "stream", "previous_response_id", "instructions", "input", "tools", "tool_choice",
    "parallel_tool_calls", "reasoning", "store", "include", "service_tier", "prompt_cache_key", "text",
    "generate", "client_metadata",
)
COMPACT_FIELD_ORDER = ("model", "input", "instructions", "tools", "parallel_tool_calls", "reasoning", "text")
ENCRYPTED_REASONING = "reasoning.encrypted_content"
_REASONING_ORDER = ("effort", "summary", "context")
_TEXT_ORDER = ("verbosity", "format")
_TEXT_FORMAT_ORDER = ("type", "strict", "schema", "name")


def _ordered(source: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    """Known keys in `order`, then any others in their given order (nested objects the backend owns)."""
    out = {k: source[k] for k in order if k in source}
    out.update((k, v) for k, v in source.items() if k not in out)
    return out


def _text(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    text = _ordered(value, _TEXT_ORDER)
    if isinstance(text.get("format"), dict):
        text["format"] = _ordered(text["format"], _TEXT_FORMAT_ORDER)
    return text


def reasoning_effort_of(request: dict[str, Any]) -> str | None:
    reasoning = request.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    return effort if isinstance(effort, str) else None


def instructions_message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": text}]}


def with_instructions_in_input(request: dict[str, Any], identity: Identity) -> dict[str, Any]:
    """`request` as codex (0.169.0 and 0.171.0) shapes it: base instructions become the first developer message (after a
    leading `additional_tools` item). Idempotent; returns `request` itself when there is nothing to move."""
    instructions = request.get("instructions")
    if not identity.instructions_as_message or "instructions" not in request:
        return request
    moved = {k: v for k, v in request.items() if k != "instructions"}
    if isinstance(instructions, str) and instructions:
        items = list(request.get("input") or [])
        at = 1 if items and isinstance(items[0], dict) and items[0].get("type") == "additional_tools" else 0
        items.insert(at, instructions_message(instructions))
        moved["input"] = items
    return moved


# ---- tools of responses-lite models ----------------------------------------------------------------------

ADDITIONAL_TOOLS = "additional_tools"
FUNCTIONS_NAMESPACE = "functions"
_NAMESPACED_TYPES = ("function", "custom")  # what the `functions` namespace holds; other types stand beside it


def is_additional_tools(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == ADDITIONAL_TOOLS


def additional_tools_id(thread: ThreadContext, tools: list[Any]) -> str:
    """`at_<uuidv7>` like codex's: the thread's timestamp, the rest derived from the thread and the tools, so
    every turn of a conversation repeats the same item (prompt cache, WebSocket chaining) until its tools
    change."""
    digest = hashlib.sha256(thread.thread_id.encode() + encode_json(tools)).digest()
    stamp = thread.thread_id.replace("-", "")[:12]
    rand = digest.hex()
    value = f"{stamp}7{rand[:3]}{(int(rand[3], 16) & 0x3) | 0x8:x}{rand[4:19]}"
    return f"at_{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:32]}"


def with_lite_tools(request: dict[str, Any], thread: ThreadContext, traits: ModelTraits) -> dict[str, Any]:
    """For a responses-lite model, `request` with its top-level `tools` moved into the leading
    `additional_tools` input item (see `lite_tool_input`). Idempotent; classic models keep their `tools`."""
    if not traits.responses_lite:
        return request
    tools = request.get("tools") if isinstance(request.get("tools"), list) else []
    items = list(request.get("input") or [])
    if not tools and not (items and is_additional_tools(items[0])):
        return {k: v for k, v in request.items() if k != "tools"} if "tools" in request else request
    shaped = {k: v for k, v in request.items() if k != "tools"}
    shaped["input"] = lite_tool_input(items, tools, thread)
    return shaped


def lite_tool_input(items: list[Any], tools: list[Any], thread: ThreadContext) -> list[Any]:
    """`items` with the client's `tools` where responses-lite models take them (the 0.171.0 captures): one
    leading `additional_tools` developer item whose `functions` namespace holds the function and custom
    tools; namespaces and hosted tools stand beside it. A leading item the client already sent (a Codex CLI
    behind the gateway) is kept, and the tools are added to it."""
    items = list(items)
    existing = items.pop(0) if items and is_additional_tools(items[0]) else None
    entries = [dict(e) if isinstance(e, dict) else e for e in (existing or {}).get("tools") or []]
    if not tools and existing is None:
        return items
    namespace = next((e for e in entries if isinstance(e, dict) and e.get("type") == "namespace"
                      and e.get("name") == FUNCTIONS_NAMESPACE), None)
    functions = [t for t in tools if isinstance(t, dict) and t.get("type") in _NAMESPACED_TYPES]
    others = [t for t in tools if not (isinstance(t, dict) and t.get("type") in _NAMESPACED_TYPES)]
    if functions:
        if namespace is None:
            namespace = {"type": "namespace", "name": FUNCTIONS_NAMESPACE, "description": "", "tools": []}
            entries.insert(0, namespace)
        present = list(namespace.get("tools") or [])
        names = {t.get("name") for t in present if isinstance(t, dict)}
        namespace["tools"] = [*present, *(t for t in functions if t.get("name") not in names)]
    entries += [t for t in others if t not in entries]
    item = {"type": ADDITIONAL_TOOLS, "id": (existing or {}).get("id") or additional_tools_id(thread, entries),
            "role": "developer", "tools": entries}
    return [item, *items]


def prewarm_input(request: dict[str, Any], traits: ModelTraits) -> list[dict[str, Any]]:
    """What codex's prewarm frame carries as input: nothing for responses-lite models; for classic models the
    leading base-instructions developer message. `request` must already be shaped by
    `with_instructions_in_input`."""
    items = list(request.get("input") or [])
    if traits.responses_lite or not items:
        return []
    first = items[0]
    is_developer = isinstance(first, dict) and first.get("role") == "developer" and first.get("type", "message") == "message"
    return [first] if is_developer else []


# What the real client adds to its client_metadata besides its fixed keys (a sub-agent's kind, its parent).
CLIENT_METADATA_KEYS = frozenset({"x-openai-subagent", "x-codex-parent-thread-id"})


def client_metadata(identity: Identity, thread: ThreadContext, turn: TurnContext | None, *, model: str,
                    reasoning_effort: str | None, transport: Transport, traits: ModelTraits,
                    ws_request_start_ms: int | None = None, client: Any = None) -> dict[str, str]:
    """codex's client_metadata (string values). The real client builds it from a hash map, so its key order
    changes between runs; this is one fixed order. `turn=None` is the prewarm form.

    `client`: the metadata a Responses client sent. Of it, codex's map only ever holds the keys the real
    client itself adds for sub-agents (`CLIENT_METADATA_KEYS`, spec/upstream.md §4.1), so those are merged
    (string values) and everything else is dropped: a key no real client sends would single the gateway out.
    codex's own keys always win, so a client (a Codex CLI behind the gateway, say) cannot put a second
    installation or thread id next to ours."""
    meta = {k: v for k, v in client.items() if k in CLIENT_METADATA_KEYS and isinstance(v, str)} \
        if isinstance(client, dict) else {}
    meta.update({
        "x-codex-installation-id": thread.installation_id,
        "x-codex-window-id": thread.window_id,
        "x-codex-turn-metadata": turn_metadata(identity, thread, turn, model=model, reasoning_effort=reasoning_effort,
                                               traits=traits),
        "session_id": thread.thread_id,
        "thread_id": thread.thread_id,
        "turn_id": turn.turn_id if turn else "",
    })
    if turn:
        meta["root_turn_id"] = turn.root
    meta["guardian_credits_requested"] = "true"
    meta["mcp_attribution"] = '{"status":"none"}'
    if transport == "websocket":
        if ws_request_start_ms is None:
            raise ValueError("a WebSocket frame needs ws_request_start_ms")
        meta["x-codex-ws-stream-request-start-ms"] = str(ws_request_start_ms)
        if traits.responses_lite:
            meta["ws_request_header_x_openai_internal_codex_responses_lite"] = "true"
    return meta


def responses_body(request: dict[str, Any], identity: Identity, thread: ThreadContext, turn: TurnContext | None, *,
                   transport: Transport = "http", traits: ModelTraits = ModelTraits(),
                   previous_response_id: str | None = None, prewarm: bool = False,
                   ws_request_start_ms: int | None = None) -> dict[str, Any]:
    """The body of `POST /codex/responses` (transport "http") or a `response.create` frame ("websocket").

    `request` is not modified. `previous_response_id` is taken from the argument, never from `request`,
    and only on WebSocket (the HTTP endpoint rejects it). `prewarm` makes the `generate:false` frame (its
    metadata has no turn, so `turn` may be None)."""
    if transport == "http" and (previous_response_id or prewarm):
        raise ValueError("previous_response_id and prewarm exist only on the WebSocket transport")
    if not prewarm and turn is None:
        raise ValueError("a turn request needs a TurnContext")
    request = with_instructions_in_input(request, identity)
    model = request.get("model")
    if not isinstance(model, str) or not model:
        raise ValueError("request has no model")
    effort = reasoning_effort_of(request)
    body: dict[str, Any] = {}
    if transport == "websocket":
        body["type"] = "response.create"
    body["model"] = model
    body["stream"] = True
    if previous_response_id:
        body["previous_response_id"] = previous_response_id
    instructions = request.get("instructions")
    if isinstance(instructions, str) and instructions:
        body["instructions"] = instructions
    if not prewarm:
        request = with_lite_tools(request, thread, traits)
    body["input"] = list(request.get("input") or [])
    tools = request.get("tools")
    # responses-lite models take tools as an input item (above); codex's lite prewarm carries none at all
    if tools and not traits.responses_lite:
        body["tools"] = tools
    body["tool_choice"] = request.get("tool_choice") or "auto"
    parallel = request.get("parallel_tool_calls")
    # codex sends the model's capability unless the caller decided.
    body["parallel_tool_calls"] = parallel if isinstance(parallel, bool) else traits.parallel_tool_calls
    reasoning = request.get("reasoning")
    if isinstance(reasoning, dict) and reasoning:
        body["reasoning"] = _ordered(reasoning, _REASONING_ORDER)
    body["store"] = False
    include = [v for v in (request.get("include") or []) if isinstance(v, str)]
    if "reasoning" in body and ENCRYPTED_REASONING not in include:
        include.append(ENCRYPTED_REASONING)
    if include:
        body["include"] = list(dict.fromkeys(include))
    tier = request.get("service_tier")
    if isinstance(tier, str) and tier and tier not in ("auto", "default"):
        body["service_tier"] = "priority" if tier == "fast" else tier
    body["prompt_cache_key"] = thread.thread_id
    if request.get("text"):
        body["text"] = _text(request["text"])
    if prewarm:
        body["generate"] = False
    body["client_metadata"] = client_metadata(
        identity, thread, None if prewarm else turn, model=model, reasoning_effort=effort, transport=transport,
        traits=traits, ws_request_start_ms=ws_request_start_ms, client=request.get("client_metadata"))
    return {k: body[k] for k in RESPONSES_FIELD_ORDER if k in body}


def chained_frame(frame: dict[str, Any], input_items: list[Any], previous_response_id: str) -> dict[str, Any]:
    """A `response.create` frame that `responses_body` built without a previous response, now carrying only
    `input_items` on top of `previous_response_id`: what `responses_body` returns for those arguments, without
    building the whole frame a second time (everything else in it does not depend on them)."""
    chained = {**frame, "input": input_items, "previous_response_id": previous_response_id}
    return {k: chained[k] for k in RESPONSES_FIELD_ORDER if k in chained}


def compact_body(request: dict[str, Any]) -> dict[str, Any]:
    """`POST /codex/responses/compact`: no stream/store/metadata (spec/upstream.md §4.6; not captured)."""
    body = {k: request[k] for k in COMPACT_FIELD_ORDER if request.get(k) not in (None, "", [])}
    if "model" not in body:
        raise ValueError("request has no model")
    body.setdefault("input", [])
    if isinstance(body.get("text"), dict):
        body["text"] = _text(body["text"])
    return body


# ---- serialisation -------------------------------------------------------------------------------------


def encode_json(value: Any) -> bytes:
    """Compact JSON in insertion order, non-ASCII as is: byte-identical to serde_json's output."""
    return orjson.dumps(value)


def zstd_compress(data: bytes, level: int = 3) -> bytes:
    """A single zstd frame as codex's streaming encoder writes it: no checksum, no content size, and the
    level's full window (2 MiB at level 3; a one-shot compress would shrink it to the input size)."""
    stream = zstandard.ZstdCompressor(level=level, write_checksum=False, write_content_size=False).compressobj()
    return stream.compress(data) + stream.flush()


def responses_request_bytes(body: dict[str, Any], identity: Identity, *, compress: bool = True) -> bytes:
    raw = encode_json(body)
    return zstd_compress(raw, identity.zstd_level) if compress else raw


def ws_frame_text(body: dict[str, Any]) -> str:
    return encode_json(body).decode()


# ---- auth.openai.com bodies ------------------------------------------------------------------------------

class RefreshReason(StrEnum):
    """Why a refresh is made; sent as `refresh_reason`, and it decides the headers (refresh_headers)."""
    PROACTIVE_EXPIRY = "proactive_expiry"
    UNAUTHORIZED_RECOVERY = "unauthorized_recovery"


def refresh_body(identity: Identity, refresh_token: str, reason: RefreshReason) -> bytes:
    return encode_json({"client_id": identity.oauth_client_id, "grant_type": "refresh_token",
                        "refresh_reason": reason, "refresh_token": refresh_token})


def authorization_code_body(identity: Identity, code: str, redirect_uri: str, code_verifier: str) -> bytes:
    return urlencode([("grant_type", "authorization_code"), ("client_id", identity.oauth_client_id), ("code", code),
                      ("redirect_uri", redirect_uri), ("code_verifier", code_verifier)]).encode()


def api_key_exchange_body(identity: Identity, id_token: str) -> bytes:
    return urlencode([
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"), ("client_id", identity.oauth_client_id),
        ("requested_token", "openai-api-key"), ("subject_token", id_token),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
    ]).encode()


def device_usercode_body(identity: Identity) -> bytes:
    return encode_json({"client_id": identity.oauth_client_id})


def device_token_body(device_auth_id: str, user_code: str) -> bytes:
    return encode_json({"device_auth_id": device_auth_id, "user_code": user_code})


def mcp_initialize_body(identity: Identity, request_id: int = 0) -> bytes:
    return encode_json({"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {"elicitation": {"form": {}, "url": {}}},
        "clientInfo": {"name": "codex-mcp-client", "title": "Codex", "version": identity.version}}})
