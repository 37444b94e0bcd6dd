"""Chat parse_request: real client fixtures → exact Codex requests; validation errors in OpenAI's envelope."""

from __future__ import annotations


import orjson
import pytest

from codex_trio.errors import GatewayError
from codex_trio.protocols import openai_chat as chat
from codex_trio.routing import ModelRouter
from tests.conftest import FIXTURES

CLIENTS = FIXTURES / "clients"


def parse(body: dict, **kw):
    return chat.parse_request(orjson.dumps(body), **kw)


def user(text: str) -> dict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def error_of(body, **kw) -> GatewayError:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    with pytest.raises(GatewayError) as info:
        chat.parse_request(raw, **kw)
    assert 400 <= info.value.status < 500
    return info.value


def test_openai_python_stream_fixture():
    turn = chat.parse_request((CLIENTS / "openai-python.chat.stream.json").read_bytes())
    assert turn.request == {"model": "gpt-mock", "input": [user("Say hi")]}
    assert turn.stream is True and turn.options["include_usage"] is True
    assert turn.requested_model == "gpt-mock" and turn.stop_sequences == [] and turn.conversation_id is None


def test_openai_python_tool_round_trip_fixture():
    turn = chat.parse_request((CLIENTS / "openai-python.chat.tool-result.json").read_bytes())
    assert turn.stream is False
    assert turn.request == {
        "model": "gpt-mock",
        "input": [user("TOOLCALL weather in Paris?"),
                  {"type": "function_call", "call_id": "call_b174cbbd86f44c88b8564bc6", "name": "get_weather",
                   "arguments": '{"city": "Paris"}'},
                  {"type": "function_call_output", "call_id": "call_b174cbbd86f44c88b8564bc6",
                   "output": '{"temp_c": 21}'}],
        "tools": [{"type": "function", "name": "get_weather", "description": "Weather for a city",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                   "strict": False}],
    }


def test_aider_fixture_system_to_instructions_and_temperature_dropped():
    source = orjson.loads((CLIENTS / "aider.chat.completions.json").read_bytes())
    turn = chat.parse_request((CLIENTS / "aider.chat.completions.json").read_bytes())
    assert turn.request["instructions"] == source["messages"][0]["content"]
    roles = [item["role"] for item in turn.request["input"]]
    assert roles == ["user", "assistant", "user", "assistant", "user", "assistant", "user"]
    assert turn.request["input"][1] == {"type": "message", "role": "assistant", "content": [
        {"type": "output_text", "text": source["messages"][2]["content"]}]}
    assert "temperature" not in orjson.dumps(turn.request).decode()
    assert turn.stream is True


def test_router_applies_effort_and_tier_to_fixture_turn():
    router = ModelRouter("gpt-5.4", None, None, {}, {"gpt-5.4", "gpt-5.5"})
    turn = parse({"model": "gpt-5.5-high-fast", "messages": [{"role": "user", "content": "hi"}]})
    resolved = router.resolve(turn.requested_model)
    router.apply(turn, resolved)
    assert turn.request["model"] == "gpt-5.5"
    assert turn.request["reasoning"] == {"effort": "high", "summary": "auto"}
    assert turn.request["service_tier"] == "priority"
    assert resolved.display_name == "gpt-5.5-high-fast"
    explicit = parse({"model": "gpt-5.5-high", "reasoning_effort": "minimal", "service_tier": "flex",
                      "messages": [{"role": "user", "content": "hi"}]})
    router.apply(explicit, router.resolve(explicit.requested_model))
    assert explicit.request["reasoning"]["effort"] == "minimal" and explicit.request["service_tier"] == "flex"


