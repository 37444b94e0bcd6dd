"""Property: no body makes the Anthropic parser fail with anything but a 4xx GatewayError.

Bodies are generated well-formed and then corrupted at one random place (a value replaced by an awkward one,
or a key dropped), so the parser is exercised deep inside, not only at its first check.
"""

from __future__ import annotations


import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codex_trio.errors import GatewayError
from codex_trio.protocols import anthropic, token_count
from codex_trio.protocols.meta import ResponseMeta
from codex_trio.protocols.reasoning import encode_reasoning_signature
from codex_trio.turn import Turn
from codex_trio.upstream import events as ev
from tests.protocols.helpers import corrupted, json_values

names = st.text("abcdefgh_", min_size=1, max_size=6)
text = st.text(max_size=10)
image_source = st.one_of(
    st.fixed_dictionaries({"type": st.just("base64"), "media_type": st.just("image/png"), "data": st.just("iVBO")}),
    st.fixed_dictionaries({"type": st.just("url"), "url": st.just("https://x.test/i.png")}))
signature = st.sampled_from([encode_reasoning_signature("rs_1", "enc"), "ctr1.", "ctr1.$$.x", "EqQB"])
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


# ---- the encoder keeps Anthropic's stream grammar for any event order -----------------------------------------


call_ids = st.sampled_from(["call_a", "call_b"])
normalized = st.one_of(
    st.builds(ev.ResponseStarted, st.just("resp"), st.none()),
    st.builds(ev.TextDelta, st.just("msg"), st.just(0), st.text(min_size=1, max_size=6)),
    st.builds(ev.ReasoningDelta, st.sampled_from(["rs_1", "rs_2"]), st.integers(0, 1), st.text(min_size=1, max_size=4)),
    st.builds(ev.ReasoningDone, st.fixed_dictionaries({"type": st.just("reasoning"), "id": st.sampled_from(["rs_1", "rs_2"]),
                                                       "encrypted_content": st.sampled_from(["enc", None])})),
    st.builds(ev.ToolCallStarted, st.sampled_from(["fc_a", "fc_b"]), call_ids, st.just("f"),
              st.sampled_from(["function", "custom"]), st.just(0)),
    st.builds(ev.ToolCallDelta, call_ids, st.sampled_from(['{"a"', ':1}', "x"])),
    st.builds(lambda c, k: ev.ToolCallDone(c, "f", '{"a":1}', k, {}), call_ids, st.sampled_from(["function", "custom"])),
    st.builds(lambda i: ev.ImageGenerated(i, "QUJD", None, "png", {}), st.sampled_from(["ig_1", "ig_2"])),
)
terminal = st.one_of(
    st.builds(lambda r: ev.Completed({}, ev.Usage(10, 5, 3), r), st.sampled_from([None, "max_output_tokens"])),
    st.just(ev.Failed("server_error", "boom")), st.none())


def assert_grammar(data: bytes) -> None:
    events = []
    for block in data.decode().split("\n\n")[:-1]:
        name, payload = block.split("\n")
        events.append(orjson.loads(payload[6:]))
        assert name == "event: " + events[-1]["type"]
    assert events[0]["type"] in ("message_start", "error")
    kinds: dict[int, str] = {}
    open_blocks: set[int] = set()
    for event in events[1:-1]:
        if event["type"] == "content_block_start":
            assert event["index"] == len(kinds)
            kinds[event["index"]] = event["content_block"]["type"]
            open_blocks.add(event["index"])
        elif event["type"] == "content_block_delta":
            assert event["index"] in open_blocks
            expected = {"text": {"text_delta"}, "thinking": {"thinking_delta", "signature_delta"},
                        "tool_use": {"input_json_delta"}}[kinds[event["index"]]]
            assert event["delta"]["type"] in expected
        elif event["type"] == "content_block_stop":
            open_blocks.remove(event["index"])
        else:
            assert event["type"] == "message_delta", f"unexpected {event['type']} inside the message"
            assert not open_blocks
    assert events[-1]["type"] in ("message_stop", "error")
    if events[-1]["type"] == "message_stop":
        assert events[-2]["type"] == "message_delta"


@settings(max_examples=400, deadline=None)
@given(st.lists(normalized, max_size=12), terminal, st.booleans(), st.lists(st.sampled_from(["ab", "x"]), max_size=2))
def test_stream_grammar(events, end, expose, stops):
    turn = Turn(request={}, requested_model="m", expose_reasoning=expose, stop_sequences=stops)
    encoder = anthropic.StreamEncoder(turn, ResponseMeta("msg", "m", 0))
    data = b"".join(encoder.feed(e) for e in [*events, *([end] if end else [])]) + encoder.finish()
    assert encoder.done
    assert_grammar(data)
