"""/api/chat and /api/generate request parsing: real client fixtures, options, and fuzzing."""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codex_trio.errors import GatewayError
from codex_trio.protocols import ollama
from codex_trio.turn import Turn
from tests.conftest import FIXTURES

CLIENTS = FIXTURES / "clients"

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def chat(**body) -> Turn:
    return ollama.parse_chat(orjson.dumps({"model": "gpt-5.4", **body}))


def user(text: str) -> dict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def bad_chat(body: bytes) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        ollama.parse_chat(body)
    assert info.value.status == 400
    return info.value


# ---- golden: real client requests ---------------------------------------------------------------------


def test_ollama_python_tool_result_fixture():
    turn = ollama.parse_chat((CLIENTS / "ollama-python.chat.tool-result.json").read_bytes())
    assert turn.requested_model == "llama3.2"
    assert turn.stream is False
    assert turn.expose_reasoning is True and turn.reasoning_effort is None and turn.stop_sequences == []
    assert turn.options == {"endpoint": "chat"}
    assert turn.request == {
        "model": "llama3.2",
        "input": [
            user("TOOLCALL weather in Paris?"),
            {"type": "function_call", "call_id": "call_1_0", "name": "get_weather",
             "arguments": '{"city":"Paris"}'},
            {"type": "function_call_output", "call_id": "call_1_0", "output": "21C"},
        ],
        "tools": [{"type": "function", "name": "get_weather", "description": "Weather for a city.",
                   "parameters": {"type": "object", "required": ["city"],
                                  "properties": {"city": {"type": "string", "description": "the city name"}}},
                   "strict": False}],
    }


def test_litellm_ollama_chat_fixture():
    turn = ollama.parse_chat((CLIENTS / "litellm.ollama_chat.chat.json").read_bytes())
    # empty `images`, options.num_predict (dropped: the backend has no output limit), stream false
    assert turn.request == {"model": "llama3.2", "input": [user("Say hi")], "tools": []}
    assert turn.stream is False and turn.stop_sequences == []


def test_stream_defaults_to_true():
    assert chat(messages=[{"role": "user", "content": "hi"}]).stream is True
    assert chat(messages=[{"role": "user", "content": "hi"}], stream=None).stream is True


# ---- messages ----------------------------------------------------------------------------------------


def test_system_messages_become_instructions_and_roles_map():
    turn = chat(messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Q1"},
                          {"role": "assistant", "content": "A1", "thinking": "old thoughts"},
                          {"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Q2"}])
    assert turn.request["instructions"] == "Be terse.\n\nAnswer in French."
    assert turn.request["input"] == [
        user("Q1"), {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "A1"}]},
        user("Q2")]


def test_no_system_message_leaves_instructions_to_the_gateway():
    assert "instructions" not in chat(messages=[{"role": "user", "content": "hi"}]).request


def test_images_become_data_uris_by_magic_bytes():
    turn = chat(messages=[{"role": "user", "content": "what is this?",
                           "images": [b64(PNG), b64(JPEG), b64(WEBP), b64(GIF)]}])
    content = turn.request["input"][0]["content"]
    assert content[0] == {"type": "input_text", "text": "what is this?"}
    assert [part["image_url"].split(";")[0] for part in content[1:]] == [
        "data:image/png", "data:image/jpeg", "data:image/webp", "data:image/gif"]
    assert content[2] == {"type": "input_image", "image_url": f"data:image/jpeg;base64,{b64(JPEG)}"}


def test_image_only_message_has_no_empty_text_part():
    turn = chat(messages=[{"role": "user", "images": [b64(PNG)]}])
    assert turn.request["input"][0]["content"] == [
        {"type": "input_image", "image_url": f"data:image/png;base64,{b64(PNG)}"}]


@pytest.mark.parametrize("image, message", [
    ("not base64!!", "messages[0].images[0] is not valid base64"),
    (b64(b"hello world, not an image"), "messages[0].images[0] is not a PNG, JPEG, WebP or GIF image"),
    (5, "messages[0].images[0] must be a base64-encoded image"),
])
def test_bad_images_are_400(image, message):
    error = bad_chat(orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "x", "images": [image]}]}))
    assert error.message == message


def test_generate_images():
    turn = ollama.parse_generate(orjson.dumps({"model": "llava", "prompt": "describe", "images": [b64(WEBP)]}))
    assert turn.request["input"][0]["content"][1]["image_url"].startswith("data:image/webp;base64,")


# ---- tool calls --------------------------------------------------------------------------------------


