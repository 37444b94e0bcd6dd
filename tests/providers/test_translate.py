"""Sans-IO translation units: the canonical request on each wire, and each wire's stream as Responses events
that the backend's normalizer reads like the backend's own (text, tool calls, usage, terminal)."""

from __future__ import annotations

import orjson

from codex_trio.providers.responses_stream import ResponsesStream
from codex_trio.providers.translate import DECODERS, to_anthropic, to_chat, to_gemini
from codex_trio.upstream.events import Completed, EventNormalizer, TextDelta, ToolCallDone
from codex_trio.upstream.sse import SseDecoder

REQUEST = {
    "model": "x", "instructions": "Be brief.",
    "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "weather?"},
                                                              {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
              {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
              {"type": "function_call_output", "call_id": "c1", "output": "sunny"}],
    "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
              {"type": "web_search"}],
    "tool_choice": "auto", "max_output_tokens": 64, "temperature": 0.2,
}


def test_chat_request():
    body = to_chat(REQUEST, "m")
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "weather?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]
    assert body["tools"] == [{"type": "function", "function": {"name": "get_weather",
                                                               "parameters": {"type": "object"}}}]
    assert (body["max_tokens"], body["temperature"], body["stream"]) == (64, 0.2, True)


def test_anthropic_request():
    body = to_anthropic(REQUEST, "m")
    assert body["system"] == "Be brief." and body["max_tokens"] == 64
    assert body["messages"][0]["content"][1] == {"type": "image", "source": {"type": "base64",
                                                                            "media_type": "image/png", "data": "AAAA"}}
    assert body["messages"][1] == {"role": "assistant", "content": [
        {"type": "tool_use", "id": "c1", "name": "get_weather", "input": {"city": "Paris"}}]}
    assert body["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "c1", "content": "sunny"}]}
    assert body["tools"] == [{"name": "get_weather", "description": "", "input_schema": {"type": "object"}}]


def test_gemini_request():
    body = to_gemini(REQUEST, "m")
    assert "model" not in body and body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][2]["parts"][0] == {"functionResponse": {"name": "get_weather",
                                                                    "response": {"content": "sunny"}}}
    assert body["generationConfig"] == {"maxOutputTokens": 64, "temperature": 0.2}


def decode(wire: str, frames: list[dict]) -> list:
    stream = ResponsesStream("r1", "m")
    decoder = DECODERS[wire](stream)
    sse = SseDecoder()
    raw = b"".join(b"data: " + orjson.dumps(f) + b"\n\n" for f in frames)
    events = [out for event in sse.feed(raw) for out in decoder.feed(event)] + decoder.end()
    normalizer = EventNormalizer()
    return [n for event in events for n in normalizer.feed(event)]


def test_chat_stream_becomes_text_tool_call_and_usage():
    normalized = decode("chat", [
        {"choices": [{"index": 0, "delta": {"content": "Hi "}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "function": {
            "name": "f", "arguments": '{"a"'}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}])
    assert [n.delta for n in normalized if isinstance(n, TextDelta)] == ["Hi "]
    done = [n for n in normalized if isinstance(n, ToolCallDone)]
    assert [(d.call_id, d.name, d.arguments) for d in done] == [("call_1", "f", '{"a":1}')]
    assert isinstance(normalized[-1], Completed) and normalized[-1].usage.input_tokens == 3


def test_a_chat_stream_without_finish_has_no_terminal_event():
    normalized = decode("chat", [{"choices": [{"index": 0, "delta": {"content": "Hi"}}]}])
    assert not any(isinstance(n, Completed) for n in normalized)


def test_anthropic_stream_with_max_tokens_is_incomplete():
    normalized = decode("anthropic", [
        {"type": "message_start", "message": {"usage": {"input_tokens": 5, "cache_read_input_tokens": 2}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "cut"}},
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 9}},
        {"type": "message_stop"}])
    final = normalized[-1]
    assert isinstance(final, Completed) and final.incomplete_reason == "max_output_tokens"
    assert (final.usage.input_tokens, final.usage.cached_tokens, final.usage.output_tokens) == (7, 2, 9)


def test_gemini_stream_with_a_function_call():
    normalized = decode("gemini", [
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]},
                         "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 3}}])
    done = [n for n in normalized if isinstance(n, ToolCallDone)]
    assert done[0].name == "f" and orjson.loads(done[0].arguments) == {"a": 1}
    assert normalized[-1].usage.output_tokens == 3
