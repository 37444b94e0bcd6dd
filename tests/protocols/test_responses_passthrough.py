"""Responses passthrough: real Codex CLI / SDK bodies and WebSocket frames in, stand-in replies relayed out."""

from __future__ import annotations

import json

import orjson
import pytest

from codex_trio.errors import ErrorKind, GatewayError
from codex_trio.protocols import responses
from codex_trio.protocols.meta import ResponseMeta
from codex_trio.routing import ModelRouter
from codex_trio.upstream.events import CodexEvent
from tests.conftest import FIXTURES

CLIENTS = FIXTURES / "clients"
CHATGPT = FIXTURES / "chatgpt-mode"
REPLIES = CHATGPT / "stand-in-replies"
META = ResponseMeta(id="resp_gw", model="gpt-5.5", created=1700000000)


def read_sse(name: str) -> list[tuple[str, bytes]]:
    """(event name, raw data bytes) per block."""
    blocks = []
    for block in (REPLIES / name).read_text().split("\n\n"):
        lines = block.splitlines()
        if len(lines) >= 2:
            blocks.append((lines[0][len("event: "):], lines[1][len("data: "):].encode()))
    return blocks


def raw_events(name: str) -> list[CodexEvent]:
    return [CodexEvent(kind, orjson.loads(data)) for kind, data in read_sse(name)]


def test_codex_exec_fixture_keeps_items_and_tools_verbatim():
    source = json.loads((CLIENTS / "codex-exec.responses.tool-output.json").read_text())
    turn = responses.parse_request((CLIENTS / "codex-exec.responses.tool-output.json").read_bytes())
    assert turn.request == {
        "model": "gpt-mock", "input": source["input"], "tools": source["tools"], "tool_choice": "auto",
        "parallel_tool_calls": True, "reasoning": {"summary": "auto"}, "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": source["prompt_cache_key"]}
    assert "instructions" not in turn.request  # Codex CLI 0.169 sends none; nothing is invented
    assert turn.stream is True and turn.conversation_id == source["prompt_cache_key"]
    assert turn.options["client_metadata"] == source["client_metadata"]


def test_openai_python_fixture_defaults_to_non_streaming():
    source = json.loads((CLIENTS / "openai-python.responses.function-call-output.json").read_text())
    turn = responses.parse_request((CLIENTS / "openai-python.responses.function-call-output.json").read_bytes())
    assert turn.stream is False
    assert turn.request == {"model": "gpt-mock", "input": source["input"], "tools": source["tools"]}


def test_router_suffix_on_responses_keeps_client_summary():
    router = ModelRouter("gpt-5.4", None, None, {"codex": "gpt-5.4"}, {"gpt-5.4"})
    turn = responses.parse_request(orjson.dumps({"model": "codex-high-fast", "input": "hi",
                                                 "reasoning": {"summary": "detailed"}}))
    router.apply(turn, router.resolve(turn.requested_model, fallback_to_default=True))
    assert turn.request["model"] == "gpt-5.4"
    assert turn.request["reasoning"] == {"summary": "detailed", "effort": "high"}
    assert turn.request["service_tier"] == "priority"
    assert turn.request["input"] == [{"type": "message", "role": "user",
                                      "content": [{"type": "input_text", "text": "hi"}]}]


