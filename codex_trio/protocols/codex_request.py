"""Pieces of the canonical Codex request that several adapters build the same way: default instructions, client
function tools as the backend takes them, and the structured-output format over schema.py. Sans-IO."""

from __future__ import annotations

from typing import Any

from codex_trio.protocols.schema import OPT_TUPLE_SCHEMA, prepare_schema, requires_every_property, text_format

DEFAULT_INSTRUCTIONS = "You are a helpful assistant."


def function_tool(name: str, description: Any, parameters: Any) -> dict[str, Any]:
    """A client function tool as the backend takes it: name, description and parameters only (it rejects other
    fields)."""
    tool: dict[str, Any] = {"type": "function", "name": name}
    if isinstance(description, str):
        tool["description"] = description
    tool["strict"] = False
    tool["parameters"] = object_schema(parameters)
    return tool


def object_schema(schema: Any) -> dict[str, Any]:
    """Tool parameters: an object schema always has `properties` (the backend rejects one without)."""
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}}
    if schema.get("type") == "object" and not isinstance(schema.get("properties"), dict):
        return {**schema, "properties": {}}
    return schema


def structured_format(name: str, schema: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """The Codex `text.format` for a client's JSON schema Strict only when the schema
    allows it; when tuples were converted, the client's schema goes into `options` for the reverse mapping."""
    prepared = prepare_schema(schema)
    if prepared.has_tuples:
        options[OPT_TUPLE_SCHEMA] = prepared.original
    return text_format("json_schema", name=name, prepared=prepared,
                       strict=requires_every_property(prepared.schema))
