"""Request rules of the real backend for `/codex/responses` bodies (pure).

Each check returns a `Rejection` (status + JSON body) or None. Sources: spec/upstream.md §4.1, §4.4 and
§6.1; the captured 0.169.0 bodies (fixtures/chatgpt-mode) define what a valid request looks like, so every
key they use is accepted and any other key is refused. Bodies the spec quotes (`Unsupported parameter: X`,
`Store must be set to false`, `Stream must be set to true`, `No tool output found for function call X`, the
model-not-supported detail) are reproduced exactly; the wording of the other checks is the simulator's own,
in the OpenAI error envelope.
"""

from __future__ import annotations

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
