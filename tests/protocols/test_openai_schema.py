"""Structured-output schema preparation (additionalProperties, tuples) and the reverse mapping of the answer."""

from __future__ import annotations

import copy

import orjson

from codex_trio.protocols.schema import prepare_schema, restore_tuples


def test_additional_properties_everywhere_never_overwritten_input_untouched():
    schema = {"type": "object", "properties": {
        "a": {"type": "object", "properties": {"b": {"type": "object"}}},
        "open": {"type": "object", "additionalProperties": True},
        "list": {"type": "array", "items": {"type": "object"}},
        "either": {"anyOf": [{"type": "object"}, {"type": "string"}]},
        "neg": {"not": {"type": "object"}},
        "nullable": {"type": ["object", "null"]}},
        "$defs": {"D": {"type": "object"}}, "definitions": {"E": {"type": "object"}}}
    before = copy.deepcopy(schema)
    prepared = prepare_schema(schema)
    assert schema == before and not prepared.has_tuples
    out = prepared.schema
    assert out["additionalProperties"] is False
    assert out["properties"]["a"]["additionalProperties"] is False
    assert out["properties"]["a"]["properties"]["b"]["additionalProperties"] is False
    assert out["properties"]["open"]["additionalProperties"] is True
    assert out["properties"]["list"]["items"]["additionalProperties"] is False
    assert out["properties"]["either"]["anyOf"][0]["additionalProperties"] is False
    assert "additionalProperties" not in out["properties"]["either"]["anyOf"][1]
    assert out["properties"]["neg"]["not"]["additionalProperties"] is False
    assert out["properties"]["nullable"]["additionalProperties"] is False
    assert out["$defs"]["D"]["additionalProperties"] is False
    assert out["definitions"]["E"]["additionalProperties"] is False


def test_tuple_conversion_nested_and_in_defs():
    schema = {"type": "object", "properties": {
        "point": {"type": "array", "description": "x,y", "prefixItems": [{"type": "number"}, {"type": "number"}],
                  "items": False},
        "nested": {"type": "array", "prefixItems": [{"type": "array", "prefixItems": [{"type": "string"}]}]},
        "many": {"type": "array", "items": {"$ref": "#/$defs/Pair"}},
        "empty": {"type": "array", "prefixItems": []}},
        "$defs": {"Pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]}}}
    prepared = prepare_schema(schema)
    assert prepared.has_tuples
    props = prepared.schema["properties"]
    assert props["point"] == {"description": "x,y", "type": "object", "properties": {"0": {"type": "number"},
                                                                                   "1": {"type": "number"}},
                              "required": ["0", "1"], "additionalProperties": False}
    assert props["nested"]["properties"]["0"]["properties"] == {"0": {"type": "string"}}
    assert props["empty"] == {"type": "object", "properties": {}, "required": [], "additionalProperties": False}
    assert prepared.schema["$defs"]["Pair"]["required"] == ["0", "1"]

    answer = {"point": {"0": 1.5, "1": 2}, "nested": {"0": {"0": "deep"}},
              "many": [{"0": "a", "1": 1}, {"0": "b"}], "empty": {}}
    restored = orjson.loads(restore_tuples(orjson.dumps(answer).decode(), schema))
    assert restored == {"point": [1.5, 2], "nested": [["deep"]], "many": [["a", 1], ["b", None]], "empty": []}


def test_restore_top_level_and_combinators_and_garbage():
    top = {"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}]}
    assert prepare_schema(top).schema["type"] == "object"
    assert restore_tuples('{"0":"x","1":true}', top) == '["x",true]'
    union = {"oneOf": [{"type": "string"}, {"type": "array", "prefixItems": [{"type": "integer"}]}]}
    assert restore_tuples('{"0":3}', union) == "[3]"
    assert restore_tuples("not json {", top) == "not json {"
    assert restore_tuples('{"0":"x"}', {"type": "object"}) == '{"0":"x"}'
