"""Stop sequences (issue 12 item 4): one scanner, one rule, and every protocol's reply independent of how the
upstream splits its text into deltas — streamed and collected alike."""

from __future__ import annotations

from typing import Callable

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from codex_trio.protocols import anthropic, gemini, ollama, openai_chat
from codex_trio.protocols.meta import ResponseMeta
from codex_trio.protocols.stops import StopScanner, apply_stops
from tests.protocols.helpers import normalize

META = ResponseMeta(id="id_1", model="gpt-5.5", created=1_700_000_000)
ALPHABET = "abcdE\nX"


def generated_until_stop(text: str, stops: list[str]) -> tuple[str, str | None]:
    """The reference: a model that emits one character at a time and stops as soon as its text ends with a
    stop sequence (the longest one, if several end there). Returns (reply, the stop that matched)."""
    so_far = ""
    for char in text:
        so_far += char
        ending = [s for s in stops if s and so_far.endswith(s)]
        if ending:
            stop = max(ending, key=len)
            return so_far[: len(so_far) - len(stop)], stop
    return text, None


def chunked(draw, text: str) -> list[str]:
    cuts = sorted(draw(st.sets(st.integers(1, max(len(text) - 1, 1)), max_size=len(text))))
    bounds = [0, *[c for c in cuts if c < len(text)], len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


def raw_turn(pieces: list[str], *, complete: bool = True) -> list[dict]:
    item = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": "".join(pieces), "annotations": []}]}
    events: list[dict] = [{"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}},
                          {"type": "response.output_item.added", "output_index": 0,
                           "item": {**item, "status": "in_progress", "content": []}}]
    events += [{"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0,
                "delta": piece} for piece in pieces]
    if complete:
        events += [{"type": "response.output_item.done", "output_index": 0, "item": item},
                   {"type": "response.completed", "response": {
                       "id": "resp_1", "status": "completed", "output": [item],
                       "usage": {"input_tokens": 5, "output_tokens": 7}}}]
    return events


# ---- each protocol, streamed and collected: the reply text -----------------------------------------------

def anthropic_turn(stops: list[str], stream: bool):
    return anthropic.parse_request(orjson.dumps({"model": "m", "max_tokens": 10, "stream": stream,
                                                 "stop_sequences": stops,
                                                 "messages": [{"role": "user", "content": "x"}]}))


def anthropic_stream(stops: list[str], events: list) -> str:
    encoder = anthropic.StreamEncoder(anthropic_turn(stops, True), META)
    data = b"".join(encoder.feed(e) for e in events) + encoder.finish()
    frames = [orjson.loads(line[6:]) for line in data.decode().splitlines() if line.startswith("data: ")]
    return "".join(f["delta"]["text"] for f in frames if f["type"] == "content_block_delta"
                   and f["delta"]["type"] == "text_delta")


def anthropic_collected(stops: list[str], events: list) -> str:
    message = anthropic.encode_response(anthropic_turn(stops, False), events, META)
    return "".join(block["text"] for block in message["content"] if block["type"] == "text")


def gemini_turn(stops: list[str], stream: bool):
    return gemini.parse_request("m", orjson.dumps({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
                                                   "generationConfig": {"stopSequences": stops}}), stream)


def gemini_stream(stops: list[str], events: list) -> str:
    encoder = gemini.StreamEncoder(gemini_turn(stops, True), META, sse=True)
    data = b"".join(encoder.feed(e) for e in events) + encoder.finish()
    chunks = [orjson.loads(block[6:]) for block in data.decode().split("\r\n\r\n") if block.startswith("data: ")]
    return "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"])


def gemini_collected(stops: list[str], events: list) -> str:
    response = gemini.encode_response(gemini_turn(stops, False), events, META)
    return "".join(p.get("text", "") for p in response["candidates"][0]["content"]["parts"])


def chat_turn(stops: list[str], stream: bool):
    return openai_chat.parse_request(orjson.dumps({"model": "m", "stream": stream, "stop": stops,
                                                   "messages": [{"role": "user", "content": "x"}]}))


def chat_stream(stops: list[str], events: list) -> str:
    encoder = openai_chat.StreamEncoder(chat_turn(stops, True), META)
    data = encoder.start() + b"".join(encoder.feed(e) for e in events) + encoder.finish()
    frames = [line[6:] for line in data.decode().splitlines() if line.startswith("data: ")]
    assert frames[-1] == "[DONE]"
    chunks = [orjson.loads(f) for f in frames[:-1]]
    assert "error" not in chunks[-1]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


