"""A generated image (the hosted `image_generation` tool's result) in the forms the chat-style protocols
deliver it: markdown text with a data URI (what chat UIs render; `model.images_as_markdown`) or the
arguments of an `image_generation` call (Chat Completions only, for clients that declared that tool)."""

from __future__ import annotations

from typing import Any

import orjson

from codex_trio.upstream.events import ImageGenerated

_MIME_TYPES = {"jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp"}


def image_markdown(image: ImageGenerated) -> str:
    mime = _MIME_TYPES.get(image.output_format, "image/png")
    return f"![image](data:{mime};base64,{image.result_b64})"


def image_arguments(image: ImageGenerated) -> str:
    payload: dict[str, Any] = {"result": image.result_b64}
    if image.revised_prompt:
        payload["revised_prompt"] = image.revised_prompt
    return orjson.dumps(payload).decode()
