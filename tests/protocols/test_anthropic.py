"""Anthropic Messages adapter: golden requests from real clients, exact stream frames, SDK round trips."""

from __future__ import annotations

import json

import anthropic as anthropic_sdk
import httpx2
import orjson
import pytest

from codex_trio.errors import ErrorKind, GatewayError
from codex_trio.protocols import anthropic
from codex_trio.protocols.codex_request import DEFAULT_INSTRUCTIONS
from codex_trio.protocols.reasoning import decode_reasoning_signature, encode_reasoning_signature
from codex_trio.protocols.meta import ResponseMeta
from codex_trio.turn import Turn
from codex_trio.upstream.events import Failed
from tests.conftest import FIXTURES
from tests.protocols.helpers import normalize, sse_events

CLIENTS = FIXTURES / "clients"
REPLIES = FIXTURES / "chatgpt-mode/stand-in-replies"
META = ResponseMeta("msg_01", "claude-opus-4-8", 1795318737)


def frames(data: bytes) -> list[tuple[str, dict]]:
    out = []
    for block in data.decode().split("\n\n"):
        if block:
            event, payload = block.split("\n")
            assert event.startswith("event: ") and payload.startswith("data: ")
            body = json.loads(payload[6:])
            assert body["type"] == event[7:]
            out.append((event[7:], body))
    return out


def stream(turn: Turn, events: list) -> bytes:
    encoder = anthropic.StreamEncoder(turn, META)
    return b"".join(encoder.feed(e) for e in events) + encoder.finish()


def turn_for(body: dict) -> Turn:
    return anthropic.parse_request(orjson.dumps({"model": "claude-x", "max_tokens": 100, **body}))


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def invalid(body: dict | bytes) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        anthropic.parse_request(body if isinstance(body, bytes) else orjson.dumps(body))
    assert caught.value.status == 400 and caught.value.kind is ErrorKind.INVALID_REQUEST
    return caught.value


