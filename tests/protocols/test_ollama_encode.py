"""Ollama reply encoders, driven by the real upstream stand-in replies through the real EventNormalizer."""

from __future__ import annotations


import orjson
import pytest

from codex_trio.errors import ErrorKind, GatewayError, not_found
from codex_trio.protocols import ollama
from codex_trio.protocols.meta import ResponseMeta
from codex_trio.upstream.events import CodexEvent, EventNormalizer
from tests.conftest import FIXTURES

REPLIES = FIXTURES / "chatgpt-mode/stand-in-replies"
META = ResponseMeta(id="unused", model="gpt-5.4", created=1795318737)
T0 = "2026-11-22T03:38:57.000000Z"  # iso_timestamp(META.created) -- checked below
T1 = "2026-11-22T04:05:54.250000Z"
TIMINGS = ollama.Timings(total_ns=2_000_000_000, load_ns=100_000_000, prompt_eval_ns=400_000_000,
                         eval_ns=1_500_000_000)
USAGE_FIELDS = {"total_duration": 2_000_000_000, "load_duration": 100_000_000, "prompt_eval_count": 1234,
                "prompt_eval_duration": 400_000_000, "eval_count": 12, "eval_duration": 1_500_000_000}


def sse_events(name: str) -> list[CodexEvent]:
    """The `data:` objects of a captured SSE reply, as the upstream decoder hands them over."""
    events = []
    for block in (REPLIES / name).read_text().split("\n\n"):
        data = [line[len("data: "):] for line in block.splitlines() if line.startswith("data: ")]
        if data:
            obj = orjson.loads("\n".join(data))
            events.append(CodexEvent(obj["type"], obj))
    return events


def normalized(events: list[CodexEvent]) -> list:
    normalizer = EventNormalizer()
    return [n for e in events for n in normalizer.feed(e)]


def reasoning_events(*deltas: str) -> list[CodexEvent]:
    """A reasoning item with summary deltas, in the backend's shape (no stand-in capture has one)."""
    item = {"type": "reasoning", "id": "rs_1", "summary": []}
    out = [CodexEvent("response.output_item.added", {"type": "response.output_item.added", "output_index": 0,
                                                       "item": item})]
    for delta in deltas:
        out.append(CodexEvent("response.reasoning_summary_text.delta",
                              {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1",
                               "output_index": 0, "summary_index": 0, "delta": delta}))
    done = {**item, "summary": [{"type": "summary_text", "text": "".join(deltas)}], "encrypted_content": "gAAA"}
    out.append(CodexEvent("response.output_item.done", {"type": "response.output_item.done", "output_index": 0,
                                                          "item": done}))
    return out


def with_reasoning(name: str, *deltas: str) -> list[CodexEvent]:
    events = sse_events(name)
    return events[:1] + reasoning_events(*deltas) + events[1:]


def text_deltas(*pieces: str) -> list[CodexEvent]:
    """created, message item, the given text deltas, completed -- for stop-sequence cases."""
    events = sse_events("codex-responses.text.sse")
    created, added, completed = events[0], events[1], events[-1]
    deltas = [CodexEvent("response.output_text.delta",
                         {"type": "response.output_text.delta", "item_id": "msg_a78393e1f2924f4291b56958",
                          "output_index": 0, "content_index": 0, "delta": p}) for p in pieces]
    return [created, added, *deltas, completed]


def run_stream(turn, events, *, timings=TIMINGS) -> list[dict]:
    encoder = ollama.StreamEncoder(turn, META)
    out = b""
    for event in normalized(events):
        out += encoder.feed(event, timings=timings)
    out += encoder.finish()
    assert out.endswith(b"\n")
    return [orjson.loads(line) for line in out.splitlines()]


def chat_turn(body: dict):
    return ollama.parse_chat(orjson.dumps({"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}],
                                           **body}))


def line(content: str = "", **extra) -> dict:
    return {"model": "gpt-5.4", "created_at": T0, "message": {"role": "assistant", "content": content, **extra},
            "done": False}


def done(reason: str = "stop", **usage) -> dict:
    return {"model": "gpt-5.4", "created_at": T0, "message": {"role": "assistant", "content": ""},
            "done_reason": reason, "done": True, **(usage or USAGE_FIELDS)}


