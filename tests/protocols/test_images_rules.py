"""Image tool rules, /v1/images/generations and edits, image analysis."""

from __future__ import annotations

import orjson
import pytest

from codex_trio.errors import GatewayError
from codex_trio.protocols import image_tool, images
from codex_trio.protocols.meta import ResponseMeta
from codex_trio.upstream.events import CodexEvent, EventNormalizer

META = ResponseMeta(id="img_1", model="gpt-5.5", created=1700000000)


@pytest.mark.parametrize("size", ["auto", "1024x1024", "1536x1024", "1024x1536", "2048x2048", "2048x3072",
                                  "3072x2048", "3840x2160", "2160x3840", "2304x3072", "2048x1152"])
def test_sizes_accepted(size):
    assert image_tool.validate_image_tool({"type": "image_generation", "size": size}, "tools[0]")["size"] == size


@pytest.mark.parametrize("size,why", [("1000x1000", "divisible by 16"), ("3072x3072", "at most"),
                                      ("4096x1024", "longest edge"), ("512x512", "at least"),
                                      ("1024*1024", "WIDTHxHEIGHT"), ("x", "WIDTHxHEIGHT")])
def test_sizes_rejected(size, why):
    with pytest.raises(GatewayError) as info:
        image_tool.validate_image_tool({"type": "image_generation", "size": size}, "tools[0]")
    assert info.value.status == 400 and info.value.param == "tools[0].size" and why in info.value.message


def test_tool_fields_validated_and_normalized():
    tool = image_tool.validate_image_tool({"type": "image_generation", "output_format": "webp", "output_compression": 80,
                                       "background": "opaque", "moderation": "low", "partial_images": 3,
                                       "quality": "high", "model": "gpt-image-1"}, "t")
    assert tool == {"type": "image_generation", "output_format": "webp", "output_compression": 80,
                    "background": "opaque", "moderation": "low", "partial_images": 3}
    # png takes compression 100 only (and then it is a no-op)
    assert image_tool.validate_image_tool({"type": "image_generation", "output_compression": 100}, "t") == {
        "type": "image_generation"}


@pytest.mark.parametrize("field,value", [("output_format", "gif"), ("output_compression", 101),
                                         ("output_compression", 50), ("background", "transparent"),
                                         ("moderation", "high"), ("partial_images", 4), ("partial_images", True),
                                         ("n", 2), ("mask", {}), ("input_fidelity", "high"), ("quality", "ultra")])
def test_tool_fields_rejected(field, value):
    with pytest.raises(GatewayError) as info:
        image_tool.validate_image_tool({"type": "image_generation", field: value}, "t")
    assert info.value.status == 400 and info.value.param == f"t.{field}"


def test_generations_request_to_turn():
    turn = images.parse_generations_request(orjson.dumps({
        "model": "gpt-image-2", "prompt": "  a red fox  ", "size": "1536x1024", "output_format": "jpeg",
        "output_compression": 70, "quality": "hd", "n": 1, "response_format": "b64_json", "user": "bob",
        "partial_images": 2}), host_model="gpt-5.5")
    assert turn.request == {"model": "gpt-5.5", "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a red fox"}]}],
        "tools": [{"type": "image_generation", "size": "1536x1024", "output_format": "jpeg",
                   "output_compression": 70}]}
    assert turn.stream is False and turn.conversation_id == "bob" and turn.requested_model == "gpt-image-2"
    chat_host = images.parse_generations_request(orjson.dumps({"model": "gpt-5.4", "prompt": "p"}),
                                                 host_model="gpt-5.5")
    assert chat_host.request["model"] == "gpt-5.4"
    assert chat_host.request["tools"] == [{"type": "image_generation", "size": "auto", "output_format": "png"}]


@pytest.mark.parametrize("body,param", [
    ({"prompt": ""}, "prompt"), ({"prompt": "x" * 32769}, "prompt"), ({"prompt": "p", "n": 2}, "n"),
    ({"prompt": "p", "response_format": "url"}, "response_format"), ({"prompt": "p", "stream": True}, "stream"),
    ({"prompt": "p", "output_compression": 90}, "output_compression"), ({"prompt": "p", "model": ""}, "model"),
])
def test_generations_validation(body, param):
    with pytest.raises(GatewayError) as info:
        images.parse_generations_request(orjson.dumps(body), host_model="gpt-5.5")
    assert info.value.status == 400 and info.value.param == param