REASONING_TOOL_TURN = [
    {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress", "model": "gpt-5.4"}},
    {"type": "response.output_item.added", "output_index": 0, "item": {"type": "reasoning", "id": "rs_1", "summary": []}},
    {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "summary_index": 0, "delta": "Checking "},
    {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "summary_index": 0, "delta": "the tool"},
    {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "summary_index": 1, "delta": "Then call"},
    {"type": "response.output_item.done", "output_index": 0, "item": {
        "type": "reasoning", "id": "rs_1", "encrypted_content": "gAAAAB-secret==",
        "summary": [{"type": "summary_text", "text": "Checking the tool"}, {"type": "summary_text", "text": "Then call"}]}},
    {"type": "response.output_item.added", "output_index": 1, "item": {
        "type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather", "arguments": ""}},
    {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 1, "delta": "{\"city\":"},
    {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 1, "delta": "\"NYC\"}"},
    {"type": "response.output_item.done", "output_index": 1, "item": {
        "type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
        "arguments": "{\"city\":\"NYC\"}", "status": "completed"}},
    {"type": "response.completed", "response": {"id": "resp_1", "status": "completed", "usage": {
        "input_tokens": 812, "input_tokens_details": {"cached_tokens": 768}, "output_tokens": 41,
        "output_tokens_details": {"reasoning_tokens": 18}, "total_tokens": 853}}},
]


def text_turn(*deltas: str, incomplete: str | None = None) -> list[dict]:
    raw: list[dict] = [{"type": "response.created", "response": {"id": "resp_2", "model": "gpt-5.4"}}]
    raw += [{"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "delta": d} for d in deltas]
    response = {"id": "resp_2", "status": "incomplete" if incomplete else "completed",
                "usage": {"input_tokens": 10, "output_tokens": 5}}
    if incomplete:
        response["incomplete_details"] = {"reason": incomplete}
    raw.append({"type": "response.incomplete" if incomplete else "response.completed", "response": response})
    return raw


# ---- requests from real clients ---------------------------------------------------------------------------


def test_claude_code_first_turn():
    raw = json.loads((CLIENTS / "claude-code.messages.json").read_text())
    turn = anthropic.parse_request((CLIENTS / "claude-code.messages.json").read_bytes())
    request = turn.request

    assert turn.requested_model == request["model"] == "claude-opus-4-8"
    assert turn.stream is True
    assert turn.conversation_id == "4f97e3fc-8ead-4ac4-8796-54251df9c77f"  # session_id inside metadata.user_id
    assert turn.reasoning_effort == "high" and turn.expose_reasoning  # output_config.effort + adaptive thinking
    assert request["reasoning"] == {"effort": "high", "summary": "auto"}
    assert turn.options["max_tokens"] == 64000
    # The rotating billing header is gone; the other system blocks are joined in order.
    kept = [b["text"].strip() for b in raw["system"][1:]]
    assert request["instructions"] == "\n\n".join(kept)
    assert "x-anthropic-billing-header" not in request["instructions"]
    # The user turn keeps both text blocks; the mid-conversation system message becomes a developer message.
    first, second = request["input"]
    assert first == {"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": raw["messages"][0]["content"][0]["text"]},
        {"type": "input_text", "text": "Say hi"}]}
    assert second == {"type": "message", "role": "developer",
                      "content": [{"type": "input_text", "text": raw["messages"][1]["content"]}]}
    # All 24 Claude Code tools become function tools with only the fields the backend accepts.
    assert [t["name"] for t in request["tools"]] == [t["name"] for t in raw["tools"]]
    for tool, original in zip(request["tools"], raw["tools"]):
        assert tool == {"type": "function", "name": original["name"], "description": original["description"],
                        "strict": False, "parameters": original["input_schema"]}
    assert request["tool_choice"] == "auto" and request["parallel_tool_calls"] is True
    assert b"cache_control" not in orjson.dumps(request)


def test_claude_code_tool_result_turn():
    turn = anthropic.parse_request((CLIENTS / "claude-code.messages.tool-result.json").read_bytes())
    assert turn.conversation_id == "0416799c-c5e1-4b98-94d2-9b2e0f3ecfb8"
    assert [i.get("role", i["type"]) for i in turn.request["input"]] == [
        "user", "developer", "function_call", "function_call_output"]
    call, output = turn.request["input"][2:]
    assert call == {"type": "function_call", "call_id": "toolu_5fe4d2029393413e91af9016", "name": "Bash",
                    "arguments": '{"command":"echo MOCK_TOOL"}'}
    assert output == {"type": "function_call_output", "call_id": "toolu_5fe4d2029393413e91af9016",
                      "output": "MOCK_TOOL"}


def test_anthropic_python_tool_result_exact():
    turn = anthropic.parse_request((CLIENTS / "anthropic-python.messages.tool-result.json").read_bytes())
    assert turn.stream is False and turn.conversation_id is None and not turn.expose_reasoning
    assert turn.request == {
        "model": "claude-mock",
        "instructions": DEFAULT_INSTRUCTIONS,
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "TOOLCALL weather in Paris?"}]},
            {"type": "function_call", "call_id": "toolu_fed898a386a6474bb82e457a", "name": "get_weather",
             "arguments": '{"city":"Paris"}'},
            {"type": "function_call_output", "call_id": "toolu_fed898a386a6474bb82e457a", "output": "21C"},
        ],
        "tools": [{"type": "function", "name": "get_weather", "description": "Weather for a city", "strict": False,
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"summary": "auto"},
    }


def test_litellm_exact():
    turn = anthropic.parse_request((CLIENTS / "litellm.anthropic.messages.json").read_bytes())
    assert turn.request["input"] == [{"type": "message", "role": "user",
                                      "content": [{"type": "input_text", "text": "Say hi"}]}]
    assert turn.request["tools"] == [] and turn.options["max_tokens"] == 64


def test_session_header_wins_and_plain_user_id():
    body = {"messages": [user("hi")], "metadata": {"user_id": "user-42"}}
    assert turn_for(body).conversation_id == "user-42"
    turn = anthropic.parse_request(orjson.dumps({"model": "m", "max_tokens": 1, **body}), session_id=" sess-1 ")
    assert turn.conversation_id == "sess-1"


