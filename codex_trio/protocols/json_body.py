"""Request bodies and tool arguments as JSON objects. Sans-IO.

`load_openai_json_object` words its refusal as OpenAI does (Chat Completions, Responses, Images);
`load_json_object` is the plainer form Anthropic and Gemini clients get."""

from __future__ import annotations

from typing import Any

import orjson

from codex_trio.errors import invalid_request
from codex_trio.protocols.validators import type_name


def load_openai_json_object(body: bytes) -> dict[str, Any]:
    """Parse a request body that must be one JSON object (OpenAI-style 400 otherwise)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise invalid_request("We could not parse the JSON body of your request. The body must be valid JSON "
                              "(check quoting and commas).", code="invalid_json") from None
    if not isinstance(data, dict):
        raise invalid_request(f"The request body must be a JSON object, not {type_name(data)}.", code="invalid_json")
    return data


def load_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid_request(f"The request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise invalid_request("The request body must be a JSON object.")
    return data


def parse_json_object(text: str) -> dict[str, Any]:
    """Tool arguments as an object ({} when the model produced nothing usable)."""
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