def test_parallel_calls_results_map_by_name_then_order():
    turn = chat(messages=[
        {"role": "user", "content": "weather and time in Paris"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"function": {"name": "get_time", "arguments": {"tz": "Europe/Paris"}}},
            {"function": {"name": "get_weather", "arguments": {"city": "Lyon"}}}]},
        {"role": "tool", "tool_name": "get_time", "content": "12:00"},
        {"role": "tool", "tool_name": "get_weather", "content": "21C"},
        {"role": "tool", "content": "18C"},  # no name: the first call still open
    ])
    items = turn.request["input"]
    assert items[1] == {"type": "message", "role": "assistant",
                        "content": [{"type": "output_text", "text": "Let me check."}]}
    assert [(i["call_id"], i["name"]) for i in items[2:5]] == [
        ("call_1_0", "get_weather"), ("call_1_1", "get_time"), ("call_1_2", "get_weather")]
    assert [(i["call_id"], i["output"]) for i in items[5:]] == [
        ("call_1_1", "12:00"), ("call_1_0", "21C"), ("call_1_2", "18C")]


def test_given_ids_are_kept_and_tool_call_id_wins():
    turn = chat(messages=[
        {"role": "user", "content": "q"},
        {"role": "assistant", "tool_calls": [
            {"id": "call_a", "function": {"name": "f", "arguments": {}}},
            {"id": "call_b", "function": {"name": "f", "arguments": '{"x": 1}'}}]},
        {"role": "tool", "tool_name": "f", "tool_call_id": "call_b", "content": "B"},
        {"role": "tool", "tool_name": "f", "content": "A"},
    ])
    items = turn.request["input"]
    assert items[1]["arguments"] == "{}" and items[2]["arguments"] == '{"x": 1}'
    assert [(i["call_id"], i["output"]) for i in items[3:]] == [("call_b", "B"), ("call_a", "A")]


def test_unanswered_call_gets_a_placeholder_result_and_orphan_result_becomes_text():
    turn = chat(messages=[
        {"role": "user", "content": "q"},
        {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]},
        {"role": "user", "content": "never mind"},
        {"role": "tool", "tool_name": "g", "content": "late"},
    ])
    items = turn.request["input"]
    assert items[2] == {"type": "function_call_output", "call_id": "call_1_0", "output": ollama.MISSING_TOOL_RESULT}
    assert items[3] == user("never mind")
    assert items[4] == user("Result of tool g:\nlate")


def test_tools_without_properties_get_empty_properties():
    turn = chat(messages=[{"role": "user", "content": "q"}],
                tools=[{"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}])
    assert turn.request["tools"] == [{"type": "function", "name": "now",
                                      "parameters": {"type": "object", "properties": {}}, "strict": False}]


@pytest.mark.parametrize("tools, message", [
    ([{"type": "retrieval"}], 'tools[0].type must be "function"'),
    ([{"type": "function", "function": {"description": "x"}}], "tools[0].function.name is required"),
    ({"a": 1}, "tools must be a list"),
])
def test_bad_tools(tools, message):
    assert bad_chat(orjson.dumps({"model": "m", "messages": [], "tools": tools})).message == message


# ---- think / format / options ------------------------------------------------------------------------


@pytest.mark.parametrize("think, effort, exposed", [
    (None, None, True), (True, None, True), (False, None, False), ("true", None, True), ("false", None, False),
    ("low", "low", True), ("medium", "medium", True), ("high", "high", True), ("xhigh", "xhigh", True),
    ("HIGH", "high", True),
])
def test_think_levels(think, effort, exposed):
    turn = chat(messages=[{"role": "user", "content": "q"}], think=think)
    assert (turn.reasoning_effort, turn.expose_reasoning) == (effort, exposed)
    if effort:
        assert turn.request["reasoning"] == {"effort": effort, "summary": "auto"}
    else:
        assert "reasoning" not in turn.request


@pytest.mark.parametrize("think", ["max", 3, {"level": "high"}])
def test_bad_think_is_400(think):
    error = bad_chat(orjson.dumps({"model": "m", "messages": [], "think": think}))
    assert error.param == "think"


def test_format_json_and_schema():
    assert chat(messages=[], format="json").request["text"] == {"format": {"type": "json_object"}}
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    assert chat(messages=[], format=schema).request["text"] == {
        "format": {"type": "json_schema", "name": "ollama_schema", "schema": schema, "strict": False}}
    assert "text" not in chat(messages=[], format="").request
    assert bad_chat(b'{"model":"m","format":"yaml"}').param == "format"


def test_options_stop_kept_everything_else_dropped():
    turn = chat(messages=[{"role": "user", "content": "q"}], keep_alive="5m",
                options={"temperature": 0.1, "num_predict": 10, "num_ctx": 4096, "stop": ["\n\n", ""]})
    assert turn.stop_sequences == ["\n\n"]
    assert set(turn.request) == {"model", "input", "tools"}
    assert chat(messages=[], options={"stop": "END"}).stop_sequences == ["END"]
    assert bad_chat(b'{"model":"m","options":{"stop":[1]}}').param == "options.stop"


def test_generate_maps_prompt_system_and_ignores_raw_template_context():
    turn = ollama.parse_generate(orjson.dumps({
        "model": "gpt-5.4", "prompt": "Why is the sky blue?", "system": "Be brief.", "raw": True,
        "template": "{{ .Prompt }}", "context": [1, 2, 3], "suffix": "", "keep_alive": 0, "stream": False,
        "format": "json", "think": "medium"}))
    assert turn.request == {"model": "gpt-5.4", "input": [user("Why is the sky blue?")], "tools": [],
                            "instructions": "Be brief.", "text": {"format": {"type": "json_object"}},
                            "reasoning": {"effort": "medium", "summary": "auto"}}
    assert turn.options == {"endpoint": "generate"} and turn.stream is False
    assert ollama.parse_request(b'{"model":"m","prompt":"p"}', endpoint="generate").options["endpoint"] == "generate"


# ---- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body, message", [
    (b"", "missing request body"),
    (b"[1]", "request body must be a JSON object"),
    (b'{"messages":[]}', "model is required"),
    (b'{"model":"m","messages":{}}', "messages must be a list"),
    (b'{"model":"m","messages":[{"role":"robot","content":"x"}]}',
     'messages[0].role must be "system", "user", "assistant" or "tool"'),
    (b'{"model":"m","messages":[{"role":"user","content":["x"]}]}', "messages[0].content must be a string"),
    (b'{"model":"m","messages":[{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":[1]}}]}]}',
     "messages[0].tool_calls[0].function.arguments must be an object"),
    (b'{"model":"m","stream":"yes"}', "stream must be true or false"),
])
def test_bad_requests_are_400_with_clear_messages(body, message):
    assert bad_chat(body).message == message


def test_invalid_json_is_400():
    assert bad_chat(b'{"model": ').code == "invalid_json"


# ---- fuzzing -----------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12) | st.sampled_from(["json", "high", "tool", "user", "assistant", "system", b64(PNG)]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["model", "messages", "role", "content", "images", "tool_calls", "function", "name",
                         "arguments", "tool_name", "tools", "type", "parameters", "think", "format", "options",
                         "stop", "stream", "prompt", "system", "id", "tool_call_id"]) | st.text(max_size=5),
        inner, max_size=6),
    max_leaves=25)