# ---- content blocks ------------------------------------------------------------------------------------------


def test_images_documents_and_tool_result_images():
    png = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    turn = turn_for({"messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image", "source": png},
            {"type": "image", "source": {"type": "url", "url": "https://example.test/a.jpg"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "is_error": True,
             "content": [{"type": "text", "text": "a"}, {"type": "image", "source": png}, {"type": "text", "text": "b"}]},
            {"type": "text", "text": "next"}]},
    ]})
    assert turn.request["input"] == [
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
            {"type": "input_image", "image_url": "https://example.test/a.jpg"},
            {"type": "input_file", "filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBE"}]},
        {"type": "function_call", "call_id": "t1", "name": "shot", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "t1", "output": "Error: a\nb"},
        {"type": "message", "role": "user", "content": [
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "next"}]},
    ]


def test_assistant_text_thinking_order_and_unknown_signature_dropped():
    turn = turn_for({"messages": [user("q"), {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "EqQBCkYIBxgCKkA-real-anthropic"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "answer"},
        {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}]}]})
    assert turn.request["input"][1] == {"type": "message", "role": "assistant",
                                        "content": [{"type": "output_text", "text": "answer"}]}
    assert len(turn.request["input"]) == 2


def test_system_as_string_and_blank_system():
    assert turn_for({"system": " Be brief. ", "messages": [user("x")]}).request["instructions"] == "Be brief."
    blank = turn_for({"system": [{"type": "text", "text": "  "}], "messages": [user("x")]})
    assert blank.request["instructions"] == DEFAULT_INSTRUCTIONS


# ---- tools, tool_choice, thinking ------------------------------------------------------------------------------


def test_hosted_web_search_and_stripped_fields():
    turn = turn_for({"messages": [user("x")], "tools": [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3, "allowed_domains": ["a.test"]},
        {"type": "web_search_20260209", "name": "web_search2"},
        {"name": "Read", "description": "read", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"},
         "defer_loading": True, "input_examples": [{"path": "x"}], "eager_input_streaming": True}],
        "tool_choice": {"type": "tool", "name": "web_search", "disable_parallel_tool_use": True}})
    assert turn.request["tools"] == [
        {"type": "web_search"},
        {"type": "function", "name": "Read", "description": "read", "strict": False,
         "parameters": {"type": "object", "properties": {}}}]
    assert turn.request["tool_choice"] == {"type": "web_search"}
    assert turn.request["parallel_tool_calls"] is False


@pytest.mark.parametrize("choice, expected", [
    ({"type": "auto"}, "auto"), ({"type": "any"}, "required"), ({"type": "none"}, "none"),
    ({"type": "tool", "name": "f"}, {"type": "function", "name": "f"})])
def test_tool_choice(choice, expected):
    turn = turn_for({"messages": [user("x")], "tool_choice": choice,
                     "tools": [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]})
    assert turn.request["tool_choice"] == expected


@pytest.mark.parametrize("thinking, effort, expose", [
    ({"type": "enabled", "budget_tokens": 1}, "low", True),
    ({"type": "enabled", "budget_tokens": 1999}, "low", True),
    ({"type": "enabled", "budget_tokens": 2000}, "medium", True),
    ({"type": "enabled", "budget_tokens": 7999}, "medium", True),
    ({"type": "enabled", "budget_tokens": 8000}, "high", True),
    ({"type": "enabled", "budget_tokens": 20000}, "xhigh", True),
    ({"type": "adaptive"}, None, True),
    ({"type": "adaptive", "budget_tokens": 5000}, "medium", True),
    ({"type": "disabled"}, None, False),
    (None, None, False)])
def test_thinking(thinking, effort, expose):
    body = {"messages": [user("x")]}
    if thinking is not None:
        body["thinking"] = thinking
    turn = turn_for(body)
    assert (turn.reasoning_effort, turn.expose_reasoning) == (effort, expose)
    assert turn.request["reasoning"].get("effort") == effort


def test_output_config_effort_max_is_xhigh():
    turn = turn_for({"messages": [user("x")], "output_config": {"effort": "max"}})
    assert turn.reasoning_effort == "xhigh"


