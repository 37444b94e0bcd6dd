"""Throughput of the Chat translator: upstream SSE `data:` payloads → orjson → EventNormalizer → Chat StreamEncoder.

Measures upstream events per second on one core for a realistic mix (a long text answer with reasoning, and a
tool call with streamed arguments), built from the stand-in replies' event shapes. Goal: ≥ 50 000 events/s.

    /work/venv/bin/python -m benches.chat_translator [--seconds 3]   (from the repository root)
"""

from __future__ import annotations

import argparse
import time

import orjson

from codex_trio.protocols import openai_chat, responses
from codex_trio.protocols.meta import ResponseMeta
from codex_trio.upstream.events import CodexEvent, EventNormalizer


def upstream_stream(text_deltas: int = 400, reasoning_deltas: int = 100, arg_deltas: int = 100) -> list[bytes]:
    """One response's SSE data payloads, as the backend sends them (with sequence numbers)."""
    seq = iter(range(10**6))
    events = [{"type": "response.created", "sequence_number": next(seq),
               "response": {"id": "resp_1", "object": "response", "status": "in_progress", "model": "gpt-5.5",
                            "output": []}},
              {"type": "response.output_item.added", "sequence_number": next(seq), "output_index": 0,
               "item": {"type": "reasoning", "id": "rs_1", "summary": []}}]
    events += [{"type": "response.reasoning_summary_text.delta", "sequence_number": next(seq), "item_id": "rs_1",
                "output_index": 0, "summary_index": 0, "delta": "Considering the "} for _ in range(reasoning_deltas)]
    events.append({"type": "response.output_item.added", "sequence_number": next(seq), "output_index": 1,
                   "item": {"type": "message", "id": "msg_1", "role": "assistant", "status": "in_progress",
                            "content": []}})
    events += [{"type": "response.output_text.delta", "sequence_number": next(seq), "item_id": "msg_1",
                "output_index": 1, "content_index": 0, "delta": " token"} for _ in range(text_deltas)]
    events.append({"type": "response.output_item.added", "sequence_number": next(seq), "output_index": 2,
                   "item": {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "exec_command",
                            "arguments": "", "status": "in_progress"}})
    events += [{"type": "response.function_call_arguments.delta", "sequence_number": next(seq), "item_id": "fc_1",
                "output_index": 2, "delta": '{"cmd":'} for _ in range(arg_deltas)]
    events.append({"type": "response.completed", "sequence_number": next(seq), "response": {
        "id": "resp_1", "status": "completed", "usage": {"input_tokens": 812, "output_tokens": 600,
                                                         "input_tokens_details": {"cached_tokens": 768},
                                                         "output_tokens_details": {"reasoning_tokens": 100}}}})
    return [orjson.dumps(e) for e in events]


def run_once(payloads: list[bytes], stops: list[str]) -> int:
    turn = openai_chat.parse_request(orjson.dumps({
        "model": "gpt-5.5", "stream": True, "stream_options": {"include_usage": True}, "stop": stops or None,
        "messages": [{"role": "user", "content": "hi"}]}))
    normalizer = EventNormalizer()
    encoder = openai_chat.StreamEncoder(turn, ResponseMeta("chatcmpl-bench", "gpt-5.5", 1700000000))
    written = 0
    for payload in payloads:
        data = orjson.loads(payload)
        for event in normalizer.feed(CodexEvent(data["type"], data)):
            written += len(encoder.feed(event))
    return written


def relay_once(payloads: list[bytes], _: list[str]) -> int:
    """The Responses passthrough on the same stream: parse → re-serialise as named SSE events."""
    turn = responses.parse_request(orjson.dumps({"model": "gpt-5.5", "input": "hi", "stream": True}))
    encoder = responses.StreamEncoder(turn, ResponseMeta("resp_bench", "gpt-5.5", 1700000000))
    written = 0
    for payload in payloads:
        data = orjson.loads(payload)
        written += len(encoder.feed_raw(CodexEvent(data["type"], data)))
    return written


def measure(seconds: float, stops: list[str], once=run_once) -> float:
    payloads = upstream_stream()
    once(payloads, stops)  # warm-up
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        once(payloads, stops)
        count += len(payloads)
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    for label, stops in (("no stop sequences", []), ("2 stop sequences", ["\n\nHuman:", "<|end|>"])):
        rate = measure(args.seconds, stops)
        print(f"chat translator, {label}: {rate:,.0f} upstream events/s (goal 50,000)")
    rate = measure(args.seconds, [], relay_once)
    print(f"responses passthrough relay: {rate:,.0f} upstream events/s")


if __name__ == "__main__":
    main()