def test_iso_timestamp_is_rfc3339_utc():
    assert ollama.iso_timestamp(META.created) == T0
    assert ollama.iso_timestamp(1795318738.25) == "2026-11-22T03:38:58.250000Z"


def test_timings_from_marks():
    timings = ollama.Timings.from_marks(start=10.0, accepted=10.1, first_token=10.5, end=12.0)
    assert timings == ollama.Timings(2_000_000_000, 100_000_000, 400_000_000, 1_500_000_000)
    no_token = ollama.Timings.from_marks(start=1.0, accepted=1.5, first_token=None, end=2.0)
    assert (no_token.prompt_eval_ns, no_token.eval_ns) == (500_000_000, 0)


def test_chat_stream_text_reply_exact_lines():
    lines = run_stream(chat_turn({}), sse_events("codex-responses.text.sse"))
    assert lines == [
        line("MOCK_OK: hi from"), line(" the local ChatG"), line("PT backend stand"), line("-in."), done(),
    ]


def test_chat_stream_message_without_deltas_is_not_lost():
    # The "minimal that works" capture has only output_item.done with the message + completed.
    lines = run_stream(chat_turn({}), sse_events("codex-responses.minimal-that-works.sse"))
    assert lines == [line("MOCK_OK: hi from the local ChatGPT backend stand-in."), done()]


def test_chat_stream_tool_call_has_object_arguments_and_upstream_id():
    lines = run_stream(chat_turn({}), sse_events("codex-responses.function-call-exec_command.sse"))
    assert lines == [
        line("", tool_calls=[{"id": "call_f1099219195643f28b43322e",
                              "function": {"index": 0, "name": "exec_command",
                                           "arguments": {"cmd": "echo MOCK_TOOL_RAN"}}}]),
        done(),
    ]


def test_chat_stream_thinking_lines_before_text():
    turn = chat_turn({"think": "high"})
    lines = run_stream(turn, with_reasoning("codex-responses.text.sse", "Thinking about", " hi."))
    assert lines[:2] == [line("", thinking="Thinking about"), line("", thinking=" hi.")]
    assert lines[2] == line("MOCK_OK: hi from")
    assert lines[-1] == done()


def test_think_false_hides_thinking():
    lines = run_stream(chat_turn({"think": False}), with_reasoning("codex-responses.text.sse", "secret"))
    assert all("thinking" not in l["message"] for l in lines)
    assert "".join(l["message"]["content"] for l in lines) == "MOCK_OK: hi from the local ChatGPT backend stand-in."


def test_created_at_follows_injected_clock():
    encoder = ollama.StreamEncoder(chat_turn({}), META)
    events = normalized(sse_events("codex-responses.text.sse"))
    first = next(e for e in events if type(e).__name__ == "TextDelta")
    assert orjson.loads(encoder.feed(first, now_iso=T1))["created_at"] == T1


def test_generate_stream_uses_response_field():
    turn = ollama.parse_generate(b'{"model":"gpt-5.4","prompt":"hi","think":"low"}')
    lines = run_stream(turn, with_reasoning("codex-responses.text.sse", "hmm"))
    assert lines[0] == {"model": "gpt-5.4", "created_at": T0, "response": "", "thinking": "hmm", "done": False}
    assert lines[1] == {"model": "gpt-5.4", "created_at": T0, "response": "MOCK_OK: hi from", "done": False}
    assert lines[-1] == {"model": "gpt-5.4", "created_at": T0, "response": "", "done_reason": "stop", "done": True,
                         **USAGE_FIELDS}


def test_stop_sequence_split_across_deltas():
    turn = chat_turn({"options": {"stop": ["STOP!"]}})
    lines = run_stream(turn, text_deltas("one two ST", "OP", "! three"))
    assert [l["message"]["content"] for l in lines[:-1]] == ["one two "]
    assert lines[-1]["done_reason"] == "stop"


def test_stop_sequence_false_start_is_released():
    turn = chat_turn({"options": {"stop": "STOP"}})
    lines = run_stream(turn, text_deltas("a ST", "ART b", " ST"))
    assert "".join(l["message"]["content"] for l in lines) == "a START b ST"
    assert lines[-1]["done"] is True