# ---- validation ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body, param", [
    (b"{not json", None),
    (b"[1]", None),
    ({"messages": [user("x")], "max_tokens": 5}, "model"),
    ({"model": "m", "messages": [user("x")]}, "max_tokens"),
    ({"model": "m", "max_tokens": 0, "messages": [user("x")]}, "max_tokens"),
    ({"model": "m", "max_tokens": 5, "messages": []}, "messages"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 7}]}, "messages[0].content"),
    ({"model": "m", "max_tokens": 5, "messages": [user("x")], "thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
    ({"model": "m", "max_tokens": 5, "messages": [user("x")], "tool_choice": {"type": "maybe"}}, "tool_choice.type"),
    ({"model": "m", "max_tokens": 5, "messages": [user("x")], "tools": [{"type": "bash_20250124", "name": "bash"}]},
     "tools[0].type"),
    ({"model": "m", "max_tokens": 5, "messages": [user("x")], "stop_sequences": [1]}, "stop_sequences[0]"),
    ({"model": "m", "max_tokens": 5, "messages": [user("x")], "system": [{"type": "text", "text": 5}]}, "system[0].text"),
    ({"model": "m", "max_tokens": 5, "messages": [user("x")], "temperature": True}, "temperature"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "file", "file_id": "f"}}]}]}, "messages[0].content[0].source.type"),
])
def test_validation_errors(body, param):
    error = invalid(body)
    assert error.param == param
    status, envelope = anthropic.encode_error(error)
    assert status == 400
    assert envelope == {"type": "error", "error": {"type": "invalid_request_error", "message": error.message}}


@pytest.mark.parametrize("kind, status, expected_status, expected_type", [
    (ErrorKind.INVALID_REQUEST, 400, 400, "invalid_request_error"),
    (ErrorKind.AUTHENTICATION, 401, 401, "authentication_error"),
    (ErrorKind.PERMISSION, 403, 403, "permission_error"),
    (ErrorKind.NOT_FOUND, 404, 404, "not_found_error"),
    (ErrorKind.REQUEST_TOO_LARGE, 413, 413, "request_too_large"),
    (ErrorKind.RATE_LIMIT, 429, 429, "rate_limit_error"),
    (ErrorKind.OVERLOADED, 503, 529, "overloaded_error"),
    (ErrorKind.UPSTREAM, 502, 502, "api_error"),
    (ErrorKind.SERVER, 500, 500, "api_error"),
    (ErrorKind.TIMEOUT, 504, 504, "timeout_error"),
    (ErrorKind.INVALID_REQUEST, 402, 402, "billing_error"),
    (ErrorKind.INVALID_REQUEST, 500, 400, "invalid_request_error"),
])
def test_encode_error(kind, status, expected_status, expected_type):
    assert anthropic.encode_error(GatewayError(status, "boom", kind)) == (
        expected_status, {"type": "error", "error": {"type": expected_type, "message": "boom"}})


# ---- streaming -----------------------------------------------------------------------------------------------


def test_stream_text_fixture_exact():
    turn = turn_for({"messages": [user("hi")], "stream": True})
    data = stream(turn, sse_events(REPLIES / "codex-responses.text.sse"))
    assert data.startswith(b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_01",')
    assert frames(data) == [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-opus-4-8", "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        *[("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}})
          for t in ["MOCK_OK: hi from", " the local ChatG", "PT backend stand", "-in."]],
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"input_tokens": 1234, "output_tokens": 12}}),
        ("message_stop", {"type": "message_stop"}),
    ]


def test_stream_reasoning_and_tool_use_exact():
    turn = turn_for({"messages": [user("weather?")], "thinking": {"type": "adaptive"}})
    signature = encode_reasoning_signature("rs_1", "gAAAAB-secret==")
    assert frames(stream(turn, normalize(REASONING_TOOL_TURN)))[1:] == [
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "Checking "}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "the tool"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "\n\nThen call"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "signature_delta", "signature": signature}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "input_json_delta", "partial_json": "{\"city\":"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "input_json_delta", "partial_json": "\"NYC\"}"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                           "usage": {"input_tokens": 44, "output_tokens": 41, "cache_read_input_tokens": 768}}),
        ("message_stop", {"type": "message_stop"}),
    ]


