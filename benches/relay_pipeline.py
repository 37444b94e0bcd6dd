"""CPU per relayed event in the gateway's own translation code, without sockets (issue #20, goal 4).

One long reply as the backend's WebSocket sends it (`--events` text deltas of 4 characters between the events
that open and close it) goes through what a streamed turn runs per upstream event: `decode_text_frame`, the
`EventNormalizer`, and the route's `EncodedStream` over each protocol's stream encoder (Responses: relayed raw),
in batches of 1,024 events joined per batch as the pump does. Printed per protocol: CPU µs per event (process
time, best of `--repeat`), and the output's size and hash, so two checkouts can be compared for identical bytes:

    PYTHONPATH=/tmp/base python benches/relay_pipeline.py     # the checkout whose codex_trio is imported
    PYTHONPATH=.         python benches/relay_pipeline.py
"""

from __future__ import annotations

import argparse
import hashlib
import time
from typing import Any, Iterator

import orjson

from codex_trio.protocols import anthropic, gemini, ollama, openai_chat, responses
from codex_trio.protocols.meta import ResponseMeta
from codex_trio.server.pipeline import EncodedStream
from codex_trio.turn import Turn
from codex_trio.upstream.events import EventNormalizer
from codex_trio.upstream.ws_frames import decode_text_frame

META = ResponseMeta(id="chatcmpl-bench", model="gpt-5.5", created=1700000000)
BATCH = 1024
PIECES = ["Lore", "m ip", "sum ", "dolo", 'r é"', "\n🙂x"]  # plain, escaped and non-ASCII text


def reply_frames(deltas: int) -> list[str]:
    frames: list[str] = []

    def emit(kind: str, **payload: Any) -> None:
        frames.append(orjson.dumps({"type": kind, "sequence_number": len(frames), **payload}).decode())

    response = {"id": "resp_1", "object": "response", "created_at": 1, "status": "in_progress", "model": "gpt-5.5",
                "output": []}
    emit("response.created", response=response)
    emit("response.in_progress", response=response)
    emit("response.output_item.added", output_index=0,
         item={"type": "message", "id": "msg_1", "role": "assistant", "status": "in_progress", "content": []})
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    emit("response.content_part.added", **where, part={"type": "output_text", "text": "", "annotations": []})
    text = [PIECES[i % len(PIECES)] for i in range(deltas)]
    for piece in text:
        emit("response.output_text.delta", **where, delta=piece)
    part = {"type": "output_text", "text": "".join(text), "annotations": []}
    emit("response.output_text.done", **where, text=part["text"])
    emit("response.content_part.done", **where, part=part)
    item = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": [part]}
    emit("response.output_item.done", output_index=0, item=item)
    usage = {"input_tokens": 10, "output_tokens": deltas, "total_tokens": deltas + 10,
             "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}
    emit("response.completed", response={**response, "status": "completed", "output": [item], "usage": usage})
    return frames


def turn(**options: Any) -> Turn:
    return Turn(request={"model": "gpt-5.5"}, requested_model="gpt-5.5", options=options)


def outputs() -> Iterator[tuple[str, EncodedStream]]:
    yield "chat", EncodedStream(openai_chat.StreamEncoder(turn(), META))
    yield "chat, usage", EncodedStream(openai_chat.StreamEncoder(turn(include_usage=True), META))
    yield "anthropic", EncodedStream(anthropic.StreamEncoder(turn(), META))
    yield "gemini", EncodedStream(gemini.StreamEncoder(turn(), META, sse=True))
    yield "ollama", EncodedStream(ollama.StreamEncoder(turn(), META))
    encoder = responses.StreamEncoder(turn(), META)
    yield "responses", EncodedStream(encoder, raw=encoder.feed_raw)


def relay(frames: list[str], output: EncodedStream) -> tuple[float, bytes]:
    normalizer = EventNormalizer()
    started = time.process_time()
    chunks = output.start()
    for first in range(0, len(frames), BATCH):
        frames_out: list[bytes] = []
        for frame in frames[first:first + BATCH]:
            event = decode_text_frame(frame)
            frames_out += output.feed(event, normalizer.feed(event))
        chunks.append(b"".join(frames_out))
    chunks += output.finish()
    return time.process_time() - started, b"".join(chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="text deltas in the reply")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    frames = reply_frames(args.events)
    print(f"{'protocol':<13}{'CPU µs/event':>13}{'bytes':>11}  sha256")
    for name in [name for name, _ in outputs()]:
        runs = [relay(frames, dict(outputs())[name]) for _ in range(args.repeat)]
        seconds, body = min(runs)
        print(f"{name:<13}{seconds / len(frames) * 1e6:>13.2f}{len(body):>11}  {hashlib.sha256(body).hexdigest()[:16]}")


if __name__ == "__main__":
    main()
