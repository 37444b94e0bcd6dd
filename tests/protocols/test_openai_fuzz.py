"""Property tests: no input makes a parser raise anything but a 4xx GatewayError, or return anything but a Turn.
The stop-sequence scanner is checked against the obvious non-streaming definition."""

from __future__ import annotations

import orjson
from hypothesis import given, settings, strategies as st

from codex_trio.errors import GatewayError
from codex_trio.protocols import images, openai_chat, responses
from codex_trio.turn import Turn

json_scalars = st.none() | st.booleans() | st.integers(-3, 5) | st.floats(allow_nan=False) | st.text(max_size=8)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=20)

ROLES = st.sampled_from(["system", "developer", "user", "assistant", "tool", "function", "x"])
PART = st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", "file", "refusal", "input_audio"])},
                             optional={"text": json_values, "image_url": json_values, "file": json_values,
                                       "refusal": json_values})
MESSAGE = st.fixed_dictionaries({"role": ROLES}, optional={
    "content": st.none() | st.text(max_size=5) | st.lists(PART, max_size=3) | json_values,
    "tool_calls": st.lists(st.fixed_dictionaries({}, optional={
        "id": json_values, "type": st.sampled_from(["function", "custom"]),
        "function": st.fixed_dictionaries({}, optional={"name": json_values, "arguments": json_values}),
        "custom": json_values}), max_size=2) | json_values,
    "tool_call_id": json_values, "function_call": json_values, "name": json_values})
CHAT_BODY = st.fixed_dictionaries({}, optional={
    "model": st.just("gpt-5.4") | json_values,
    "messages": st.lists(MESSAGE, max_size=4) | json_values,
    "tools": st.lists(st.fixed_dictionaries({"type": st.sampled_from(
        ["function", "custom", "web_search", "image_generation", "other"])}, optional={
        "function": json_values, "size": json_values, "output_format": json_values,
        "output_compression": json_values, "name": json_values}), max_size=2) | json_values,
    "tool_choice": json_values, "response_format": json_values, "stop": json_values, "n": json_values,
    "reasoning_effort": json_values, "service_tier": json_values, "stream": json_values,
    "stream_options": json_values, "temperature": json_values, "user": json_values, "functions": json_values,
    "parallel_tool_calls": json_values, "verbosity": json_values, "web_search_options": json_values,
    "input": st.text(max_size=4) | st.lists(st.fixed_dictionaries({"type": st.sampled_from(
        ["message", "reasoning", "compaction", "function_call"])}, optional={"id": json_values,
                                                                           "summary": json_values}), max_size=3)
    | json_values, "instructions": json_values, "reasoning": json_values,
})


def check(parse, body: bytes) -> None:
    try:
        result = parse(body)
    except GatewayError as err:
        assert 400 <= err.status < 500 and err.message
        return
    assert isinstance(result, Turn)
    orjson.dumps(result.request)  # always serialisable


@settings(max_examples=400, deadline=None)
@given(CHAT_BODY)
def test_chat_parser_total(body):
    check(openai_chat.parse_request, orjson.dumps(body))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64) | json_values.map(orjson.dumps))
def test_parsers_survive_arbitrary_bytes(raw):
    check(openai_chat.parse_request, raw)
    check(responses.parse_request, raw)
    check(responses.parse_compact_request, raw)
    check(lambda b: images.parse_generations_request(b, host_model="gpt-5.5"), raw)


RESPONSES_BODY = st.fixed_dictionaries({"model": st.just("gpt-5.4") | json_values}, optional={
    "input": st.text(max_size=5) | st.lists(st.fixed_dictionaries({"type": st.sampled_from(
        ["message", "reasoning", "compaction", "function_call"])}, optional={
        "id": json_values, "summary": json_values, "encrypted_content": json_values, "content": json_values}),
        max_size=3) | json_values,
    "text": json_values, "reasoning": json_values, "tools": json_values, "include": json_values,
    "stream": json_values, "service_tier": json_values, "background": json_values, "client_metadata": json_values,
})


@settings(max_examples=300, deadline=None)
@given(RESPONSES_BODY)
def test_responses_parser_total(body):
    check(responses.parse_request, orjson.dumps(body))
    check(responses.parse_ws_message, orjson.dumps({"type": "response.create", **body}))


IMAGE_BODY = st.fixed_dictionaries({"prompt": st.text(max_size=5) | json_values}, optional={
    "size": st.sampled_from(["auto", "1024x1024", "3840x2160", "16x16", "3072x3072", "1x1024", "ax b"]) | json_values,
    "output_format": json_values, "output_compression": json_values, "background": json_values,
    "moderation": json_values, "partial_images": json_values, "n": json_values, "response_format": json_values,
    "model": json_values, "quality": json_values, "images": json_values, "image": json_values,
})


@settings(max_examples=300, deadline=None)
@given(IMAGE_BODY)
def test_image_parsers_total(body):
    raw = orjson.dumps(body)
    check(lambda b: images.parse_generations_request(b, host_model="gpt-5.5"), raw)
    check(lambda b: images.parse_edits_request(b, host_model="gpt-5.5"), raw)
    check(lambda b: images.parse_analysis_request(b, default_model="gpt-5.5"), raw)