def test_thinking_hidden_unless_requested():
    turn = turn_for({"messages": [user("weather?")]})
    kinds = [body.get("content_block", {}).get("type") for _, body in frames(stream(turn, normalize(REASONING_TOOL_TURN)))]
    assert "thinking" not in kinds and "tool_use" in kinds


def test_signature_round_trip_restores_reasoning_item():
    turn = turn_for({"messages": [user("weather?")], "thinking": {"type": "adaptive"}})
    message = anthropic.encode_response(turn, normalize(REASONING_TOOL_TURN), META)
    thinking, tool_use = message["content"]
    assert thinking["type"] == "thinking" and thinking["thinking"] == "Checking the tool\n\nThen call"
    # The client sends the assistant turn back verbatim with the tool result.
    follow_up = turn_for({"thinking": {"type": "adaptive"}, "messages": [
        user("weather?"), {"role": "assistant", "content": message["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use["id"], "content": "21C"}]}]})
    assert follow_up.request["input"][1:] == [
        {"type": "reasoning", "id": "rs_1", "encrypted_content": "gAAAAB-secret==",
         "summary": [{"type": "summary_text", "text": "Checking the tool\n\nThen call"}]},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"NYC"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "21C"},
    ]


def test_reasoning_without_summary_still_carries_signature():
    raw = [REASONING_TOOL_TURN[0], REASONING_TOOL_TURN[1], {**REASONING_TOOL_TURN[5], "item": {
        "type": "reasoning", "id": "rs_9", "summary": [], "encrypted_content": "enc"}}, *text_turn("ok")[1:]]
    turn = turn_for({"messages": [user("x")], "thinking": {"type": "enabled", "budget_tokens": 4000}})
    message = anthropic.encode_response(turn, normalize(raw), META)
    assert message["content"][0] == {"type": "thinking", "thinking": "",
                                     "signature": encode_reasoning_signature("rs_9", "enc")}
    assert message["content"][1] == {"type": "text", "text": "ok"}


def test_signature_codec_rejects_foreign_values():
    assert decode_reasoning_signature("ctr1.") is None
    assert decode_reasoning_signature("ctr1.!!!.x") is None
    assert decode_reasoning_signature(None) is None
    sig = encode_reasoning_signature("rs_a.b:c", "x.y.z")
    assert decode_reasoning_signature(sig)["id"] == "rs_a.b:c"
    assert decode_reasoning_signature(sig)["encrypted_content"] == "x.y.z"


def test_stop_sequence_across_deltas():
    turn = turn_for({"messages": [user("x")], "stop_sequences": ["STOP", "##"]})
    got = frames(stream(turn, normalize(text_turn("Hello S", "T", "Ox ST", "OP after", "more"))))
    texts = [b["delta"]["text"] for _, b in got if b["type"] == "content_block_delta"]
    assert "".join(texts) == "Hello STOx "
    assert texts == ["Hello ", "STOx "]  # "S" and "ST" were held back until they could not start "STOP"
    assert got[-2][1]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "STOP"}


def test_stop_sequence_hit_ends_stream_without_terminal_event():
    turn = turn_for({"messages": [user("x")], "stop_sequences": ["END"]})
    encoder = anthropic.StreamEncoder(turn, META)
    data = b"".join(encoder.feed(e) for e in normalize(text_turn("abcEN", "Dxyz")[:-1]))
    assert encoder.stopped and not encoder.done
    data += encoder.finish()
    assert encoder.done
    got = frames(data)
    assert [b["delta"]["text"] for _, b in got if b["type"] == "content_block_delta"] == ["abc"]
    assert got[-2][1]["delta"]["stop_reason"] == "stop_sequence" and got[-1][0] == "message_stop"


def test_pending_stop_prefix_flushed_at_end():
    turn = turn_for({"messages": [user("x")], "stop_sequences": ["STOP"]})
    message = anthropic.encode_response(turn, normalize(text_turn("all ST")), META)
    assert message["content"] == [{"type": "text", "text": "all ST"}] and message["stop_reason"] == "end_turn"


def test_incomplete_is_max_tokens_and_content_filter_is_refusal():
    turn = turn_for({"messages": [user("x")]})
    assert anthropic.encode_response(turn, normalize(text_turn("a", incomplete="max_output_tokens")), META)[
        "stop_reason"] == "max_tokens"
    assert anthropic.encode_response(turn, normalize(text_turn("a", incomplete="content_filter")), META)[
        "stop_reason"] == "refusal"


def test_failure_mid_stream_is_an_error_event():
    turn = turn_for({"messages": [user("x")]})
    raw = text_turn("partial")[:-1] + [{"type": "response.failed", "response": {
        "id": "resp_2", "status": "failed", "error": {"code": "server_is_overloaded", "message": "try later"}}}]
    encoder = anthropic.StreamEncoder(turn, META)
    got = frames(b"".join(encoder.feed(e) for e in normalize(raw)) + encoder.finish())
    assert got[-1] == ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "try later"}})
    assert "message_stop" not in [name for name, _ in got] and encoder.done
    assert encoder.fail(GatewayError(500, "again", ErrorKind.SERVER)) == b""  # only one terminal event