def test_edit_request_puts_input_images_next_to_the_tool():
    turn = images.parse_edits_request(orjson.dumps({"prompt": "make it blue", "images": [
        {"image_url": "data:image/png;base64,AAAA"}]}), host_model="gpt-5.5")
    assert turn.request["input"][0]["content"] == [{"type": "input_text", "text": "make it blue"},
                                                   {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]
    assert turn.request["tools"][0]["type"] == "image_generation"
    with pytest.raises(GatewayError):
        images.parse_edits_request(orjson.dumps({"prompt": "x"}), host_model="gpt-5.5")
    with pytest.raises(GatewayError) as info:
        images.parse_edits_request(orjson.dumps({"prompt": "x", "image": "file:///etc/passwd"}), host_model="g")
    assert info.value.param == "image"


def normalized(raw):
    normalizer = EventNormalizer()
    return [n for e in raw for n in normalizer.feed(CodexEvent(e["type"], e))]


IMAGE_ITEM = {"type": "image_generation_call", "id": "ig_1", "status": "completed", "result": "iVBORw0KGgo=",
              "revised_prompt": "a red fox, photo", "output_format": "png", "size": "1536x1024"}


def image_stream(final_output):
    return [{"type": "response.created", "response": {"id": "r1"}},
            {"type": "response.output_item.added", "output_index": 0, "item": {**IMAGE_ITEM, "result": None}},
            {"type": "response.image_generation_call.partial_image", "item_id": "ig_1", "partial_image_index": 0,
             "partial_image_b64": "UA=="},
            {"type": "response.output_item.done", "output_index": 0, "item": IMAGE_ITEM},
            {"type": "response.completed", "response": {"id": "r1", "status": "completed", "output": final_output,
                                                        "tool_usage": {"image_gen": {"input_tokens": 10,
                                                                                     "output_tokens": 4000}}}}]


def test_generations_response():
    turn = images.parse_generations_request(orjson.dumps({"prompt": "fox"}), host_model="gpt-5.5")
    reply = images.encode_generations_response(turn, normalized(image_stream([])), META)
    assert reply == {"created": 1700000000, "data": [{"b64_json": "iVBORw0KGgo=", "revised_prompt": "a red fox, photo"}],
                     "output_format": "png", "quality": "auto", "size": "1536x1024",
                     "usage": {"input_tokens": 10, "output_tokens": 4000, "total_tokens": 4010}}
    # a non-empty final output is authoritative
    assert images.encode_generations_response(turn, normalized(image_stream([IMAGE_ITEM])), META)["data"]
    with pytest.raises(GatewayError) as info:
        images.encode_generations_response(turn, normalized(image_stream([{"type": "message", "content": []}])), META)
    assert info.value.status == 502 and info.value.code == "image_generation_failed"
    with pytest.raises(GatewayError) as info:
        images.encode_generations_response(turn, normalized(image_stream([])[:-1]), META)
    assert info.value.code == "image_generation_failed"


def test_image_analysis_round_trip():
    turn = images.parse_analysis_request(orjson.dumps({"prompt": "What is this?",
                                                       "image_url": "data:image/png;base64,AAAA"}),
                                         default_model="gpt-5.4")
    assert turn.request == {"model": "gpt-5.4", "input": [{"type": "message", "role": "user",
        "content": [{"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]}]}
    raw = [{"type": "response.output_text.delta", "item_id": "m", "delta": "A "},
           {"type": "response.output_text.delta", "item_id": "m", "delta": "cat."},
           {"type": "response.completed", "response": {"id": "r", "usage": {"input_tokens": 90, "output_tokens": 3}}}]
    assert images.encode_analysis_response(turn, normalized(raw), META) == {
        "id": "img_1", "object": "image_analysis", "created": 1700000000, "model": "gpt-5.5", "text": "A cat.",
        "usage": {"input_tokens": 90, "output_tokens": 3, "total_tokens": 93}}
    with pytest.raises(GatewayError) as info:
        images.parse_analysis_request(orjson.dumps({"prompt": "x"}), default_model="m")
    assert info.value.param == "image_url"