def test_rejected_fields_stripped_and_items_sanitized():
    body = {"model": "gpt-5.4", "instructions": "be brief", "max_output_tokens": 5, "temperature": 1,
            "top_p": 0.5, "truncation": "auto", "user": "u1", "metadata": {"k": "v"}, "store": True,
            "stream_options": {"include_obfuscation": False}, "stream": True, "service_tier": "flex",
            "previous_response_id": "resp_prev", "generate": False,
            "client_metadata": {"a": "b", "n": 1, "x-openai-subagent": "evil"},
            "text": {"verbosity": "low", "format": {"type": "json_schema", "name": "o", "strict": True,
                                                    "schema": {"type": "object", "properties": {}}}},
            "input": [
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "s"},
                                                                {"type": "bogus"}],
                 "encrypted_content": "gAAA", "status": "completed", "extra": 1},
                {"type": "reasoning", "summary": []},  # no id: cannot be replayed
                {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": ""},
                {"type": "compaction", "id": "cmp_1", "encrypted_content": "ZZZ", "junk": True},
                {"type": "compaction", "encrypted_content": ""},
                {"type": "custom_tool_call", "call_id": "c", "name": "exec", "input": "x"},
                {"type": "additional_tools", "role": "developer", "tools": []}]}
    turn = responses.parse_request(orjson.dumps(body))
    assert turn.request == {
        "model": "gpt-5.4", "instructions": "be brief",
        "input": [{"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "s"}],
                   "status": "completed", "encrypted_content": "gAAA"},
                  {"type": "reasoning", "id": "rs_2", "summary": []},
                  {"type": "compaction", "id": "cmp_1", "encrypted_content": "ZZZ"},
                  {"type": "custom_tool_call", "call_id": "c", "name": "exec", "input": "x"},
                  {"type": "additional_tools", "role": "developer", "tools": []}],
        "text": {"verbosity": "low", "format": {"type": "json_schema", "name": "o", "strict": True, "schema": {
            "type": "object", "properties": {}, "additionalProperties": False}}},
        "previous_response_id": "resp_prev", "generate": False}
    assert turn.service_tier == "flex" and turn.conversation_id == "u1"
    assert turn.options["client_metadata"] == {"a": "b"}
    review = responses.parse_request(orjson.dumps({"model": "m", "input": []}), subagent="review")
    assert review.options["client_metadata"] == {"x-openai-subagent": "review"}
    for key in ("max_output_tokens", "temperature", "truncation", "user", "metadata"):
        assert key in responses.DROPPED_PARAMS


