"""Request validation shared by the adapters: type checks that name the offending parameter, and the option values
the backend takes. Two message styles: OpenAI's ("Invalid type for 'x': expected …") for the OpenAI-shaped
protocols, and "param: must be …" for Anthropic and Gemini. Sans-IO."""

from __future__ import annotations

from typing import Any

from codex_trio.errors import GatewayError, invalid_request

REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
SERVICE_TIERS = ("auto", "default", "flex", "priority", "fast", "scale")


def type_name(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def expect_type(value: Any, kind: type | tuple[type, ...], param: str, what: str) -> Any:
    """`value` if it has type `kind` (booleans are not numbers here), else OpenAI's 400 naming `param`."""
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple)
                                                                               else (kind,))):
        raise invalid_request(f"Invalid type for '{param}': expected {what}, but got {type_name(value)} instead.",
                              param=param, code="invalid_type")
    return value


def invalid_field(message: str, param: str) -> GatewayError:
    """A 400 for `param` in the "param: message" style."""
    return invalid_request(f"{param}: {message}", param=param)


def expect_field(value: Any, kind: type | tuple[type, ...], param: str, what: str) -> Any:
    """`value` if it has type `kind` (a boolean is no int), else `invalid_field(f"must be {what}", param)`."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise invalid_field(f"must be {what}", param)
    return value
