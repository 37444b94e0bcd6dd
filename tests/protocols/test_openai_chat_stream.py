"""Chat StreamEncoder / encode_response: real stand-in SSE replies through the real normalizer, exact frames."""

from __future__ import annotations


import orjson
import pytest

from codex_trio.errors import GatewayError, ErrorKind
from codex_trio.protocols import openai_chat as chat
from codex_trio.protocols.meta import ResponseMeta
from codex_trio.turn import Turn
from codex_trio.upstream.events import CodexEvent, EventNormalizer
from tests.conftest import FIXTURES

REPLIES = FIXTURES / "chatgpt-mode/stand-in-replies"
META = ResponseMeta(id="chatcmpl-test", model="gpt-5.5", created=1700000000)
HEAD = '{"id":"chatcmpl-test","object":"chat.completion.chunk","created":1700000000,"model":"gpt-5.5",'


def read_sse(name: str) -> list[CodexEvent]:
    events = []
    for block in (REPLIES / name).read_text().split("\n\n"):
        lines = [line for line in block.splitlines() if line.startswith("data: ")]
        if lines:
            data = orjson.loads(lines[0][6:])
            events.append(CodexEvent(data["type"], data))
    return events


def ev(kind: str, **data) -> CodexEvent:
    return CodexEvent(kind, {"type": kind, **data})


def turn(**kw) -> Turn:
    options = kw.pop("options", {})
    return Turn(request={"model": "gpt-5.5"}, requested_model="gpt-5.5", options=options, **kw)


def run(t: Turn, raw: list[CodexEvent]) -> list[str]:
    normalizer = EventNormalizer()
    encoder = chat.StreamEncoder(t, META)
    out = b""
    for event in raw:
        for normalized in normalizer.feed(event):
            out += encoder.feed(normalized)
    out += encoder.finish()
    assert out.endswith(b"\n\n")
    return out.decode().split("\n\n")[:-1]


def chunk(delta: str, finish: str = "null", usage: bool = False) -> str:
    tail = ',"usage":null' if usage else ""
    return f'data: {HEAD}"choices":[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]{tail}}}'


def completed(usage=None, status="completed", reason=None):
    response = {"id": "resp_1", "status": status, "output": []}
    if usage:
        response["usage"] = usage
    if reason:
        response["incomplete_details"] = {"reason": reason}
    return ev("response.incomplete" if status == "incomplete" else "response.completed", response=response)


def text_events(*pieces: str) -> list[CodexEvent]:
    return [ev("response.created", response={"id": "resp_1", "model": "gpt-5.5"})] + [
        ev("response.output_text.delta", item_id="msg_1", output_index=0, delta=p) for p in pieces]


def test_text_fixture_exact_frames():
    frames = run(turn(), read_sse("codex-responses.text.sse"))
    assert frames == [
        chunk('{"role":"assistant","content":"","refusal":null}'),
        chunk('{"content":"MOCK_OK: hi from"}'),
        chunk('{"content":" the local ChatG"}'),
        chunk('{"content":"PT backend stand"}'),
        chunk('{"content":"-in."}'),
        chunk("{}", '"stop"'),
        "data: [DONE]",
    ]
    for frame in frames[:-1]:
        assert orjson.loads(frame[6:])["object"] == "chat.completion.chunk"


def test_plain_text_chunks_are_the_bytes_the_stop_scanning_path_builds():
    """Without a stop sequence a text delta takes a shorter path; its chunks must be exactly those of the general
    path (which a stop sequence that never matches takes): escapes, non-ASCII, and text after a tool call."""
    pieces = ["plain", ' "quoted" \\ ', "é🙂\n", "\u2028\x00", "</script>"]
    call = [ev("response.output_item.added", output_index=1, item={"type": "function_call", "id": "fc_1",
                                                                    "call_id": "call_1", "name": "f"}),
            ev("response.function_call_arguments.delta", item_id="fc_1", delta="{}")]
    raw = text_events(*pieces) + call + text_events("after") + [completed()]
    for options in ({}, {"include_usage": True}):
        plain = run(turn(options=options), raw)
        assert plain == run(turn(options=options, stop_sequences=["NEVER-IN-THE-TEXT"]), raw)
        assert chunk('{"content":' + orjson.dumps("é🙂\n").decode() + "}", usage=bool(options)) in plain