def test_stop_sequence_earliest_of_several_wins():
    turn = chat_turn({"options": {"stop": ["zzz", "\n\n"]}})
    lines = run_stream(turn, text_deltas("para one\n", "\npara two zzz"))
    assert "".join(l["message"]["content"] for l in lines) == "para one"


def test_stop_hit_then_upstream_cut_off_still_ends_with_done():
    encoder = ollama.StreamEncoder(chat_turn({"options": {"stop": ["-in"]}}), META)
    out = b""
    for event in normalized(text_deltas("MOCK", " stand", "-in.")[:-1]):  # no response.completed
        out += encoder.feed(event)
    assert encoder.stopped
    out += encoder.finish(timings=TIMINGS)
    lines = [orjson.loads(l) for l in out.splitlines()]
    assert "".join(l["message"]["content"] for l in lines) == "MOCK stand"
    assert lines[-1] == done(prompt_eval_count=0, eval_count=0, total_duration=2_000_000_000,
                             load_duration=100_000_000, prompt_eval_duration=400_000_000,
                             eval_duration=1_500_000_000)


def test_incomplete_max_output_tokens_is_length():
    events = sse_events("codex-responses.text.sse")
    completed = events[-1].data
    incomplete = {**completed, "type": "response.incomplete",
                  "response": {**completed["response"], "status": "incomplete",
                               "incomplete_details": {"reason": "max_output_tokens"}}}
    lines = run_stream(chat_turn({}), events[:-1] + [CodexEvent("response.incomplete", incomplete)])
    assert lines[-1]["done_reason"] == "length"


def test_upstream_failure_mid_stream_ends_with_error_line():
    events = sse_events("codex-responses.text.sse")[:5]
    events.append(CodexEvent("response.failed", {"type": "response.failed", "response": {
        "id": "resp_x", "status": "failed", "error": {"code": "server_error", "message": "The model crashed"}}}))
    lines = run_stream(chat_turn({}), events)
    assert lines[-1] == {"error": "The model crashed"}
    assert [l["message"]["content"] for l in lines[:-1]] == ["MOCK_OK: hi from", " the local ChatG"]


def test_premature_close_ends_with_error_line():
    lines = run_stream(chat_turn({}), sse_events("codex-responses.text.sse")[:-1])
    assert lines[-1] == {"error": "The upstream response ended before it was complete; please retry."}


def test_fail_after_start_and_nothing_after_terminal():
    encoder = ollama.StreamEncoder(chat_turn({}), META)
    assert encoder.heartbeat() == b""
    assert encoder.fail(GatewayError(503, "no account available", ErrorKind.OVERLOADED)) == \
        b'{"error":"no account available"}\n'
    assert encoder.fail(GatewayError(503, "again")) == b""
    assert encoder.finish() == b""


def test_non_streaming_chat_collects_everything():
    turn = chat_turn({"stream": False, "think": True})
    body = ollama.encode_response(turn, normalized(with_reasoning("codex-responses.text.sse", "a", "b")), META,
                                  now_iso=T1, timings=TIMINGS)
    assert body == {"model": "gpt-5.4", "created_at": T1,
                    "message": {"role": "assistant", "content": "MOCK_OK: hi from the local ChatGPT backend stand-in.",
                                "thinking": "ab"},
                    "done_reason": "stop", "done": True, **USAGE_FIELDS}


def test_non_streaming_tool_call():
    body = ollama.encode_response(chat_turn({"stream": False}),
                                  normalized(sse_events("codex-responses.function-call-exec_command.sse")), META)
    assert body["message"] == {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_f1099219195643f28b43322e",
         "function": {"index": 0, "name": "exec_command", "arguments": {"cmd": "echo MOCK_TOOL_RAN"}}}]}
    assert body["created_at"] == T0 and body["eval_count"] == 12 and body["total_duration"] == 0


def test_non_streaming_generate_with_stop():
    turn = ollama.parse_generate(b'{"model":"gpt-5.4","prompt":"hi","stream":false,"options":{"stop":["local"]}}')
    body = ollama.encode_response(turn, normalized(sse_events("codex-responses.text.sse")), META)
    assert body["response"] == "MOCK_OK: hi from the "
    assert "message" not in body and body["done"] is True


