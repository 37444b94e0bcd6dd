"""SSE decoder: framing rules, chunking anywhere, non-SSE bodies, caps, speed."""

from __future__ import annotations

import time

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codex_trio.upstream.events import CodexEvent, Completed, EventNormalizer, Failed, TextDelta
from codex_trio.upstream.sse import SseDecoder
from codex_trio.upstream.ws_frames import binary_frame_event, closed_early_event, decode_text_frame
from tests.conftest import FIXTURES

REPLIES = FIXTURES / "chatgpt-mode/stand-in-replies"


def decode(chunks: list[bytes], **kw) -> list:
    decoder = SseDecoder(**kw)
    out = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    return out + decoder.close()


def split_every(data: bytes, n: int) -> list[bytes]:
    return [data[i:i + n] for i in range(0, len(data), n)]


def test_captured_stream_in_one_piece_and_byte_by_byte() -> None:
    raw = (REPLIES / "codex-responses.text.sse").read_bytes()
    whole = decode([raw])
    assert whole[0].type == "response.created" and whole[-1].type == "response.completed"
    bytewise = decode(split_every(raw, 1))
    assert [(e.type, e.data) for e in bytewise] == [(e.type, e.data) for e in whole]
    normalizer = EventNormalizer()
    out = [n for e in whole for n in normalizer.feed(e)]
    assert "".join(n.delta for n in out if isinstance(n, TextDelta))
    assert isinstance(out[-1], Completed)


@pytest.mark.parametrize("name", ["codex-responses.custom-tool-call-exec.sse",
                                  "codex-responses.function-call-exec_command.sse",
                                  "codex-responses.minimal-that-works.sse"])
def test_other_captured_streams(name: str) -> None:
    raw = (REPLIES / name).read_bytes()
    events = decode(split_every(raw, 7))
    assert events and events[-1].type == "response.completed"
    assert all(e.data["type"] == e.type for e in events)


def test_crlf_split_between_cr_and_lf() -> None:
    raw = b'event: a\r\ndata: {"type":"x","v":1}\r\n\r\ndata: {"type":"y"}\r\n\r\n'
    cut = raw.index(b"\r\n\r\n") + 1  # between \r and \n
    for chunks in ([raw], [raw[:cut], raw[cut:]], split_every(raw, 1)):
        assert [(e.type, e.data.get("v")) for e in decode(chunks)] == [("x", 1), ("y", None)]


def test_bare_cr_line_endings() -> None:
    assert [e.type for e in decode([b'data: {"type":"a"}\r\rdata: {"type":"b"}\r\r'])] == ["a", "b"]


def test_multiline_data_done_comments_and_event_name_fallback() -> None:
    raw = (b": keepalive\n\nevent: error\ndata: {\ndata: \"detail\": \"boom\"\ndata: }\n\n"
           b"data: [DONE]\n\nid: 5\nretry: 10\nevent: named\ndata: {\"no_type\": true}\n\n")
    events = decode([raw])
    assert [(e.type, e.data) for e in events] == [("error", {"detail": "boom"}), ("named", {"no_type": True})]


def test_pretty_printed_error_continuation_lines() -> None:
    raw = b'event: error\ndata: {\n  "error": {"code": "server_error", "message": "oops"}\n}\n\n'
    (event,) = decode([raw])
    assert event.type == "error" and event.data["error"]["code"] == "server_error"


def test_non_json_data_is_kept_as_text() -> None:
    (event,) = decode([b"event: error\ndata: upstream exploded\n\n"])
    assert event.type == "error" and event.data["message"] == "upstream exploded"
    normalizer = EventNormalizer()
    (failed,) = normalizer.feed(event)
    assert isinstance(failed, Failed) and failed.message == "upstream exploded"


def test_non_sse_json_body_becomes_a_synthetic_error() -> None:
    (event,) = decode([b'{"detail":"Unsupported parameter: max_output_tokens"}'])
    assert event.type == "error"
    assert event.data["error"]["code"] == "non_sse_response"
    assert event.data["error"]["message"] == "Unsupported parameter: max_output_tokens"
    (event,) = decode([b'{"error":{"message":"bad token","code":"token_expired"}}\n'])
    assert event.data["error"]["message"] == "bad token"
    (event,) = decode([b"<html>Just a moment...</html>"])
    assert event.data["error"]["message"] == "<html>Just a moment...</html>"
    assert decode([b""]) == [] and decode([b"\n\n"]) == []


def test_last_event_without_blank_line_is_flushed_at_close() -> None:
    assert [e.type for e in decode([b'data: {"type":"response.completed"}'])] == ["response.completed"]