def test_include_usage_adds_null_usage_and_final_usage_chunk():
    usage = {"input_tokens": 812, "input_tokens_details": {"cached_tokens": 768}, "output_tokens": 41,
             "output_tokens_details": {"reasoning_tokens": 18}, "total_tokens": 853}
    frames = run(turn(options={"include_usage": True}), text_events("Hi") + [completed(usage)])
    assert frames[0] == chunk('{"role":"assistant","content":"","refusal":null}', usage=True)
    assert frames[1] == chunk('{"content":"Hi"}', usage=True)
    assert frames[2] == chunk("{}", '"stop"', usage=True)
    final = orjson.loads(frames[3][6:])
    assert final["choices"] == []
    assert final["usage"] == {"prompt_tokens": 812, "completion_tokens": 41, "total_tokens": 853,
                              "prompt_tokens_details": {"cached_tokens": 768},
                              "completion_tokens_details": {"reasoning_tokens": 18}}
    assert frames[4] == "data: [DONE]"


def test_function_call_fixture_exact_frames():
    frames = run(turn(), read_sse("codex-responses.function-call-exec_command.sse"))
    assert frames == [
        chunk('{"role":"assistant","content":"","refusal":null}'),
        chunk('{"tool_calls":[{"index":0,"id":"call_f1099219195643f28b43322e","type":"function",'
              '"function":{"name":"exec_command","arguments":""}}]}'),
        chunk('{"tool_calls":[{"index":0,"function":{"arguments":"{\\"cmd\\": \\"echo MOCK_TOOL_RAN\\"}"}}]}'),
        chunk("{}", '"tool_calls"'),
        "data: [DONE]",
    ]


def test_custom_tool_call_fixture_and_cursor_envelope():
    frames = run(turn(), read_sse("codex-responses.custom-tool-call-exec.sse"))
    assert frames[1] == chunk('{"tool_calls":[{"index":0,"id":"call_bd585a6b15d1436b97d10916","type":"custom",'
                              '"custom":{"name":"exec","input":""}}]}')
    assert frames[2] == chunk('{"tool_calls":[{"index":0,"custom":{"input":"text(\\"MOCK_TOOL_RAN\\")"}}]}')
    assert frames[3] == chunk("{}", '"tool_calls"')
    cursor = run(turn(options={"custom_as_function": True}), read_sse("codex-responses.custom-tool-call-exec.sse"))
    assert '"type":"function","function":{"name":"exec","arguments":""}' in cursor[1]
    assert cursor[2] == chunk('{"tool_calls":[{"index":0,"function":{"arguments":"text(\\"MOCK_TOOL_RAN\\")"}}]}')


def test_minimal_fixture_text_only_in_the_finished_item():
    # The minimal stream that works with real Codex: output_item.done(message) + completed, no deltas.
    frames = run(turn(), read_sse("codex-responses.minimal-that-works.sse"))
    assert frames == [chunk('{"role":"assistant","content":"","refusal":null}'),
                      chunk('{"content":"MOCK_OK: hi from the local ChatGPT backend stand-in."}'),
                      chunk("{}", '"stop"'), "data: [DONE]"]
    reply = collect(turn(), read_sse("codex-responses.minimal-that-works.sse"))
    assert reply["choices"][0]["message"]["content"] == "MOCK_OK: hi from the local ChatGPT backend stand-in."


def test_call_done_without_deltas_sends_full_arguments_once():
    raw = [ev("response.output_item.added", output_index=0,
              item={"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": ""}),
           ev("response.function_call_arguments.done", item_id="fc_1", arguments='{"a":1}'),
           ev("response.output_item.done", output_index=0,
              item={"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": '{"a":1}'}),
           completed()]
    frames = run(turn(), raw)
    assert frames[2] == chunk('{"tool_calls":[{"index":0,"function":{"arguments":"{\\"a\\":1}"}}]}')
    assert len(frames) == 5


def test_parallel_calls_get_distinct_indices():
    raw = []
    for n in (1, 2):
        raw.append(ev("response.output_item.added", output_index=n,
                      item={"type": "function_call", "id": f"fc_{n}", "call_id": f"call_{n}", "name": "f"}))
    raw += [ev("response.function_call_arguments.delta", item_id="fc_2", delta="{}"),
            ev("response.function_call_arguments.delta", item_id="fc_1", delta="[]"), completed()]
    frames = run(turn(), raw)
    assert '"index":1,"function":{"arguments":"{}"}' in frames[3]
    assert '"index":0,"function":{"arguments":"[]"}' in frames[4]


