"""`POST /v1/images/edits` as the official openai SDK sends it (multipart): one or several images, the same rules
as a generation, and the images reaching the model as input_image parts."""

from __future__ import annotations

import base64
import io

import openai
import pytest
from PIL import Image

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def picture(color: str, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(out, fmt)
    return out.getvalue()


def last_turn(stack) -> dict:
    return [t for t in stack.upstream_turns() if t.get("generate") is not False][-1]


def sent_images(stack) -> list[bytes]:
    parts = last_turn(stack)["input"][-1]["content"]
    return [base64.b64decode(p["image_url"].split(",", 1)[1]) for p in parts if p["type"] == "input_image"]


async def test_one_image_through_the_sdk(stack):
    stack.sim.script({"match": {"user_text": "make it blue"}, "reply": {"image": {}}})
    red = picture("red")
    result = await stack.client.images.edit(image=("red.png", red, "image/png"), prompt="make it blue",
                                            model="gpt-image-1", size="1536x1024", output_format="png")
    assert base64.b64decode(result.data[0].b64_json).startswith(PNG_MAGIC)
    assert sent_images(stack) == [red]
    tool = last_turn(stack)["tools"][-1]
    assert tool["type"] == "image_generation" and tool["size"] == "1536x1024"


async def test_several_images_and_jpeg_through_the_sdk(stack):
    stack.sim.script({"match": {"user_text": "combine"}, "reply": {"image": {}}})
    red, green = picture("red"), picture("green", "JPEG")
    result = await stack.client.images.edit(image=[("red.png", red, "image/png"), ("green.jpg", green, "image/jpeg")],
                                            prompt="combine them", output_format="jpeg", output_compression=80)
    assert result.data[0].b64_json
    assert sent_images(stack) == [red, green]
    assert last_turn(stack)["tools"][-1]["output_compression"] == 80


@pytest.mark.parametrize("extra,param", [({"size": "1000x1000"}, "size"), ({"n": 2}, "n"),
                                         ({"output_compression": 50}, "output_compression")])
async def test_the_generation_rules_apply(stack, extra, param):
    with pytest.raises(openai.BadRequestError) as caught:
        await stack.client.images.edit(image=("red.png", picture("red"), "image/png"), prompt="make it blue", **extra)
    assert caught.value.body["param"] == param and not stack.upstream_turns()


async def test_a_mask_is_refused(stack):
    with pytest.raises(openai.BadRequestError) as caught:
        await stack.client.images.edit(image=("red.png", picture("red"), "image/png"), prompt="make it blue",
                                       mask=("mask.png", picture("black"), "image/png"))
    assert caught.value.body["param"] == "mask" and not stack.upstream_turns()


async def test_a_file_that_is_not_an_image_is_refused(stack):
    with pytest.raises(openai.BadRequestError) as caught:
        await stack.client.images.edit(image=("notes.png", b"plain text", "image/png"), prompt="make it blue")
    assert "not a PNG, JPEG or WebP" in caught.value.message and not stack.upstream_turns()