@pytest.mark.parametrize("body,param", [
    ({"input": "x"}, "model"), ({"model": "m", "input": 5}, "input"), ({"model": "m", "background": True},
                                                                          "background"),
    ({"model": "m", "conversation": "conv_1"}, "conversation"),
    ({"model": "m", "tools": [{"type": "image_generation", "background": "transparent"}]}, "tools[0].background"),
    ({"model": "m", "reasoning": {"effort": "max"}}, "reasoning.effort"),
    ({"model": "m", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
])
def test_validation(body, param):
    with pytest.raises(GatewayError) as info:
        responses.parse_request(orjson.dumps(body))
    assert info.value.status == 400 and info.value.param == param


def test_compact_body():
    turn = responses.parse_compact_request(orjson.dumps({
        "model": "gpt-5.4", "input": [{"type": "compaction", "encrypted_content": "E"}], "stream": True,
        "store": False, "include": ["x"], "parallel_tool_calls": False,
        "text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}}}}))
    assert turn.request == {"model": "gpt-5.4", "input": [{"type": "compaction", "encrypted_content": "E"}],
                            "parallel_tool_calls": False, "instructions": "",
                            "text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}}}}
    assert turn.stream is False and turn.options == {"compact": True}


@pytest.mark.parametrize("path", sorted(CHATGPT.glob("exec-*ws*/*frame*response-create*.json")))
def test_websocket_frames_from_real_codex(path):
    message = json.loads(path.read_text())["message"]
    turn = responses.parse_ws_message(orjson.dumps(message))
    assert turn.stream is True
    assert turn.request["input"] == message["input"]
    assert turn.request.get("previous_response_id") == message.get("previous_response_id")
    assert turn.request.get("generate") == message.get("generate")
    assert turn.reasoning_effort == message["reasoning"]["effort"]
    assert turn.request["reasoning"] == {k: v for k, v in message["reasoning"].items() if k != "effort"}
    assert turn.request.get("text") == message.get("text")
    assert "type" not in turn.request and "client_metadata" not in turn.request


def test_websocket_rejects_other_frames_and_encodes_errors():
    with pytest.raises(GatewayError) as info:
        responses.parse_ws_message('{"type":"response.append","input":[]}')
    assert info.value.code == "unsupported_message_type"
    frame = json.loads(responses.ws_error_message(GatewayError(429, "limit", ErrorKind.RATE_LIMIT,
                                                               code="usage_limit_reached",
                                                               headers=[("retry-after", "30")])))
    assert frame == {"type": "error", "status_code": 429, "headers": {"retry-after": "30"},
                     "error": {"type": "rate_limit_error", "code": "usage_limit_reached", "message": "limit"}}


def test_websocket_messages_relay_events_and_end_with_a_terminal():
    encoder = responses.StreamEncoder(plain_turn(), META)
    events = raw_events("codex-responses.text.sse")
    assert encoder.ws_feed(CodexEvent("codex.rate_limits", {"type": "codex.rate_limits"})) == []
    messages = [m for e in events[:5] for m in encoder.ws_feed(e)]
    assert [json.loads(m) for m in messages] == [e.data for e in events[:5]]
    [failed] = encoder.ws_finish()
    assert json.loads(failed)["type"] == "response.failed"
    assert encoder.ws_finish() == [] and encoder.ws_feed(events[5]) == []
    done = responses.StreamEncoder(plain_turn(), META)
    assert len([m for e in events for m in done.ws_feed(e)]) == len(events)
    assert done.ws_finish() == [] and done.ws_fail(GatewayError(500, "late")) == []


def relay(turn, events) -> bytes:
    encoder = responses.StreamEncoder(turn, META)
    return b"".join(encoder.feed_raw(e) for e in events) + encoder.finish()


def plain_turn(**options):
    return responses.parse_request(orjson.dumps({"model": "gpt-5.5", "input": "hi", "stream": True}))


@pytest.mark.parametrize("name", ["codex-responses.text.sse", "codex-responses.function-call-exec_command.sse",
                                  "codex-responses.custom-tool-call-exec.sse"])
def test_stream_relays_every_event_verbatim(name):
    out = relay(plain_turn(), raw_events(name) + [CodexEvent("codex.rate_limits", {"type": "codex.rate_limits"})])
    expected = b"".join(b"event: " + k.encode() + b"\ndata: " + orjson.dumps(orjson.loads(d)) + b"\n\n"
                        for k, d in read_sse(name))
    assert out == expected
    assert b"codex.rate_limits" not in out


def test_text_deltas_relay_as_they_came_and_nothing_follows_the_end():
    """A text delta takes a shorter path; it is still the backend's object, typed, and nothing after the end."""
    kind = "response.output_text.delta"
    delta = {"type": kind, "item_id": "msg_1", "output_index": 0, "delta": 'é "x" \u2028'}
    untyped = {"item_id": "msg_1", "delta": "y"}  # the event's type is added when its object lacks it
    encoder = responses.StreamEncoder(plain_turn(), META)
    assert encoder.feed_raw(CodexEvent(kind, delta)) == b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(
        delta) + b"\n\n"
    assert encoder.feed_raw(CodexEvent(kind, untyped)) == b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(
        {**untyped, "type": kind}) + b"\n\n"
    encoder.feed_raw(CodexEvent("response.completed", {"type": "response.completed", "response": {"id": "r"}}))
    assert encoder.feed_raw(CodexEvent(kind, delta)) == b""


def test_stream_eof_gets_synthetic_failed_event():
    events = raw_events("codex-responses.text.sse")[:4]
    frames = relay(plain_turn(), events).decode().split("\n\n")[:-1]
    assert frames[-1].startswith("event: response.failed\ndata: ")
    data = json.loads(frames[-1].split("data: ", 1)[1])
    assert data["type"] == "response.failed"
    assert data["response"]["id"] == "resp_8cce706d41c94af58f2ab9e78c81b7a4"
    assert data["response"]["status"] == "failed"
    assert data["error"] == {"type": "server_error", "code": "stream_disconnected",
                             "message": "Upstream stream closed before response.completed."}


def test_stream_fail_before_any_event_and_heartbeat():
    encoder = responses.StreamEncoder(plain_turn(), META)
    assert encoder.heartbeat() == b": ping\n\n"
    out = encoder.fail(GatewayError(429, "All accounts are rate-limited", ErrorKind.RATE_LIMIT,
                                    code="rate_limit_exceeded"))
    data = json.loads(out.decode().split("data: ", 1)[1])
    assert data["response"]["id"] == "resp_gw" and data["error"]["type"] == "rate_limit_error"
    assert encoder.feed_raw(raw_events("codex-responses.text.sse")[0]) == b""


def test_stream_tuple_schema_rewrites_text():
    schema = {"type": "object", "properties": {"t": {"type": "array", "prefixItems": [{"type": "integer"}]}}}
    turn = responses.parse_request(orjson.dumps({"model": "m", "input": "x", "text": {"format": {
        "type": "json_schema", "name": "n", "schema": schema}}}))
    assert turn.options["tuple_schema"] == schema
    delta = {"type": "response.output_text.delta", "item_id": "msg", "output_index": 0, "content_index": 0}
    message = {"type": "message", "content": [{"type": "output_text", "text": '{"t":{"0":7}}'}]}
    events = [CodexEvent("response.output_text.delta", {**delta, "delta": '{"t":{"0"'}),
              CodexEvent("response.output_text.delta", {**delta, "delta": ':7}}'}),
              CodexEvent("response.output_text.done", {"type": "response.output_text.done", "text": '{"t":{"0":7}}'}),
              CodexEvent("response.content_part.done", {"type": "response.content_part.done",
                                                        "part": message["content"][0]}),
              CodexEvent("response.output_item.done", {"type": "response.output_item.done", "item": message}),
              CodexEvent("response.completed", {"type": "response.completed", "response": {
                  "id": "r", "status": "completed", "output": [message]}})]
    frames = [json.loads(f.split("data: ", 1)[1]) for f in relay(turn, events).decode().split("\n\n")[:-1]]
    assert [f["type"] for f in frames] == ["response.output_text.delta", "response.output_text.done",
                                           "response.content_part.done", "response.output_item.done",
                                           "response.completed"]
    assert frames[0]["delta"] == '{"t":[7]}' and frames[0]["item_id"] == "msg"
    assert frames[1]["text"] == '{"t":[7]}'
    assert frames[2]["part"]["text"] == '{"t":[7]}'
    assert frames[3]["item"]["content"][0]["text"] == '{"t":[7]}'
    assert frames[4]["response"]["output"][0]["content"][0]["text"] == '{"t":[7]}'


def test_encode_response_returns_final_response_object():
    events = raw_events("codex-responses.text.sse")
    reply = responses.encode_response(plain_turn(), events, META)
    assert reply == events[-1].data["response"]


def test_encode_response_backfills_output():
    events = raw_events("codex-responses.text.sse")
    final = dict(events[-1].data)
    final["response"] = {**final["response"], "output": []}
    items_only = events[:-1] + [CodexEvent("response.completed", final)]
    reply = responses.encode_response(plain_turn(), items_only, META)
    assert reply["output"] == [events[-2].data["item"]]
    deltas_only = [e for e in events if e.type == "response.output_text.delta"] + [
        CodexEvent("response.completed", final)]
    reply = responses.encode_response(plain_turn(), deltas_only, META)
    assert reply["output"][0]["content"][0]["text"] == "MOCK_OK: hi from the local ChatGPT backend stand-in."


def test_encode_response_failures():
    with pytest.raises(GatewayError) as info:
        responses.encode_response(plain_turn(), [CodexEvent("response.failed", {"type": "response.failed", "response": {
            "status": "failed", "error": {"code": "usage_limit_reached", "message": "limit"}}})], META)
    assert info.value.status == 429 and info.value.code == "usage_limit_reached"
    with pytest.raises(GatewayError) as info:
        responses.encode_response(plain_turn(), raw_events("codex-responses.text.sse")[:3], META)
    assert info.value.status == 502