def test_reasoning_content_deltas_and_paragraph_break():
    raw = [ev("response.reasoning_summary_text.delta", item_id="rs_1", summary_index=0, delta="Think"),
           ev("response.reasoning_summary_text.delta", item_id="rs_1", summary_index=1, delta="More"),
           completed()]
    frames = run(turn(), raw)
    assert frames[1] == chunk('{"reasoning_content":"Think"}')
    assert frames[2] == chunk('{"reasoning_content":"\\n\\nMore"}')
    hidden = run(turn(expose_reasoning=False), raw)
    assert len(hidden) == 3


@pytest.mark.parametrize("reason,finish", [("max_output_tokens", "length"), ("content_filter", "content_filter")])
def test_incomplete_maps_to_finish_reason(reason, finish):
    frames = run(turn(), text_events("partial") + [completed(status="incomplete", reason=reason)])
    assert frames[-2] == chunk("{}", f'"{finish}"')


def test_stop_sequence_across_deltas():
    frames = run(turn(stop_sequences=["END"]), text_events("Hello E", "N", "Dafter", " more") + [completed()])
    assert frames[1:] == [chunk('{"content":"Hello "}'), chunk("{}", '"stop"'), "data: [DONE]"]


def test_stop_sequence_false_start_is_released():
    frames = run(turn(stop_sequences=["END"]), text_events("an E", "Nd", " done") + [completed()])
    texts = [orjson.loads(f[6:])["choices"][0]["delta"].get("content") for f in frames[1:-2]]
    assert "".join(texts) == "an ENd done"
    assert texts[0] == "an "  # the "E" was held back: it could start "END"


def test_stop_sequence_hides_later_tool_calls():
    raw = text_events("x STOP y") + [
        ev("response.output_item.added", output_index=1,
           item={"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f"}), completed()]
    frames = run(turn(stop_sequences=["STOP"]), raw)
    assert frames[1:] == [chunk('{"content":"x "}'), chunk("{}", '"stop"'), "data: [DONE]"]


def image_events(fmt="png"):
    return [ev("response.output_item.done", output_index=0,
               item={"type": "image_generation_call", "id": "ig_1", "status": "completed", "result": "QUJD",
                     "revised_prompt": "a cat", "output_format": fmt}), completed()]


def test_image_inline_markdown_by_default():
    frames = run(turn(), text_events("Here:") + image_events())
    assert frames[2] == chunk('{"content":"\\n\\n![image](data:image/png;base64,QUJD)"}')
    assert frames[3] == chunk("{}", '"stop"')


def test_image_as_tool_call_when_not_inline():
    frames = run(turn(inline_images=False), image_events("webp"))
    assert frames[1] == chunk('{"tool_calls":[{"index":0,"id":"ig_1","type":"function","function":'
                              '{"name":"image_generation","arguments":""}}]}')
    assert frames[2] == chunk('{"tool_calls":[{"index":0,"function":{"arguments":'
                              '"{\\"result\\":\\"QUJD\\",\\"revised_prompt\\":\\"a cat\\"}"}}]}')
    assert frames[3] == chunk("{}", '"tool_calls"')


def test_upstream_failure_mid_stream_is_error_frame_then_done():
    raw = text_events("hi") + [ev("response.failed", response={"id": "resp_1", "status": "failed", "error": {
        "code": "rate_limit_exceeded", "message": "Slow down"}})]
    frames = run(turn(), raw)
    assert orjson.loads(frames[2][6:]) == {"error": {"message": "Slow down", "type": "rate_limit_error",
                                                     "param": None, "code": "rate_limit_exceeded"}}
    assert frames[3] == "data: [DONE]"


def test_eof_without_terminal_ends_with_error_and_done():
    frames = run(turn(), text_events("cut"))
    body = orjson.loads(frames[2][6:])
    assert body["error"]["code"] == "stream_disconnected" and body["error"]["type"] == "server_error"
    assert frames[3] == "data: [DONE]"