def test_all_roles_and_parts():
    turn = parse({"model": "m", "messages": [
        {"role": "system", "content": "A"},
        {"role": "developer", "content": [{"type": "text", "text": "B1"}, {"type": "text", "text": "B2"}]},
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA",
                                                                         "detail": "high"}},
                                     {"type": "image_url", "image_url": "https://x.test/a.png"},
                                     {"type": "image_url", "image_url": None}]},
        {"role": "assistant", "content": "ok", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "c2", "type": "custom", "custom": {"name": "patch", "input": "*** Begin"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "r1"}]},
        {"role": "tool", "tool_call_id": "c2", "content": "r2"},
        {"role": "system", "content": "late"},
        {"role": "assistant", "content": None, "function_call": {"name": "old", "arguments": "{}"}},
        {"role": "function", "name": "old", "content": "legacy"},
    ]})
    assert turn.request["instructions"] == "A\n\nB1\nB2"
    assert turn.request["input"] == [
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look"}, {"type": "input_image", "image_url": "data:image/png;base64,AAA"},
            {"type": "input_image", "image_url": "https://x.test/a.png"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "custom_tool_call", "call_id": "c2", "name": "patch", "input": "*** Begin"},
        {"type": "function_call_output", "call_id": "c1", "output": "r1"},
        {"type": "custom_tool_call_output", "call_id": "c2", "output": "r2"},
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "late"}]},
        {"type": "function_call", "call_id": "fc_old", "name": "old", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "fc_old", "output": "legacy"},
    ]


def test_cursor_function_envelope_for_declared_custom_tool_becomes_custom():
    turn = parse({"model": "m", "tools": [{"type": "custom", "custom": {"name": "apply_patch"}}], "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "c9", "type": "function",
                                              "function": {"name": "apply_patch", "arguments": "RAW"}}]},
        {"role": "tool", "tool_call_id": "c9", "content": "done"}]}, custom_as_function=True)
    assert turn.request["input"][1:] == [
        {"type": "custom_tool_call", "call_id": "c9", "name": "apply_patch", "input": "RAW"},
        {"type": "custom_tool_call_output", "call_id": "c9", "output": "done"}]
    assert turn.request["tools"] == [{"type": "custom", "name": "apply_patch"}]
    assert turn.options["custom_as_function"] is True


def test_tools_choice_and_parallel():
    turn = parse({"model": "m", "messages": [{"role": "user", "content": "x"}], "parallel_tool_calls": False,
                  "tools": [{"type": "function", "function": {"name": "g", "parameters": {"type": "object"},
                                                              "strict": True}},
                            {"type": "web_search_preview", "search_context_size": "low"},
                            {"type": "image_generation", "size": "1536x1024", "quality": "high"}],
                  "tool_choice": {"type": "function", "function": {"name": "g"}}})
    assert turn.request["tools"] == [
        {"type": "function", "name": "g", "parameters": {"type": "object", "properties": {}}, "strict": True},
        {"type": "web_search", "search_context_size": "low"},
        {"type": "image_generation", "size": "1536x1024"}]
    assert turn.request["tool_choice"] == {"type": "function", "name": "g"}
    assert turn.request["parallel_tool_calls"] is False


def test_legacy_functions_and_web_search_options():
    turn = parse({"model": "m", "messages": [{"role": "user", "content": "x"}],
                  "functions": [{"name": "h", "parameters": {"type": "object", "properties": {"a": {}}}}],
                  "web_search_options": {"search_context_size": "high"}})
    assert turn.request["tools"] == [
        {"type": "function", "name": "h", "parameters": {"type": "object", "properties": {"a": {}}}, "strict": False},
        {"type": "web_search", "search_context_size": "high"}]


def test_response_formats():
    base = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    assert parse({**base, "response_format": {"type": "json_object"}}).request["text"] == {
        "format": {"type": "json_object"}}
    assert "text" not in parse({**base, "response_format": {"type": "text"}}).request
    schema = {"type": "object", "properties": {"pair": {"type": "array", "prefixItems": [{"type": "string"},
                                                                                        {"type": "integer"}]}}}
    turn = parse({**base, "response_format": {"type": "json_schema", "json_schema": {
        "name": "out", "strict": True, "schema": schema}}, "verbosity": "low"})
    assert turn.request["text"] == {"verbosity": "low", "format": {
        "type": "json_schema", "name": "out", "strict": True, "schema": {
            "type": "object", "additionalProperties": False, "properties": {"pair": {
                "type": "object", "properties": {"0": {"type": "string"}, "1": {"type": "integer"}},
                "required": ["0", "1"], "additionalProperties": False}}}}}
    assert turn.options["tuple_schema"] == schema


