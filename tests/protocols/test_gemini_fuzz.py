"""Property: no body makes the Gemini parser fail with anything but a 4xx GatewayError.

Bodies are generated well-formed and then corrupted at one random place (a value replaced by an awkward one,
or a key dropped), so the parser is exercised deep inside, not only at its first check.
"""

from __future__ import annotations


import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codex_trio.errors import GatewayError
from codex_trio.protocols import gemini, token_count
from codex_trio.protocols.meta import ResponseMeta
from codex_trio.turn import Turn
from codex_trio.upstream import events as ev
from tests.protocols.helpers import corrupted, json_values

names = st.text("abcdefgh_", min_size=1, max_size=6)
text = st.text(max_size=10)
schemas = st.recursive(
    st.fixed_dictionaries({"type": st.sampled_from(["STRING", "INTEGER", "string", "BOOLEAN"])},
                          optional={"nullable": st.booleans(), "description": text}),
    lambda inner: st.one_of(
        st.fixed_dictionaries({"type": st.sampled_from(["OBJECT", "object"]),
                               "properties": st.dictionaries(names, inner, max_size=3)},
                              optional={"required": st.lists(names, max_size=2), "propertyOrdering": st.lists(names)}),
        st.fixed_dictionaries({"type": st.just("ARRAY"), "items": inner}),
        st.fixed_dictionaries({"anyOf": st.lists(inner, min_size=1, max_size=2)})),
    max_leaves=8)
part = st.one_of(
    st.fixed_dictionaries({"text": text}, optional={
        "thought": st.booleans(), "thoughtSignature": st.sampled_from([gemini.thought_signature("rs_1", "e"), "!!", "AAAA"])}),
    st.fixed_dictionaries({"inlineData": st.fixed_dictionaries({"mimeType": st.sampled_from(["image/png", "application/pdf"]),
                                                                "data": st.just("iVBO")})}),
    st.fixed_dictionaries({"fileData": st.fixed_dictionaries({"fileUri": st.just("gs://b/f")},
                                                             optional={"mimeType": st.just("image/jpeg")})}),
    st.fixed_dictionaries({"functionCall": st.fixed_dictionaries({"name": names},
                                                                 optional={"id": names, "args": json_values})}),
    st.fixed_dictionaries({"functionResponse": st.fixed_dictionaries({"name": names},
                                                                     optional={"id": names, "response": json_values})}))
content = st.fixed_dictionaries({"parts": st.lists(part, max_size=4)},
                                optional={"role": st.sampled_from(["user", "model"])})
generation = st.fixed_dictionaries({}, optional={
    "responseMimeType": st.sampled_from(["application/json", "text/plain"]),
    "responseSchema": schemas, "responseJsonSchema": schemas, "candidateCount": st.just(1),
    "stopSequences": st.lists(text, max_size=3), "maxOutputTokens": st.integers(1, 999),
    "thinkingConfig": st.fixed_dictionaries({}, optional={
        "thinkingBudget": st.integers(-1, 30000), "thinkingLevel": st.sampled_from(["LOW", "HIGH", "minimal"]),
        "includeThoughts": st.booleans()})})
tool = st.one_of(
    st.fixed_dictionaries({"functionDeclarations": st.lists(st.fixed_dictionaries(
        {"name": names}, optional={"description": text, "parameters": schemas, "parametersJsonSchema": schemas}),
        max_size=3)}),
    st.just({"googleSearch": {}}))
bodies = st.fixed_dictionaries({"contents": st.lists(content, min_size=1, max_size=4)}, optional={
    "systemInstruction": st.fixed_dictionaries({"parts": st.lists(st.fixed_dictionaries({"text": text}), max_size=2)}),
    "tools": st.lists(tool, max_size=2),
    "toolConfig": st.fixed_dictionaries({"functionCallingConfig": st.fixed_dictionaries(
        {"mode": st.sampled_from(["AUTO", "ANY", "NONE", "VALIDATED"])},
        optional={"allowedFunctionNames": st.lists(names, max_size=2)})}),
    "generationConfig": generation})


def check(body: bytes) -> bool:
    try:
        turn = gemini.parse_request("m", body, True)
    except GatewayError as error:
        assert 400 <= error.status < 500 and error.message
        assert gemini.encode_error(error)[1]["error"]["status"] == "INVALID_ARGUMENT"
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


# ---- every stream ends with exactly one terminal chunk, in both framings ---------------------------------------


normalized = st.one_of(
    st.builds(ev.TextDelta, st.just("msg"), st.just(0), st.text(min_size=1, max_size=6)),
    st.builds(ev.ReasoningDelta, st.just("rs_1"), st.integers(0, 1), st.text(min_size=1, max_size=4)),
    st.builds(ev.ReasoningDone, st.fixed_dictionaries({"type": st.just("reasoning"), "id": st.sampled_from(["rs_1", "rs_2"]),
                                                       "encrypted_content": st.sampled_from(["enc", None])})),
    st.builds(lambda c, k: ev.ToolCallDone(c, "f", '{"a":1}', k, {}), st.sampled_from(["c1", "c2"]),
              st.sampled_from(["function", "custom"])),
    st.builds(lambda i: ev.ImageGenerated(i, "QUJD", None, "png", {}), st.just("ig")))
terminal = st.one_of(
    st.builds(lambda r: ev.Completed({}, ev.Usage(10, 5, 3), r), st.sampled_from([None, "max_output_tokens", "x"])),
    st.just(ev.Failed("rate_limit_exceeded", "slow")), st.none())


@settings(max_examples=400, deadline=None)
@given(st.lists(normalized, max_size=10), terminal, st.booleans(), st.booleans(),
       st.lists(st.sampled_from(["ab", "x"]), max_size=2))
def test_stream_always_terminates(events, end, sse, expose, stops):
    turn = Turn(request={}, requested_model="m", expose_reasoning=expose, stop_sequences=stops)
    encoder = gemini.StreamEncoder(turn, ResponseMeta("r", "m", 0), sse=sse)
    data = b"".join(encoder.feed(e) for e in [*events, *([end] if end else [])]) + encoder.finish()
    assert encoder.done
    if sse:
        chunks = [orjson.loads(b[6:]) for b in data.split(b"\r\n\r\n")[:-1]]
        assert all(b.startswith(b"data: ") for b in data.split(b"\r\n\r\n")[:-1])
    else:
        chunks = orjson.loads(data)
    last = chunks[-1]
    assert "error" in last or last["candidates"][0]["finishReason"] in ("STOP", "MAX_TOKENS", "OTHER")
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1] if "candidates" in c)
    assert sum("error" in c for c in chunks) <= 1


def test_required_that_is_not_a_list_of_names_is_a_client_error_not_a_crash():
    # Found by test_corrupted_bodies: `required: [{}]` made the strictness check hash a dict (a 500).
    from codex_trio.protocols.schema import requires_every_property

    assert requires_every_property({"type": "object", "properties": {"a": {}}, "required": [{}]}) is False