def chat_collected(stops: list[str], events: list) -> str:
    return openai_chat.encode_response(chat_turn(stops, False), events, META)["choices"][0]["message"]["content"] or ""


def ollama_turn(stops: list[str], stream: bool):
    return ollama.parse_request(orjson.dumps({"model": "m", "stream": stream, "options": {"stop": stops},
                                              "messages": [{"role": "user", "content": "x"}]}))


def ollama_stream(stops: list[str], events: list) -> str:
    encoder = ollama.StreamEncoder(ollama_turn(stops, True), META)
    data = b"".join(encoder.feed(e) for e in events) + encoder.finish()
    lines = [orjson.loads(line) for line in data.splitlines()]
    assert lines[-1]["done"] is True
    return "".join(line["message"]["content"] for line in lines)


def ollama_collected(stops: list[str], events: list) -> str:
    return ollama.encode_response(ollama_turn(stops, False), events, META)["message"]["content"]


REPLIES: dict[str, Callable[[list[str], list], str]] = {
    "anthropic": anthropic_stream, "anthropic collected": anthropic_collected,
    "gemini": gemini_stream, "gemini collected": gemini_collected,
    "chat": chat_stream, "chat collected": chat_collected,
    "ollama": ollama_stream, "ollama collected": ollama_collected,
}


# ---- the rule -----------------------------------------------------------------------------------------------

def test_the_stop_that_completes_first_wins_in_every_protocol_whatever_the_chunking():
    # The example: Anthropic and Ollama used to return "" for one chunk and "a" for single characters.
    for name, reply in REPLIES.items():
        for pieces in (["abcdX"], list("abcdX"), ["ab", "cdX"]):
            assert reply(["abcd", "bc"], normalize(raw_turn(pieces))) == "a", (name, pieces)


@st.composite
def stop_cases(draw):
    stops = draw(st.lists(st.text(alphabet=ALPHABET, min_size=1, max_size=4), min_size=1, max_size=3))
    text = draw(st.text(alphabet=ALPHABET, min_size=1, max_size=24))
    return stops, text, chunked(draw, text)


@settings(max_examples=300, deadline=None)
@given(stop_cases())
def test_every_protocol_replies_the_same_however_the_text_is_chunked(case):
    stops, text, pieces = case
    expected, _ = generated_until_stop(text, stops)
    for name, reply in REPLIES.items():
        assert reply(stops, normalize(raw_turn(pieces))) == expected, name
        assert reply(stops, normalize(raw_turn([text]))) == expected, name


@settings(max_examples=200, deadline=None)
@given(stop_cases())
def test_a_stopped_turn_needs_no_terminal_event(case):
    """The gateway stops reading (and cancels the turn) at the stop: the reply still ends cleanly."""
    stops, text, pieces = case
    expected, matched = generated_until_stop(text, stops)
    if matched is None:
        return
    for name, reply in REPLIES.items():
        assert reply(stops, normalize(raw_turn(pieces, complete=False))) == expected, name


@settings(max_examples=500, deadline=None)
@given(stop_cases())
def test_scanner_matches_character_by_character_generation(case):
    stops, text, pieces = case
    scanner = StopScanner(stops)
    streamed = "".join(scanner.feed(p) for p in pieces) + scanner.flush()
    expected, matched = generated_until_stop(text, stops)
    assert streamed == expected and scanner.matched == matched
    assert apply_stops(text, stops) == (expected, matched)


def test_nothing_after_the_stop_reaches_the_client_not_even_a_failure():
    """A failure the cancelled turn would have reported, arriving in the same upstream batch as the stop."""
    from codex_trio.server.pipeline import EncodedStream
    from codex_trio.upstream.events import CodexEvent, EventNormalizer

    raw = raw_turn(["Hello STOP and more"], complete=False) + [
        {"type": "response.failed", "response": {"id": "resp_1", "error": {"code": "server_error",
                                                                          "message": "boom"}}}]
    encoder = anthropic.StreamEncoder(anthropic_turn(["STOP"], True), META)
    output, normalizer, data = EncodedStream(encoder), EventNormalizer(), b""
    for event in [CodexEvent(e["type"], e) for e in raw]:  # one upstream batch, as the turn pump reads it
        data += b"".join(output.feed(event, normalizer.feed(event)))
        if output.stopped:
            break
    data += b"".join(output.finish())
    frames = [orjson.loads(line[6:]) for line in data.decode().splitlines() if line.startswith("data: ")]
    assert [f["type"] for f in frames][-2:] == ["message_delta", "message_stop"]
    assert frames[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "STOP"}
    assert "".join(f["delta"].get("text", "") for f in frames if f["type"] == "content_block_delta") == "Hello "