def test_event_cap_ends_the_stream_with_an_error() -> None:
    decoder = SseDecoder(max_event_bytes=1000)
    assert decoder.feed(b'data: {"type":"ok"}\n\n')[0].type == "ok"
    out = decoder.feed(b"data: " + b"x" * 600)
    out += decoder.feed(b"y" * 600)
    assert [e.data["error"]["code"] for e in out] == ["sse_event_too_large"]
    assert decoder.feed(b"\n\ndata: {\"type\":\"late\"}\n\n") == [] and decoder.close() == []


def test_default_cap_admits_a_4k_image_event() -> None:
    b64 = b"A" * (24 * 1024 * 1024)
    raw = b'data: {"type":"response.output_item.done","item":{"type":"image_generation_call","result":"' + b64 + b'"}}\n\n'
    (event,) = decode(split_every(raw, 1 << 20))
    assert len(event.data["item"]["result"]) == len(b64)


@given(st.lists(st.dictionaries(st.sampled_from(["a", "b", "text"]), st.text(max_size=20), max_size=3), max_size=8),
       st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=10),
       st.sampled_from([b"\n", b"\r\n", b"\r"]))
@settings(max_examples=150, deadline=None)
def test_any_chunking_gives_the_same_events(payloads, cuts, eol) -> None:
    raw = b"".join(b"event: e" + eol + b"data: " + orjson.dumps({"type": f"t{i}", **p}) + eol + eol
                   for i, p in enumerate(payloads))
    chunks, pos, i = [], 0, 0
    while pos < len(raw):
        n = cuts[i % len(cuts)]
        chunks.append(raw[pos:pos + n])
        pos, i = pos + n, i + 1
    events = decode(chunks)
    assert [e.data for e in events] == [{"type": f"t{i}", **p} for i, p in enumerate(payloads)]


# ---- speed: linear, not quadratic ---------------------------------------------------------------------


def test_bench_single_4mib_event_in_small_chunks() -> None:
    payload = b'{"type":"response.output_text.delta","delta":"' + b"x" * (4 * 1024 * 1024) + b'"}'
    raw = b"event: response.output_text.delta\ndata: " + payload + b"\n\n"
    chunks = split_every(raw, 1024)  # 4096 chunks: quadratic rescanning would touch ~8 GiB
    started = time.perf_counter()
    events = decode(chunks)
    elapsed = time.perf_counter() - started
    assert len(events) == 1 and len(events[0].data["delta"]) == 4 * 1024 * 1024
    print(f"4 MiB event in 1 KiB chunks: {elapsed * 1000:.1f} ms")
    assert elapsed < 1.0


def test_bench_10k_small_events() -> None:
    one = b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"delta":"hello "}\n\n'
    raw = one * 10_000
    chunks = split_every(raw, 4096)
    started = time.perf_counter()
    events = decode(chunks)
    elapsed = time.perf_counter() - started
    assert len(events) == 10_000
    print(f"10k small events: {elapsed * 1000:.1f} ms ({elapsed / 10_000 * 1e6:.2f} us/event)")
    assert elapsed < 1.0


# ---- WebSocket frames -----------------------------------------------------------------------------------


def test_ws_text_frames() -> None:
    event = decode_text_frame('{"type":"response.created","response":{"id":"resp_1"}}')
    assert event.type == "response.created" and event.data["response"]["id"] == "resp_1"
    assert decode_text_frame(b'{"type":"codex.rate_limits","plan_type":"plus"}').type == "codex.rate_limits"
    for bad in ("not json", "[1,2]", '{"no":"type"}'):
        event = decode_text_frame(bad)
        assert event.type == "error" and event.data["error"]["code"] == "malformed_ws_frame"
    assert binary_frame_event().data["error"]["code"] == "unexpected_binary_frame"
    assert "1006" in closed_early_event(1006).data["error"]["message"]


# ---- normalizing text deltas (the hot path of a long reply) ---------------------------------------------------


def test_text_deltas_normalize_with_the_rules_of_every_other_field() -> None:
    def text(**data: object) -> list:
        return EventNormalizer().feed(CodexEvent("response.output_text.delta", {"type": "x", **data}))

    assert text(item_id="msg_1", output_index=2, delta="hi") == [TextDelta("msg_1", 2, "hi")]
    # a missing or odd item id / index becomes "" / 0 (as `_int` reads every index), a bool is no index
    assert text(delta="hi") == [TextDelta("", 0, "hi")]
    assert text(item_id=None, output_index=True, delta="hi") == [TextDelta("", 0, "hi")]
    assert text(output_index="3", delta="hi") == [TextDelta("", 0, "hi")]
    # no text, no event
    for delta in ("", None, 7, ["hi"]):
        assert text(item_id="msg_1", delta=delta) == []
    # nothing after the terminal event
    normalizer = EventNormalizer()
    normalizer.feed(CodexEvent("response.completed", {"type": "response.completed", "response": {"id": "r"}}))
    assert normalizer.feed(CodexEvent("response.output_text.delta", {"delta": "late"})) == []