def test_fail_from_route_and_heartbeat():
    encoder = anthropic.StreamEncoder(turn_for({"messages": [user("x")]}), META)
    assert encoder.heartbeat() == b'event: ping\ndata: {"type": "ping"}\n\n'
    assert frames(encoder.fail(GatewayError(429, "slow down", ErrorKind.RATE_LIMIT))) == [
        ("error", {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})]


def test_non_stream_failure_raises_and_truncation_is_502():
    turn = turn_for({"messages": [user("x")]})
    with pytest.raises(GatewayError) as caught:
        anthropic.encode_response(turn, [Failed("rate_limit_exceeded", "limited")], META)
    assert caught.value.status == 429 and caught.value.kind is ErrorKind.RATE_LIMIT
    with pytest.raises(GatewayError) as caught:
        anthropic.encode_response(turn, normalize(text_turn("a")[:-1]), META)
    assert caught.value.status == 502


def test_custom_tool_call_becomes_tool_use_with_input_field():
    turn = turn_for({"messages": [user("x")]})
    message = anthropic.encode_response(turn, sse_events(REPLIES / "codex-responses.custom-tool-call-exec.sse"), META)
    assert message["content"] == [{"type": "tool_use", "id": "call_bd585a6b15d1436b97d10916", "name": "exec",
                                   "input": {"input": 'text("MOCK_TOOL_RAN")'}}]


IMAGE_TURN = [{"type": "response.created", "response": {"id": "r"}},
              {"type": "response.output_item.done", "output_index": 0, "item": {
                  "type": "image_generation_call", "id": "ig_1", "result": "QUJD", "revised_prompt": "a cat",
                  "output_format": "png"}},
              {"type": "response.completed", "response": {"id": "r", "usage": {"input_tokens": 1, "output_tokens": 1}}}]
IMAGE_TOOL = {"name": "image_generation", "input_schema": {"type": "object"}}


def test_generated_image_is_markdown_text_never_a_call_of_an_undeclared_tool():
    for inline in (True, False):  # without a declared image_generation tool there is nobody to call
        turn = turn_for({"messages": [user("x")]})
        turn.inline_images = inline
        message = anthropic.encode_response(turn, normalize(IMAGE_TURN), META)
        assert message["content"] == [{"type": "text", "text": "![image](data:image/png;base64,QUJD)"}]
        assert message["stop_reason"] == "end_turn"
    turn = turn_for({"messages": [user("x")]})
    data = b"".join(anthropic.StreamEncoder(turn, META).feed(e) for e in normalize(IMAGE_TURN))
    assert not [b for _, b in frames(data) if b["type"] == "content_block_start"
                and b["content_block"]["type"] == "tool_use"]


