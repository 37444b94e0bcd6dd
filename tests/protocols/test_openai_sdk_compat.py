"""The official openai-python SDK (the client most users run) accepts what the encoders produce: every chunk
validates as `ChatCompletionChunk`, the SDK's own stream accumulator rebuilds the right message, and the
non-streaming replies validate as `ChatCompletion` / `Response`. Random event sequences never break framing."""

from __future__ import annotations


import orjson
from hypothesis import given, settings, strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from codex_trio.protocols import openai_chat, responses
from codex_trio.protocols.meta import ResponseMeta
from codex_trio.turn import Turn
from codex_trio.upstream.events import CodexEvent, EventNormalizer
from tests.conftest import FIXTURES

REPLIES = FIXTURES / "chatgpt-mode/stand-in-replies"
META = ResponseMeta(id="chatcmpl-sdk", model="gpt-5.5", created=1700000000)
TOOLS = [{"type": "function", "function": {"name": "exec_command", "parameters": {
    "type": "object", "properties": {"cmd": {"type": "string"}}}}}]


def sse(name: str) -> list[CodexEvent]:
    out = []
    for block in (REPLIES / name).read_text().split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                data = orjson.loads(line[6:])
                out.append(CodexEvent(data["type"], data))
    return out


def stream_frames(turn: Turn, raw: list[CodexEvent]) -> list[bytes]:
    normalizer = EventNormalizer()
    encoder = openai_chat.StreamEncoder(turn, META)
    out = b"".join(encoder.feed(n) for e in raw for n in normalizer.feed(e)) + encoder.finish()
    return [frame[len(b"data: "):] for frame in out.split(b"\n\n")[:-1]]


def chat_turn(**body) -> Turn:
    return openai_chat.parse_request(orjson.dumps({"model": "gpt-5.5", "stream": True, "messages": [
        {"role": "user", "content": "hi"}], **body}))


def accumulate(frames: list[bytes], tools=None):
    assert frames[-1] == b"[DONE]"
    state = ChatCompletionStreamState(input_tools=tools) if tools else ChatCompletionStreamState()
    for frame in frames[:-1]:
        chunk = ChatCompletionChunk.model_validate(orjson.loads(frame))
        state.handle_chunk(chunk)
    return state.get_final_completion()


def test_sdk_accumulates_text_stream_with_usage():
    final = accumulate(stream_frames(chat_turn(stream_options={"include_usage": True}),
                                     sse("codex-responses.text.sse")))
    assert final.choices[0].message.content == "MOCK_OK: hi from the local ChatGPT backend stand-in."
    assert final.choices[0].finish_reason == "stop"
    assert final.usage is not None


def test_sdk_accumulates_tool_call_stream():
    final = accumulate(stream_frames(chat_turn(tools=TOOLS), sse("codex-responses.function-call-exec_command.sse")),
                       TOOLS)
    call = final.choices[0].message.tool_calls[0]
    assert call.id == "call_f1099219195643f28b43322e" and call.function.name == "exec_command"
    assert call.function.arguments == '{"cmd": "echo MOCK_TOOL_RAN"}'
    assert final.choices[0].finish_reason == "tool_calls"


def test_non_streaming_replies_validate():
    normalizer = EventNormalizer()
    for name in ("codex-responses.text.sse", "codex-responses.function-call-exec_command.sse",
                 "codex-responses.custom-tool-call-exec.sse"):
        normalizer = EventNormalizer()
        events = [n for e in sse(name) for n in normalizer.feed(e)]
        ChatCompletion.model_validate(openai_chat.encode_response(chat_turn(stream=False), events, META))


def test_responses_non_streaming_reply_is_a_response_object():
    from openai.types.responses import Response

    turn = responses.parse_request(orjson.dumps({"model": "gpt-5.5", "input": "hi"}))
    reply = responses.encode_response(turn, sse("codex-responses.text.sse"), META)
    # `usage` is upstream's object relayed untouched (the stand-in's lacks fields newer SDK models require).
    body = {k: v for k, v in reply.items() if k != "usage"}
    parsed = Response.model_validate({"tools": [], "tool_choice": "auto", "parallel_tool_calls": True, **body})
    assert parsed.output_text == "MOCK_OK: hi from the local ChatGPT backend stand-in."


# ---- random event sequences -----------------------------------------------------------------------------------

def ev(kind: str, **data) -> CodexEvent:
    return CodexEvent(kind, {"type": kind, **data})


RAW_EVENT = st.one_of(
    st.builds(lambda d: ev("response.output_text.delta", item_id="m", delta=d), st.text(max_size=6)),
    st.builds(lambda d, i: ev("response.reasoning_summary_text.delta", item_id="r", summary_index=i, delta=d),
              st.text(max_size=4), st.integers(0, 2)),
    st.builds(lambda n, k: ev("response.output_item.added", output_index=n, item={
        "type": k, "id": f"it_{n}", "call_id": f"call_{n}", "name": "f"}), st.integers(0, 3),
        st.sampled_from(["function_call", "custom_tool_call"])),
    st.builds(lambda n, d: ev("response.function_call_arguments.delta", item_id=f"it_{n}", delta=d),
              st.integers(0, 3), st.text(max_size=4)),
    st.builds(lambda n, d: ev("response.custom_tool_call_input.delta", item_id=f"it_{n}", delta=d),
              st.integers(0, 3), st.text(max_size=4)),
    st.builds(lambda n: ev("response.output_item.done", item={"type": "function_call", "id": f"it_{n}",
                                                               "call_id": f"call_{n}", "name": "f", "arguments": "{}"}),
              st.integers(0, 3)),
    st.just(ev("response.output_item.done", item={"type": "image_generation_call", "id": "ig", "result": "QQ=="})),
)
TERMINAL = st.sampled_from([
    ev("response.completed", response={"id": "r", "usage": {"input_tokens": 1, "output_tokens": 2}}),
    ev("response.incomplete", response={"id": "r", "status": "incomplete",
                                        "incomplete_details": {"reason": "max_output_tokens"}}),
    ev("response.failed", response={"error": {"code": "server_error", "message": "boom"}}),
    None])


@settings(max_examples=300, deadline=None)
@given(st.lists(RAW_EVENT, max_size=12), TERMINAL, st.booleans(), st.booleans(),
       st.lists(st.sampled_from(["a", "ab", "\n"]), max_size=2))
def test_random_streams_are_well_framed(raw, terminal, include_usage, inline, stops):
    body = {"stream_options": {"include_usage": include_usage}}
    if stops:
        body["stop"] = stops
    turn = chat_turn(**body)
    turn.inline_images = inline
    frames = stream_frames(turn, raw + ([terminal] if terminal else []))
    assert frames[-1] == b"[DONE]" and frames.count(b"[DONE]") == 1
    for frame in frames[:-1]:
        data = orjson.loads(frame)
        if "error" in data:
            assert frame is frames[-2]
            continue
        calls = data["choices"][0]["delta"].get("tool_calls", []) if data["choices"] else []
        if any("custom" in call for call in calls):
            # The SDK's delta model knows only function calls; custom calls stream in the shape of the official
            # non-streaming custom tool call (type "custom", custom.name / custom.input).
            assert all(set(call) <= {"index", "id", "type", "custom"} for call in calls)
            continue
        ChatCompletionChunk.model_validate(data)
    finishes = [orjson.loads(f)["choices"][0]["finish_reason"] for f in frames[:-1]
                if b'"finish_reason"' in f and orjson.loads(f)["choices"]]
    assert sum(f is not None for f in finishes) <= 1