def test_non_streaming_failure_raises_gateway_error():
    events = sse_events("codex-responses.text.sse")[:3] + [CodexEvent("error", {
        "type": "error", "error": {"code": "rate_limit_exceeded", "message": "slow down"}})]
    with pytest.raises(GatewayError) as info:
        ollama.encode_response(chat_turn({}), normalized(events), META)
    assert (info.value.status, info.value.message, info.value.code) == (502, "slow down", "rate_limit_exceeded")
    with pytest.raises(GatewayError) as info:
        ollama.encode_response(chat_turn({}), normalized(sse_events("codex-responses.text.sse")[:-1]), META)
    assert info.value.code == "premature_close"


def test_tool_call_round_trip_maps_result_to_upstream_id():
    """A call the gateway emitted comes back (with or without its id) and its result reaches the same call."""
    reply = ollama.encode_response(chat_turn({"stream": False}),
                                   normalized(sse_events("codex-responses.function-call-exec_command.sse")), META)
    call = reply["message"]["tool_calls"][0]
    for sent_call in (call, {"function": {"name": call["function"]["name"],
                                           "arguments": call["function"]["arguments"]}}):
        history = [{"role": "user", "content": "run it"},
                   {"role": "assistant", "content": "", "tool_calls": [sent_call]},
                   {"role": "tool", "tool_name": "exec_command", "content": "MOCK_TOOL_RAN"}]
        turn = ollama.parse_chat(orjson.dumps({"model": "gpt-5.4", "messages": history}))
        function_call, output = turn.request["input"][1:]
        assert function_call["call_id"] == output["call_id"]
        assert orjson.loads(function_call["arguments"]) == {"cmd": "echo MOCK_TOOL_RAN"}
        assert output["output"] == "MOCK_TOOL_RAN"
    assert function_call["call_id"] == "call_1_0"  # the id-less variant: synthesised from the position


def test_load_reply_and_error_envelope():
    turn = ollama.parse_chat(b'{"model":"gpt-5.4","messages":[]}')
    assert turn.options["load_only"] is True
    assert ollama.load_reply(turn, META) == {"model": "gpt-5.4", "created_at": T0,
                                             "message": {"role": "assistant", "content": ""},
                                             "done_reason": "load", "done": True}
    gen = ollama.parse_generate(b'{"model":"gpt-5.4"}')
    assert ollama.load_reply(gen, META, now_iso=T1) == {"model": "gpt-5.4", "created_at": T1, "response": "",
                                                        "done_reason": "load", "done": True}
    assert ollama.encode_error(not_found("model 'x' not found")) == (404, {"error": "model 'x' not found"})


def test_arguments_that_are_not_an_object_become_empty_object():
    events = sse_events("codex-responses.function-call-exec_command.sse")
    for bad in ("", '{"cmd": "ec', "[1, 2]"):
        patched = []
        for event in events:
            data = orjson.loads(orjson.dumps(event.data))
            if data.get("item", {}).get("type") == "function_call":
                data["item"]["arguments"] = bad
            if "arguments" in data:
                data["arguments"] = bad
            if "delta" in data:
                data["delta"] = bad
            patched.append(CodexEvent(event.type, data))
        body = ollama.encode_response(chat_turn({}), normalized(patched), META)
        assert body["message"]["tool_calls"][0]["function"]["arguments"] == {}


def test_every_line_parses_with_the_official_client_models():
    from ollama._types import ChatResponse, GenerateResponse

    chat_lines = run_stream(chat_turn({"think": "high"}), with_reasoning("codex-responses.text.sse", "x"))
    chat_lines += run_stream(chat_turn({}), sse_events("codex-responses.function-call-exec_command.sse"))
    for obj in chat_lines:
        ChatResponse.model_validate(obj)
    tool_line = ChatResponse.model_validate(chat_lines[-2])
    assert tool_line.message.tool_calls[0].function.arguments == {"cmd": "echo MOCK_TOOL_RAN"}
    final = ChatResponse.model_validate(chat_lines[-1])
    assert (final.done, final.done_reason, final.prompt_eval_count, final.eval_count) == (True, "stop", 1234, 12)
    turn = ollama.parse_generate(b'{"model":"gpt-5.4","prompt":"hi"}')
    text = "".join(GenerateResponse.model_validate(obj).response for obj in
                   run_stream(turn, sse_events("codex-responses.text.sse")))
    assert text == "MOCK_OK: hi from the local ChatGPT backend stand-in."