def test_fail_and_heartbeat_and_nothing_after_done():
    encoder = chat.StreamEncoder(turn(), META)
    assert encoder.heartbeat() == b": ping\n\n"
    out = encoder.fail(GatewayError(503, "No account available", ErrorKind.OVERLOADED, code="no_available_accounts"))
    frames = out.decode().split("\n\n")[:-1]
    assert frames[0] == chunk('{"role":"assistant","content":"","refusal":null}')
    assert orjson.loads(frames[1][6:])["error"]["code"] == "no_available_accounts"
    assert frames[2] == "data: [DONE]"
    assert encoder.finished and encoder.finish() == b"" and encoder.fail(GatewayError(500, "x")) == b""


def test_tuple_schema_text_is_buffered_and_restored():
    schema = {"type": "object", "properties": {"p": {"type": "array", "prefixItems": [{"type": "number"},
                                                                                      {"type": "string"}]}}}
    frames = run(turn(options={"tuple_schema": schema}), text_events('{"p":{"0":1,', '"1":"a"}}') + [completed()])
    assert frames[1] == chunk('{"content":"{\\"p\\":[1,\\"a\\"]}"}')
    assert frames[2] == chunk("{}", '"stop"')


# ---- non-streaming ----------------------------------------------------------------------------------------------

def collect(t: Turn, raw: list[CodexEvent]) -> dict:
    normalizer = EventNormalizer()
    events = [n for e in raw for n in normalizer.feed(e)]
    return chat.encode_response(t, events, META)


def test_encode_response_text_fixture():
    usage = {"input_tokens": 20, "output_tokens": 15, "output_tokens_details": {"reasoning_tokens": 8}}
    raw = read_sse("codex-responses.text.sse")
    raw[-1] = completed(usage)
    reply = collect(turn(), [ev("response.reasoning_summary_text.delta", item_id="rs", delta="hmm")] + raw)
    assert reply == {
        "id": "chatcmpl-test", "object": "chat.completion", "created": 1700000000, "model": "gpt-5.5",
        "choices": [{"index": 0, "message": {"role": "assistant",
                                             "content": "MOCK_OK: hi from the local ChatGPT backend stand-in.",
                                             "refusal": None, "reasoning_content": "hmm"},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 15, "total_tokens": 35,
                  "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 8}},
    }


def test_encode_response_tool_calls_fixture():
    reply = collect(turn(), read_sse("codex-responses.function-call-exec_command.sse"))
    choice = reply["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [{"id": "call_f1099219195643f28b43322e", "type": "function", "function": {
        "name": "exec_command", "arguments": '{"cmd": "echo MOCK_TOOL_RAN"}'}}]
    custom = collect(turn(), read_sse("codex-responses.custom-tool-call-exec.sse"))
    assert custom["choices"][0]["message"]["tool_calls"] == [
        {"id": "call_bd585a6b15d1436b97d10916", "type": "custom", "custom": {"name": "exec",
                                                                            "input": 'text("MOCK_TOOL_RAN")'}}]


def test_encode_response_stop_image_and_length():
    reply = collect(turn(stop_sequences=["\n\n!["]), text_events("Look") + image_events())
    assert reply["choices"][0]["message"]["content"] == "Look"
    reply = collect(turn(), image_events("jpeg"))
    assert reply["choices"][0]["message"]["content"] == "![image](data:image/jpeg;base64,QUJD)"
    reply = collect(turn(), text_events("x") + [completed(status="incomplete", reason="max_output_tokens")])
    assert reply["choices"][0]["finish_reason"] == "length"


def test_encode_response_failures_raise_gateway_errors():
    with pytest.raises(GatewayError) as info:
        collect(turn(), text_events("x") + [ev("error", error={"code": "server_is_overloaded", "message": "busy"})])
    assert info.value.status == 503
    with pytest.raises(GatewayError) as info:
        collect(turn(), text_events("x"))
    assert info.value.status == 502 and info.value.code == "stream_disconnected"


@pytest.mark.parametrize("kind,status,type_", [
    (ErrorKind.INVALID_REQUEST, 400, "invalid_request_error"), (ErrorKind.AUTHENTICATION, 401, "authentication_error"),
    (ErrorKind.PERMISSION, 403, "permission_error"), (ErrorKind.NOT_FOUND, 404, "not_found_error"),
    (ErrorKind.RATE_LIMIT, 429, "rate_limit_error"), (ErrorKind.UPSTREAM, 502, "server_error")])
def test_encode_error_envelope(kind, status, type_):
    err = GatewayError(status, "msg", kind, code="c", param="p")
    assert chat.encode_error(err) == (status, {"error": {"message": "msg", "type": type_, "param": "p", "code": "c"}})
