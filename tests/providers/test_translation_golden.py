"""Translation passes the backend's golden cases: the content of each captured backend reply (text deltas, tool
calls, usage), said by a provider on its own wire (Chat chunks, Anthropic events, Gemini chunks), reaches the
client exactly as the captured backend reply does — the same frames from every client protocol's encoder,
streamed and collected."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import orjson
import pytest

from codex_trio.protocols import anthropic, gemini, openai_chat
from codex_trio.protocols.meta import ResponseMeta
from codex_trio.providers.responses_stream import ResponsesStream
from codex_trio.providers.translate import DECODERS
from codex_trio.turn import Turn
from codex_trio.upstream.events import (Completed, EventNormalizer, TextDelta, ToolCallDelta, ToolCallDone,
                                        ToolCallStarted)
from codex_trio.upstream.sse import SseDecoder
from tests.conftest import FIXTURES

REPLIES = FIXTURES / "chatgpt-mode/stand-in-replies"
CASES = ["codex-responses.text.sse", "codex-responses.function-call-exec_command.sse"]
META = ResponseMeta(id="id-test", model="gpt-5.5", created=1700000000)


@dataclass
class Content:
    texts: list[str] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)  # call_id, name, deltas, arguments
    usage: dict = field(default_factory=dict)


def backend_events(name: str) -> list:
    decoder = SseDecoder()
    return decoder.feed((REPLIES / name).read_bytes()) + decoder.close()


def normalized(events: list) -> list:
    normalizer = EventNormalizer()
    return [n for event in events for n in normalizer.feed(event)]


def content_of(name: str) -> Content:
    content = Content()
    for item in normalized(backend_events(name)):
        if isinstance(item, TextDelta):
            content.texts.append(item.delta)
        elif isinstance(item, ToolCallStarted):
            content.calls.append({"call_id": item.call_id, "name": item.name, "deltas": []})
        elif isinstance(item, ToolCallDelta):
            content.calls[-1]["deltas"].append(item.delta)
        elif isinstance(item, ToolCallDone):
            content.calls[-1]["arguments"] = item.arguments
        elif isinstance(item, Completed):
            u = item.usage
            content.usage = {"input": u.input_tokens, "cached": u.cached_tokens, "output": u.output_tokens,
                             "reasoning": u.reasoning_tokens}
    return content


def sse(frames: list[dict]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(f) + b"\n\n" for f in frames)


def chat_wire(c: Content) -> bytes:
    frames = [{"choices": [{"index": 0, "delta": {"content": t}}]} for t in c.texts]
    for index, call in enumerate(c.calls):
        frames.append({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": index, "id": call["call_id"], "function": {"name": call["name"], "arguments": ""}}]}}]})
        frames += [{"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": index, "function": {"arguments": d}}]}}]} for d in call["deltas"] or [call["arguments"]]]
    frames.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls" if c.calls else "stop"}]})
    u = c.usage
    frames.append({"choices": [], "usage": {"prompt_tokens": u["input"], "completion_tokens": u["output"],
                                            "prompt_tokens_details": {"cached_tokens": u["cached"]},
                                            "completion_tokens_details": {"reasoning_tokens": u["reasoning"]}}})
    return sse(frames) + b"data: [DONE]\n\n"


def anthropic_wire(c: Content) -> bytes:
    u = c.usage
    frames = [{"type": "message_start", "message": {"usage": {"input_tokens": u["input"] - u["cached"],
                                                              "cache_read_input_tokens": u["cached"]}}}]
    index = 0
    if c.texts:
        frames.append({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        frames += [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}
                   for t in c.texts]
        frames.append({"type": "content_block_stop", "index": 0})
        index = 1
    for call in c.calls:
        frames.append({"type": "content_block_start", "index": index, "content_block": {
            "type": "tool_use", "id": call["call_id"], "name": call["name"], "input": {}}})
        frames += [{"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta",
                                                                             "partial_json": d}}
                   for d in call["deltas"] or [call["arguments"]]]
        frames.append({"type": "content_block_stop", "index": index})
        index += 1
    frames += [{"type": "message_delta", "delta": {"stop_reason": "tool_use" if c.calls else "end_turn"},
                "usage": {"output_tokens": u["output"]}}, {"type": "message_stop"}]
    return sse(frames)


def gemini_wire(c: Content) -> bytes:
    frames = [{"candidates": [{"content": {"role": "model", "parts": [{"text": t}]}}]} for t in c.texts]
    frames += [{"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {
        "id": call["call_id"], "name": call["name"], "args": json.loads(call["arguments"])}}]}}]} for call in c.calls]
    frames.append({"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": "STOP"}],
                   "usageMetadata": {"promptTokenCount": c.usage["input"], "cachedContentTokenCount": c.usage["cached"],
                                     "candidatesTokenCount": c.usage["output"] - c.usage["reasoning"],
                                     "thoughtsTokenCount": c.usage["reasoning"]}})
    return sse(frames)


WIRES = {"chat": chat_wire, "anthropic": anthropic_wire, "gemini": gemini_wire}


def provider_events(wire: str, raw: bytes) -> list:
    stream = ResponsesStream("resp_provider", "gpt-5.5")
    decoder = DECODERS[wire](stream)
    sse_decoder = SseDecoder()
    return [out for event in sse_decoder.feed(raw) + sse_decoder.close() for out in decoder.feed(event)] + decoder.end()


def turn() -> Turn:
    return Turn(request={"model": "gpt-5.5"}, requested_model="gpt-5.5", options={"include_usage": True})


def streamed(encoder, events: list) -> bytes:
    return b"".join(encoder.feed(item) for item in normalized(events)) + encoder.finish()


ENCODERS = {
    "openai": lambda: openai_chat.StreamEncoder(turn(), META),
    "anthropic": lambda: anthropic.StreamEncoder(turn(), META),
    "gemini": lambda: gemini.StreamEncoder(turn(), META, sse=True),
}
COLLECTED = {"openai": openai_chat.encode_response, "anthropic": anthropic.encode_response,
             "gemini": gemini.encode_response}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("wire", list(WIRES))
def test_a_providers_reply_reaches_every_client_as_the_backends_does(case, wire):
    backend = backend_events(case)
    content = content_of(case)
    provider = provider_events(wire, WIRES[wire](content))
    expected_usage = content.usage
    if wire == "anthropic":  # Anthropic does not report reasoning tokens separately
        expected_usage = {**expected_usage, "reasoning": 0}
    assert content_of_events(provider).usage == expected_usage
    for client, encoder in ENCODERS.items():
        assert streamed(encoder(), provider) == streamed(encoder(), backend), (client, wire)
        assert COLLECTED[client](turn(), normalized(provider), META) == COLLECTED[client](
            turn(), normalized(backend), META), (client, wire)


def content_of_events(events: list) -> Content:
    usage = next(i.usage for i in normalized(events) if isinstance(i, Completed))
    return Content(usage={"input": usage.input_tokens, "cached": usage.cached_tokens, "output": usage.output_tokens,
                          "reasoning": usage.reasoning_tokens})