def test_generated_image_as_a_call_only_of_a_declared_tool_and_when_markdown_is_off():
    turn = turn_for({"messages": [user("x")], "tools": [IMAGE_TOOL]})
    turn.inline_images = False
    message = anthropic.encode_response(turn, normalize(IMAGE_TURN), META)
    assert message["content"] == [{"type": "tool_use", "id": "ig_1", "name": "image_generation",
                                   "input": {"result": "QUJD", "output_format": "png", "revised_prompt": "a cat"}}]
    assert message["stop_reason"] == "tool_use"


def test_parallel_interleaved_tool_calls_keep_their_indices():
    raw = [{"type": "response.created", "response": {"id": "r"}}]
    for i in (1, 2):
        raw.append({"type": "response.output_item.added", "output_index": i, "item": {
            "type": "function_call", "id": f"fc_{i}", "call_id": f"call_{i}", "name": f"f{i}", "arguments": ""}})
    raw += [{"type": "response.function_call_arguments.delta", "item_id": "fc_2", "delta": "{\"b\":2}"},
            {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": "{\"a\":1}"},
            {"type": "response.function_call_arguments.done", "item_id": "fc_1", "arguments": "{\"a\":1}"},
            {"type": "response.function_call_arguments.done", "item_id": "fc_2", "arguments": "{\"b\":2}"},
            {"type": "response.completed", "response": {"id": "r"}}]
    got = frames(stream(turn_for({"messages": [user("x")]}), normalize(raw)))
    deltas = [(b["index"], b["delta"]["partial_json"]) for _, b in got if b["type"] == "content_block_delta"]
    assert deltas == [(1, "{\"b\":2}"), (0, "{\"a\":1}")]
    stops = [b["index"] for _, b in got if b["type"] == "content_block_stop"]
    assert stops == [0, 1]


# ---- the real anthropic SDK consumes what we produce ---------------------------------------------------------


def _sdk_client(reply: bytes, content_type: str, captured: list) -> anthropic_sdk.Anthropic:
    def handler(request: httpx2.Request) -> httpx2.Response:
        captured.append(request)
        return httpx2.Response(200, headers={"content-type": content_type}, content=reply)

    return anthropic_sdk.Anthropic(api_key="k", base_url="http://127.0.0.1:9", max_retries=0,
                                   http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))


def test_sdk_stream_and_follow_up_request():
    captured: list = []
    first = turn_for({"messages": [user("weather?")], "thinking": {"type": "adaptive"}})
    client = _sdk_client(stream(first, normalize(REASONING_TOOL_TURN)), "text/event-stream", captured)
    with client.messages.stream(model="claude-x", max_tokens=100, thinking={"type": "adaptive"},
                                messages=[user("weather?")]) as s:
        final = s.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "tool_use"]
    assert final.content[1].input == {"city": "NYC"} and final.stop_reason == "tool_use"
    assert final.usage.input_tokens == 44 and final.usage.cache_read_input_tokens == 768
    # The SDK's own request for the next turn parses into a Codex request with the reasoning restored.
    client.messages.create(model="claude-x", max_tokens=100, thinking={"type": "adaptive"}, messages=[
        user("weather?"), {"role": "assistant", "content": final.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "21C"}]}])
    follow_up = anthropic.parse_request(captured[-1].content)
    assert follow_up.request["input"][1]["type"] == "reasoning"
    assert follow_up.request["input"][1]["encrypted_content"] == "gAAAAB-secret=="


def test_sdk_non_stream_message_validates():
    turn = turn_for({"messages": [user("x")]})
    body = anthropic.encode_response(turn, sse_events(REPLIES / "codex-responses.function-call-exec_command.sse"), META)
    message = _sdk_client(orjson.dumps(body), "application/json", []).messages.create(
        model="claude-x", max_tokens=5, messages=[user("x")])
    assert message.content[0].type == "tool_use" and message.content[0].id == "call_f1099219195643f28b43322e"
    assert message.content[0].input == {"cmd": "echo MOCK_TOOL_RAN"}
    assert message.usage.input_tokens == 1234 and message.stop_reason == "tool_use"