def check_parse(parser, body: bytes) -> None:
    try:
        turn = parser(body)
    except GatewayError as error:
        assert 400 <= error.status < 500
        assert error.message
    else:
        assert isinstance(turn, Turn)
        orjson.dumps(turn.request)  # the Codex body is always serialisable


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(st.sampled_from(["model", "messages", "tools", "think", "format", "options", "stream",
                                        "prompt", "system", "images"]), json_values, max_size=7))
def test_fuzz_structured_bodies(data):
    body = orjson.dumps(data)
    check_parse(ollama.parse_chat, body)
    check_parse(ollama.parse_generate, body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | json_values.map(orjson.dumps))
def test_fuzz_arbitrary_bytes(body):
    check_parse(ollama.parse_chat, body)
    check_parse(ollama.parse_generate, body)


messages = st.lists(st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool", "developer"]) | json_values},
    optional={"content": st.text(max_size=8) | json_values,
              "images": st.lists(st.sampled_from([b64(PNG), b64(GIF), "", "=="]) | json_values, max_size=2),
              "tool_calls": st.lists(st.fixed_dictionaries(
                  {"function": st.fixed_dictionaries({"name": st.sampled_from(["f", "g", ""]) | json_values},
                                                     optional={"arguments": json_values})},
                  optional={"id": json_values}), max_size=3) | json_values,
              "tool_name": st.sampled_from(["f", "g"]) | json_values,
              "tool_call_id": st.sampled_from(["call_0_0", "call_1_0"]) | json_values}), max_size=6)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(messages)
def test_fuzz_message_histories(history):
    body = orjson.dumps({"model": "m", "messages": history})
    try:
        turn = ollama.parse_chat(body)
    except GatewayError as error:
        assert error.status == 400
        return
    # Every output answers a call that precedes it, and every call is answered exactly once.
    calls, outputs = [], []
    for item in turn.request["input"]:
        if item.get("type") == "function_call":
            calls.append(item["call_id"])
        elif item.get("type") == "function_call_output":
            assert item["call_id"] in calls
            outputs.append(item["call_id"])
    assert sorted(calls) == sorted(outputs)


def test_only_system_messages_still_send_input_and_empty_chat_is_a_load():
    turn = chat(messages=[{"role": "system", "content": "You are a poet."}])
    assert turn.request["input"] == [user("")] and turn.request["instructions"] == "You are a poet."
    assert "load_only" not in turn.options
    assert chat().options["load_only"] is True