def test_client_options():
    turn = parse({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": ["", "###", "\n\n"],
                  "user": "alice", "reasoning_effort": "xhigh", "service_tier": "auto", "n": 1,
                  "temperature": 0.2, "top_p": 1, "max_tokens": 10, "max_completion_tokens": 20, "seed": 3,
                  "presence_penalty": 0, "frequency_penalty": 0.5, "logit_bias": {"1": 2}, "logprobs": False,
                  "metadata": {"a": "b"}, "store": True, "unknown_future_param": 1})
    assert turn.stop_sequences == ["###", "\n\n"]
    assert turn.conversation_id == "alice"
    assert turn.reasoning_effort == "xhigh" and turn.service_tier is None
    assert set(turn.request) == {"model", "input"}
    assert parse({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": "END"}).stop_sequences == [
        "END"]
    assert "temperature" in chat.DROPPED_PARAMS and "max_completion_tokens" in chat.DROPPED_PARAMS


@pytest.mark.parametrize("body,param", [
    ({"messages": [{"role": "user", "content": "x"}]}, "model"),
    ({"model": 3, "messages": []}, "model"),
    ({"model": "m", "messages": []}, "messages"),
    ({"model": "m", "messages": "hi"}, "messages"),
    ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "max"}, "reasoning_effort"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "computer"}]},
     "tools[0].type"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}],
      "tools": [{"type": "image_generation", "size": "1000x1000"}]}, "tools[0].size"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
     "messages[0].content[0].type"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}},
     "response_format.type"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}],
      "response_format": {"type": "json_schema", "json_schema": {"schema": {}}}}, "response_format.json_schema.name"),
    ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": [1]}, "stop[0]"),
])
def test_validation_errors_name_the_param(body, param):
    err = error_of(body)
    assert err.status == 400 and err.param == param
    status, envelope = chat.encode_error(err)
    assert status == 400 and envelope["error"]["type"] == "invalid_request_error"
    assert envelope["error"]["param"] == param and envelope["error"]["message"]


@pytest.mark.parametrize("raw", [b"", b"{", b"[1,2]", b"null", b"\xff\xfe"])
def test_malformed_json(raw):
    err = error_of(raw)
    assert err.code == "invalid_json" and err.param is None


def test_allowed_tools_choice():
    turn = parse({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": {
        "type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
            {"type": "function", "function": {"name": "a"}}, {"type": "web_search"}]}}})
    assert turn.request["tool_choice"] == {"type": "allowed_tools", "mode": "required", "tools": [
        {"type": "function", "name": "a"}, {"type": "web_search"}]}
    err = error_of({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": {
        "type": "allowed_tools", "allowed_tools": {"tools": [{"type": ["x"]}]}}})
    assert err.param == "tool_choice.allowed_tools.tools[0].type"


def test_responses_shaped_body_from_cursor():
    items = [{"role": "user", "content": [{"type": "input_text", "text": "fix it"}]},
             {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** Begin Patch"},
             {"type": "custom_tool_call_output", "call_id": "c1", "output": "ok"}]
    turn = parse({"model": "gpt-5.4", "instructions": "You are Cursor.", "input": items, "stream": True,
                  "reasoning": {"effort": "high"},
                  "tools": [{"type": "function", "name": "read", "parameters": {"type": "object"}},
                            {"type": "custom", "name": "apply_patch"}],
                  "tool_choice": {"type": "function", "name": "read"}})
    assert turn.request["instructions"] == "You are Cursor."
    assert turn.request["input"] == items
    assert turn.request["tools"] == [
        {"type": "function", "name": "read", "parameters": {"type": "object", "properties": {}}, "strict": False},
        {"type": "custom", "name": "apply_patch"}]
    assert turn.request["tool_choice"] == {"type": "function", "name": "read"}
    assert turn.reasoning_effort == "high"
    assert parse({"model": "m", "input": "hello"}).request["input"] == [user("hello")]
    assert error_of({"model": "m", "input": []}).param == "input"


def test_legacy_function_call_param_is_tool_choice():
    base = {"model": "m", "messages": [{"role": "user", "content": "x"}], "functions": [{"name": "f"}]}
    assert parse({**base, "function_call": {"name": "f"}}).request["tool_choice"] == {"type": "function", "name": "f"}
    assert parse({**base, "function_call": "none"}).request["tool_choice"] == "none"