def test_structured_output_from_sdk_parse_request():
    import pydantic

    class Weather(pydantic.BaseModel):
        city: str
        temperature: float | None

    captured: list = []
    turn = turn_for({"messages": [user("x")]})
    body = anthropic.encode_response(turn, normalize(text_turn('{"city":"Paris","temperature":21.5}')), META)
    client = _sdk_client(orjson.dumps(body), "application/json", captured)
    parsed = client.messages.parse(model="claude-x", max_tokens=50, messages=[user("x")], output_format=Weather)
    assert parsed.parsed_output == Weather(city="Paris", temperature=21.5)
    request = anthropic.parse_request(captured[0].content).request
    sent = orjson.loads(captured[0].content)["output_config"]["format"]["schema"]
    assert request["text"] == {"format": {"type": "json_schema", "name": "output", "schema": sent, "strict": True}}
    assert sent["required"] == ["city", "temperature"] and sent["additionalProperties"] is False


def test_output_format_validation_and_loose_schema():
    loose = turn_for({"messages": [user("x")], "output_format": {"type": "json_schema", "schema": {
        "type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a"]}}})
    assert loose.request["text"]["format"] == {"type": "json_schema", "name": "output", "strict": False, "schema": {
        "type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a"],
        "additionalProperties": False}}
    assert invalid({"model": "m", "max_tokens": 5, "messages": [user("x")],
                    "output_config": {"format": {"type": "regex"}}}).param == "output_config.format.type"


def test_stream_cut_off_without_terminal_ends_with_error_event():
    encoder = anthropic.StreamEncoder(turn_for({"messages": [user("x")]}), META)
    data = b"".join(encoder.feed(e) for e in normalize(text_turn("partial")[:-1]))
    got = frames(data + encoder.finish())
    assert got[-1] == ("error", {"type": "error", "error": {
        "type": "api_error", "message": "The upstream response ended before it was complete; please retry."}})
    assert encoder.done and encoder.finish() == b""


def test_tuple_schema_converted_upstream_and_restored_in_stream_and_message():
    schema = {"type": "object", "properties": {"point": {"type": "array", "prefixItems": [
        {"type": "number"}, {"type": "number"}]}}, "required": ["point"]}
    turn = turn_for({"messages": [user("x")], "output_config": {"format": {"type": "json_schema", "schema": schema}}})
    sent = turn.request["text"]["format"]
    assert sent["strict"] is True and sent["schema"]["properties"]["point"] == {
        "type": "object", "properties": {"0": {"type": "number"}, "1": {"type": "number"}},
        "required": ["0", "1"], "additionalProperties": False}
    raw = text_turn('{"point":{"0"', ':1.5,"1":2}}')
    message = anthropic.encode_response(turn, normalize(raw), META)
    assert orjson.loads(message["content"][0]["text"]) == {"point": [1.5, 2]}
    texts = [e["delta"]["text"] for kind, e in frames(stream(turn, normalize(raw))) if kind == "content_block_delta"]
    assert orjson.loads("".join(texts)) == {"point": [1.5, 2]}


def test_plain_text_frames_are_the_bytes_the_stop_scanning_path_builds():
    """Without a stop sequence a text delta in an open text block takes a shorter path; its frames must be exactly
    those of the general path (which a stop sequence that never matches takes), across block changes."""
    pieces = ["plain", ' "quoted" \\ ', "é🙂\n", "\u2028\x00", "</script>"]
    raw = (text_turn(*pieces)[:-1] + REASONING_TOOL_TURN[1:5]  # thinking closes the text block
           + text_turn("after", "thinking")[1:-1] + REASONING_TOOL_TURN[5:])  # a new text block, then a tool
    events = normalize(raw)

    def turn(**kw) -> Turn:
        return Turn(request={"model": "claude-x"}, requested_model="claude-x", **kw)

    plain = stream(turn(), events)
    assert plain == stream(turn(stop_sequences=["NEVER-IN-THE-TEXT"]), events)
    deltas = [body["delta"] for kind, body in frames(plain) if kind == "content_block_delta"
              and body["delta"]["type"] == "text_delta"]
    assert [d["text"] for d in deltas] == [*pieces, "after", "thinking"]
