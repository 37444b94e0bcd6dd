"""Property: no body makes the Anthropic parser fail with anything but a 4xx GatewayError.

Bodies are generated well-formed and then corrupted at one random place (a value replaced by an awkward one,
or a key dropped), so the parser is exercised deep inside, not only at its first check.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codex_trio.errors import GatewayError
from codex_trio.protocols import anthropic, token_count
from codex_trio.turn import Turn

scalars = st.none() | st.booleans() | st.integers(-3, 70000) | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
# Values that trip careless code: unhashables where a string is expected, empty containers, bools as ints.
awkward = st.sampled_from([{}, [{}], [[]], {"a": {}}, [None], True, 0, -1, 1.5, "", "x", None]) | json_values

names = st.text("abcdefgh_", min_size=1, max_size=6)
text = st.text(max_size=10)
image_source = st.one_of(
    st.fixed_dictionaries({"type": st.just("base64"), "media_type": st.just("image/png"), "data": st.just("iVBO")}),
    st.fixed_dictionaries({"type": st.just("url"), "url": st.just("https://x.test/i.png")}))
signature = st.sampled_from([anthropic.encode_reasoning_signature("rs_1", "enc"), "ctr1.", "ctr1.$$.x", "EqQB"])
block = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": text}, optional={"cache_control": st.just({"type": "ephemeral"})}),
    st.fixed_dictionaries({"type": st.just("image"), "source": image_source}),
    st.fixed_dictionaries({"type": st.just("document"), "source": st.one_of(image_source, st.fixed_dictionaries(
        {"type": st.just("text"), "data": text}))}),
    st.fixed_dictionaries({"type": st.just("tool_use"), "id": names, "name": names, "input": json_values}),
    st.fixed_dictionaries({"type": st.just("tool_result"), "tool_use_id": names},
                          optional={"content": st.one_of(text, st.lists(st.fixed_dictionaries(
                              {"type": st.just("text"), "text": text}), max_size=2)), "is_error": st.booleans()}),
    st.fixed_dictionaries({"type": st.just("thinking"), "thinking": text, "signature": signature}),
    st.fixed_dictionaries({"type": st.just("redacted_thinking"), "data": signature}))
message = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system"]),
                                 "content": st.one_of(text, st.lists(block, max_size=4))})
tool = st.one_of(
    st.fixed_dictionaries({"name": names, "input_schema": st.just({"type": "object", "properties": {"a": {"type": "string"}}})},
                          optional={"description": text, "cache_control": st.just({"type": "ephemeral"})}),
    st.fixed_dictionaries({"type": st.just("web_search_20250305"), "name": st.just("web_search")}))
bodies = st.fixed_dictionaries({
    "model": names, "max_tokens": st.integers(1, 100), "messages": st.lists(message, min_size=1, max_size=4)}, optional={
    "system": st.one_of(text, st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": text}), max_size=3)),
    "tools": st.lists(tool, max_size=3),
    "tool_choice": st.one_of(
        st.fixed_dictionaries({"type": st.sampled_from(["auto", "any", "none"])},
                              optional={"disable_parallel_tool_use": st.booleans()}),
        st.fixed_dictionaries({"type": st.just("tool"), "name": names})),
    "thinking": st.one_of(st.fixed_dictionaries({"type": st.just("enabled"), "budget_tokens": st.integers(1, 30000)}),
                          st.fixed_dictionaries({"type": st.sampled_from(["adaptive", "disabled"])})),
    "output_config": st.fixed_dictionaries({"effort": st.sampled_from(["low", "medium", "high", "max"])}),
    "metadata": st.fixed_dictionaries({"user_id": st.sampled_from(["u1", '{"session_id": "s"}', "{bad"])}),
    "stop_sequences": st.lists(text, max_size=3), "stream": st.booleans(), "temperature": st.floats(0, 1)})


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            out += paths(inner, prefix + (key,))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            out += paths(inner, prefix + (i,))
    return out


@st.composite
def corrupted(draw, strategy):
    body = copy.deepcopy(draw(strategy))  # `just(...)` values are shared objects: never mutate them
    path = draw(st.sampled_from(paths(body)[1:] or [()]))
    if not path:
        return body
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(awkward)
    return body


def check(body: bytes) -> bool:
    try:
        turn = anthropic.parse_request(body)
    except GatewayError as error:
        assert 400 <= error.status < 500 and error.message
        assert anthropic.encode_error(error)[0] == 400
        return False
    assert isinstance(turn, Turn)
    orjson.dumps(turn.request)
    assert token_count.count_turn_tokens(turn, len) > 0
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies)
def test_well_formed_bodies_parse(body):
    assert check(orjson.dumps(body))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corrupted(bodies))
def test_corrupted_bodies(body):
    check(orjson.dumps(body))


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json(value):
    check(orjson.dumps(value))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes(data):
    check(data)
