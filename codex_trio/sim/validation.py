"""Request rules of the real backend for `/codex/responses` bodies (pure).

Each check returns a `Rejection` (status + JSON body) or None. Sources: spec/upstream.md §4.1, §4.4 and
§6.1; the captured 0.169.0 and 0.171.0 bodies (fixtures/chatgpt-mode*) define what a valid request looks like,
so every key they use is accepted and any other key is refused. Bodies the spec quotes (`Unsupported parameter: X`,
`Store must be set to false`, `Stream must be set to true`, `No tool output found for function call X`, the
model-not-supported detail) are reproduced exactly; the wording of the other checks is the simulator's own,
in the OpenAI error envelope.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Keys a valid HTTP request body may carry (fixtures + spec/upstream.md §4.1).
HTTP_KEYS = frozenset({
    "model", "instructions", "input", "tools", "tool_choice", "parallel_tool_calls", "reasoning", "store",
    "stream", "stream_options", "include", "service_tier", "prompt_cache_key", "text", "client_metadata",
    "access_programs",
})
# WebSocket `response.create` frames add these.
WS_KEYS = HTTP_KEYS | {"type", "previous_response_id", "generate"}

_CALL_TYPES = {"function_call": "function_call_output", "custom_tool_call": "custom_tool_call_output",
               "local_shell_call": "local_shell_call_output"}
_OUTPUT_TYPES = {v: k for k, v in _CALL_TYPES.items()}


@dataclass(slots=True, frozen=True)
class Rejection:
    status: int
    body: dict[str, Any]


def detail(status: int, message: str) -> Rejection:
    return Rejection(status, {"detail": message})


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> Rejection:
    return Rejection(400, {"error": {"message": message, "type": "invalid_request_error", "param": param,
                                     "code": code}})


def check_body(body: Any, *, websocket: bool) -> Rejection | None:
    """Shape and parameter rules; the model, quota and history checks need more context and come later."""
    if not isinstance(body, dict):
        return detail(400, "Request body must be a JSON object")
    allowed = WS_KEYS if websocket else HTTP_KEYS
    for key in body:
        if key not in allowed:
            return detail(400, f"Unsupported parameter: {key}")
    if websocket and body.get("type") != "response.create":
        return invalid_request(f"Unsupported message type: {body.get('type')!r}", "type", "unsupported_message_type")
    if body.get("store") is not False:
        return detail(400, "Store must be set to false")
    if not websocket and body.get("stream") is not True:
        return detail(400, "Stream must be set to true")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return detail(400, "Model is required")
    if not isinstance(body.get("input"), list):
        return invalid_request("Invalid type for 'input': expected an array.", "input", "invalid_type")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        return invalid_request("Invalid type for 'instructions': expected a string.", "instructions", "invalid_type")
    if "tools" in body and not isinstance(body["tools"], list):
        return invalid_request("Invalid type for 'tools': expected an array.", "tools", "invalid_type")
    for item in body["input"]:
        if not isinstance(item, dict):
            return invalid_request("Invalid type for 'input[]': expected an object.", "input", "invalid_type")
    text = body.get("text")
    if text is not None and not isinstance(text, dict):
        return invalid_request("Invalid type for 'text': expected an object.", "text", "invalid_type")
    checks = (
        ("text.verbosity", (text or {}).get("verbosity"), ("low", "medium", "high")),
        ("service_tier", body.get("service_tier"), ("auto", "default", "flex", "priority")),
        ("tool_choice", body.get("tool_choice") if isinstance(body.get("tool_choice"), str) else None,
         ("none", "auto", "required")),
    )
    for param, value, allowed_values in checks:
        if value is not None and value not in allowed_values:
            return unsupported_value(param, value, allowed_values)
    return None


# ---- the two tool shapes ---------------------------------------------------------------------------------
# Classic models take client tools as top-level `tools`. responses-lite models (the GPT-6 family, declared by
# the `x-openai-internal-codex-responses-lite: true` header, or on a WebSocket by the client_metadata flag)
# take them as one leading `additional_tools` developer item whose namespaces hold them (the 0.171.0 captures:
# a `functions` namespace with the client's function/custom tools, then `clock`, `collaboration`, ...).
# Neither shape is accepted for the other kind of model.

LITE_HEADER = "x-openai-internal-codex-responses-lite"
LITE_FLAG = "ws_request_header_x_openai_internal_codex_responses_lite"
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_HOSTED_TOOL_TYPES = frozenset({"web_search", "web_search_preview", "image_generation", "file_search",
                                "code_interpreter", "local_shell", "tool_search", "mcp"})


def check_tool_shape(body: dict[str, Any], *, lite_model: bool, lite_declared: bool) -> Rejection | None:
    model = body.get("model")
    items = body.get("input") or []
    positions = [i for i, item in enumerate(items) if item.get("type") == "additional_tools"]
    if lite_declared and not lite_model:
        return invalid_request(f"The '{model}' model does not support responses-lite requests.", None,
                               "unsupported_value")
    if positions and not lite_declared:
        return invalid_request("Input items of type 'additional_tools' are only supported in responses-lite "
                               "requests.", "input", "invalid_value")
    if lite_model and body.get("tools"):
        return invalid_request(f"The '{model}' model takes tools in an 'additional_tools' input item, not in "
                               "'tools'.", "tools", "unsupported_parameter")
    if not positions:
        return None
    if positions != [0]:
        return invalid_request("'additional_tools' must be the first input item, and there may be only one.",
                               "input[0]", "invalid_value")
    return _check_additional_tools(items[0])


def _check_additional_tools(item: dict[str, Any]) -> Rejection | None:
    where = "input[0]"
    for key in item:
        if key not in ("type", "id", "role", "tools"):
            return invalid_request(f"Unknown parameter: '{where}.{key}'.", f"{where}.{key}", "unknown_parameter")
    if item.get("role") != "developer":
        return invalid_request(f"Invalid value for '{where}.role': 'additional_tools' items have the role "
                               "'developer'.", f"{where}.role", "invalid_value")
    if "id" in item and not (isinstance(item["id"], str) and item["id"].startswith("at_")):
        return invalid_request(f"Invalid '{where}.id': expected an ID that begins with 'at_'.", f"{where}.id",
                               "invalid_value")
    entries = item.get("tools")
    if not isinstance(entries, list):
        return invalid_request(f"Invalid type for '{where}.tools': expected an array.", f"{where}.tools",
                               "invalid_type")
    namespaces: set[str] = set()
    for n, entry in enumerate(entries):
        path = f"{where}.tools[{n}]"
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind == "namespace":
            name = entry.get("name")
            if not isinstance(name, str) or not _TOOL_NAME.match(name) or name in namespaces:
                return invalid_request(f"Invalid '{path}.name': a unique namespace name matching "
                                       f"{_TOOL_NAME.pattern} is required.", f"{path}.name", "invalid_value")
            namespaces.add(name)
            if not isinstance(entry.get("description"), str) or not isinstance(entry.get("tools"), list):
                return invalid_request(f"'{path}' needs a string 'description' and an array 'tools'.", path,
                                       "invalid_type")
            rejection = _check_namespace_tools(entry["tools"], f"{path}.tools")
            if rejection is not None:
                return rejection
        elif kind not in _HOSTED_TOOL_TYPES:
            return invalid_request(f"Invalid value for '{path}.type': {kind!r} cannot stand outside a namespace.",
                                   f"{path}.type", "invalid_value")
    return None


def _check_namespace_tools(tools: list[Any], where: str) -> Rejection | None:
    names: set[str] = set()
    for n, tool in enumerate(tools):
        path = f"{where}[{n}]"
        if not isinstance(tool, dict) or tool.get("type") not in ("function", "custom"):
            return invalid_request(f"Invalid value for '{path}.type': a namespace holds 'function' and 'custom' "
                                   "tools.", f"{path}.type", "invalid_value")
        name = tool.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            return invalid_request(f"Invalid '{path}.name': {name!r} does not match {_TOOL_NAME.pattern}.",
                                   f"{path}.name", "invalid_value")
        if name in names:
            return invalid_request(f"Duplicate tool name {name!r} in '{where}'.", f"{path}.name", "invalid_value")
        names.add(name)
        if tool["type"] == "function" and not isinstance(tool.get("parameters", {}), dict):
            return invalid_request(f"Invalid type for '{path}.parameters': expected an object.",
                                   f"{path}.parameters", "invalid_type")
    return None


def declared_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every tool a request declares, whichever shape: top-level `tools`, and the tools of a leading
    `additional_tools` item (namespace members flattened)."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    items = body.get("input") or []
    if items and isinstance(items[0], dict) and items[0].get("type") == "additional_tools":
        for entry in items[0].get("tools") or []:
            if isinstance(entry, dict) and entry.get("type") == "namespace":
                tools += [t for t in entry.get("tools") or [] if isinstance(t, dict)]
            elif isinstance(entry, dict):
                tools.append(entry)
    return tools


def check_effort(body: dict[str, Any], supported: list[str]) -> Rejection | None:
    """`reasoning.effort` must be one the model supports (the catalog's levels)."""
    reasoning = body.get("reasoning")
    if reasoning is None:
        return None
    if not isinstance(reasoning, dict):
        return invalid_request("Invalid type for 'reasoning': expected an object.", "reasoning", "invalid_type")
    effort = reasoning.get("effort")
    if effort is not None and effort not in supported:
        return Rejection(400, {"error": {
            "message": f"Unsupported value: 'reasoning.effort' does not support {effort!r} with this model. "
                       f"Supported values are: {_quoted(supported)}.",
            "type": "invalid_request_error", "param": "reasoning.effort", "code": "unsupported_value"}})
    return None


def unsupported_value(param: str, value: Any, allowed: tuple[str, ...]) -> Rejection:
    return invalid_request(f"Invalid value: {value!r}. Supported values are: {_quoted(list(allowed))}.", param,
                           "invalid_value")


def _quoted(values: list[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1] if len(quoted) > 1 else "".join(quoted)


def check_tool_pairs(history: list[dict[str, Any]]) -> Rejection | None:
    """Every tool call needs its output and every output its call (the real 400s)."""
    calls: dict[str, str] = {}
    answered: set[str] = set()
    for item in history:
        kind = item.get("type")
        call_id = item.get("call_id")
        if kind in _CALL_TYPES and isinstance(call_id, str):
            calls[call_id] = kind
        elif kind in _OUTPUT_TYPES:
            if call_id not in calls:
                return invalid_request(f"No tool call found for {kind.replace('_', ' ')} with call_id {call_id}.",
                                       "input")
            answered.add(call_id)
    for call_id, kind in calls.items():
        if call_id not in answered:
            return invalid_request(f"No tool output found for {kind.replace('_', ' ')} {call_id}.", "input")
    return None


def model_not_supported(model: str) -> Rejection:
    return detail(400, f"The '{model}' model is not supported when using Codex with a ChatGPT account.")
