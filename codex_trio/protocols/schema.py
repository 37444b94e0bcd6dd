"""Structured-output schemas, shared by every protocol (Chat json_schema, Responses text.format, Gemini responseSchema).

The backend runs structured outputs in strict mode, which needs `additionalProperties: false` on every object and
has no tuple (`prefixItems`) support. So before a schema goes upstream it is prepared:

1. tuples become objects keyed "0", "1", ... (all positions required), and
2. every object node that does not say otherwise gets `additionalProperties: false`.

When tuples were converted, the model answers with those objects; `restore_tuples` turns them back into arrays where
the client's schema had `prefixItems`, so the client gets what it asked for. Nothing is mutated in place.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import orjson

# Where JSON Schema nests subschemas (shared with the adapters that rewrite schemas, e.g. gemini.json_schema).
# Keys whose value is one subschema.
SUBSCHEMA_KEYS = ("items", "additionalItems", "contains", "not", "if", "then", "else", "propertyNames",
           "unevaluatedItems", "unevaluatedProperties")
# Keys whose value is a list of subschemas.
SUBSCHEMA_LIST_KEYS = ("prefixItems", "oneOf", "anyOf", "allOf")
# Keys whose value maps names to subschemas.
SUBSCHEMA_MAP_KEYS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_COMBINATORS = ("oneOf", "anyOf", "allOf")
# The Turn.options key under which every protocol keeps the client's original schema when tuples were converted;
# its presence tells the encoders to buffer the text and run it through `restore_tuples`.
OPT_TUPLE_SCHEMA = "tuple_schema"


@dataclass(frozen=True, slots=True)
class PreparedSchema:
    schema: dict[str, Any]  # what goes upstream
    original: dict[str, Any]  # the client's schema (for reverse mapping)
    has_tuples: bool  # True when the final text must go through `restore_tuples`


def prepare_schema(schema: dict[str, Any]) -> PreparedSchema:
    """Deep-copy `schema`, convert tuples, add `additionalProperties: false` to every object node."""
    work = copy.deepcopy(schema)
    has_tuples = _contains_tuples(work, set())
    if has_tuples:
        work = _convert_tuples(work)
    _close_objects(work, set())
    return PreparedSchema(work, schema, has_tuples)


def requires_every_property(schema: dict[str, Any]) -> bool:
    """True when every object node lists all its properties in `required`, as strict mode demands (protocols
    whose clients do not say `strict` themselves ask for it only then)."""
    return _requires_every_property(schema, set())


def _requires_every_property(node: Any, seen: set[int]) -> bool:
    if not isinstance(node, dict) or id(node) in seen:
        return True
    seen.add(id(node))
    if _is_object_node(node):
        properties = node.get("properties") if isinstance(node.get("properties"), dict) else {}
        required = node.get("required") or []
        # A malformed `required` (not a list of names) cannot demand strictness: it is the client's schema
        # error to report upstream, not ours to crash on.
        if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
            return False
        if set(required) != set(properties):
            return False
    return all(_requires_every_property(child, seen) for child in _children(node))


def _is_object_node(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind)


def _children(node: dict[str, Any]):
    for key in SUBSCHEMA_KEYS:
        child = node.get(key)
        if isinstance(child, dict):
            yield child
    for key in SUBSCHEMA_LIST_KEYS:
        children = node.get(key)
        if isinstance(children, list):
            yield from (c for c in children if isinstance(c, dict))
    for key in SUBSCHEMA_MAP_KEYS:
        children = node.get(key)
        if isinstance(children, dict):
            yield from (c for c in children.values() if isinstance(c, dict))


def _contains_tuples(node: Any, seen: set[int]) -> bool:
    if not isinstance(node, dict) or id(node) in seen:
        return False
    seen.add(id(node))
    if isinstance(node.get("prefixItems"), list):
        return True
    return any(_contains_tuples(child, seen) for child in _children(node))


def _close_objects(node: Any, seen: set[int]) -> None:
    if not isinstance(node, dict) or id(node) in seen:
        return
    seen.add(id(node))
    if _is_object_node(node) and "additionalProperties" not in node:
        node["additionalProperties"] = False
    for child in _children(node):
        _close_objects(child, seen)


def _convert_tuples(node: Any) -> Any:
    """Return a copy of `node` with every tuple replaced by an object with positional keys."""
    if isinstance(node, list):
        return [_convert_tuples(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _convert_tuples(value) if key not in ("enum", "const", "default", "examples") else value
                 for key, value in node.items()}
    positions = converted.get("prefixItems")
    if not isinstance(positions, list):
        return converted
    tuple_node: dict[str, Any] = {key: converted[key] for key in ("title", "description") if key in converted}
    tuple_node.update({
        "type": "object",
        "properties": {str(i): position for i, position in enumerate(positions)},
        "required": [str(i) for i in range(len(positions))],
        "additionalProperties": False,
    })
    return tuple_node


# ---- the reverse direction --------------------------------------------------------------------------------

def restore_tuples(text: str, original: dict[str, Any]) -> str:
    """Turn positional objects back into arrays where `original` has `prefixItems`; unparsable text passes as is."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    restored = _restore(value, original, original, 0)
    return orjson.dumps(restored).decode()


def _resolve_ref(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return node
    target: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, dict) or part not in target:
            return node
        target = target[part]
    return target if isinstance(target, dict) else node


def _restore(value: Any, schema: Any, root: dict[str, Any], depth: int) -> Any:
    if not isinstance(schema, dict) or depth > 64:
        return value
    schema = _resolve_ref(schema, root)
    positions = schema.get("prefixItems")
    if isinstance(positions, list) and isinstance(value, dict):
        return [_restore(value.get(str(i)), position, root, depth + 1) for i, position in enumerate(positions)]
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        properties = schema["properties"]
        value = {key: _restore(item, properties.get(key), root, depth + 1) for key, item in value.items()}
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value = [_restore(item, schema["items"], root, depth + 1) for item in value]
    for key in _COMBINATORS:
        branches = schema.get(key)
        if isinstance(branches, list):
            branch = next((b for b in branches if _contains_tuples(_resolve_ref(b, root) if isinstance(b, dict) else b,
                                                                   set())), None)
            if branch is not None:
                return _restore(value, branch, root, depth + 1)
    return value


def text_format(kind: str, *, name: str | None = None, prepared: PreparedSchema | None = None,
                strict: bool | None = None, description: str | None = None) -> dict[str, Any]:
    """The Codex `text.format` object for a JSON mode."""
    fmt: dict[str, Any] = {"type": kind}
    if kind == "json_schema":
        fmt["name"] = name or "output"
        if description is not None:
            fmt["description"] = description
        fmt["schema"] = prepared.schema if prepared else {}
        if strict is not None:
            fmt["strict"] = strict
    return fmt
