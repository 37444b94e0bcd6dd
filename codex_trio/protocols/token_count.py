"""Local input-token counts for `POST /v1/messages/count_tokens` and Gemini `:countTokens`, sans-IO (each adapter
parses its body, `anthropic.count_tokens` / `gemini.count_tokens`; the count is taken here).

The count is taken over the Codex request the gateway would send (so it measures what the backend sees, after
the same translation), with an injected text counter `count(text) -> int` — the native o200k_base tokenizer
(`codex_trio._native.count_tokens`) in production, anything equivalent in tests.

Formula (OpenAI's published accounting for its chat format, applied to the Codex request):

* every message-like item costs `TOKENS_PER_MESSAGE` (3) plus its role plus its content; the reply is primed
  with `REPLY_PRIMER` (3). The instructions count as one system message.
* text parts: `count(text)`. Function calls: `count(name) + count(arguments)`; tool outputs: `count(output)`;
  reasoning items carried back: their summary text (the encrypted part is opaque to us).
* images follow OpenAI's tile rule: `detail: low` → 85; otherwise the image is fitted into 2048×2048, then
  scaled down so its short side is at most 768, and costs `85 + 170 × tiles` with 512-pixel tiles. Dimensions
  are read from the PNG / JPEG / GIF / WebP header of inline data; when unknown (URLs, other formats) a
  1024×1024 image is assumed (765 tokens). Files count the text of their name only plus one image-sized
  estimate per file, since their content is opaque here.
* tools: each function tool costs `TOKENS_PER_TOOL` (7) + `count(name)` + `count(description)` +
  `count(JSON of parameters)`, and a non-empty tool list adds `TOOLS_END` (12) — OpenAI's constants for
  function definitions. Hosted tools (web_search, ...) cost `TOKENS_PER_TOOL`.
"""

from __future__ import annotations

import base64
import binascii
import struct
from typing import Any, Callable

import orjson

from codex_trio.turn import Turn

Counter = Callable[[str], int]

TOKENS_PER_MESSAGE = 3
REPLY_PRIMER = 3
TOKENS_PER_TOOL = 7
TOOLS_END = 12
IMAGE_BASE_TOKENS = 85
IMAGE_TILE_TOKENS = 170
DEFAULT_IMAGE_SIZE = (1024, 1024)


# ---- images --------------------------------------------------------------------------------------------


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of a PNG, JPEG, GIF or WebP image, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8 ":
            w, h = struct.unpack("<HH", data[26:30])
            return w & 0x3FFF, h & 0x3FFF
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":
            return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
        return None
    if data.startswith(b"\xff\xd8"):
        at = 2
        while at + 9 <= len(data):
            if data[at] != 0xFF:
                return None
            marker = data[at + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                at += 2
                continue
            length = int.from_bytes(data[at + 2:at + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[at + 5:at + 9])
                return w, h
            at += 2 + length
    return None


def image_tokens(width: int, height: int, detail: str = "auto") -> int:
    """OpenAI's tile accounting for one image."""
    if detail == "low":
        return IMAGE_BASE_TOKENS
    if width <= 0 or height <= 0:
        width, height = DEFAULT_IMAGE_SIZE
    scale = min(1.0, 2048 / max(width, height))
    width, height = width * scale, height * scale
    scale = min(1.0, 768 / min(width, height))
    width, height = width * scale, height * scale
    tiles = -(-int(width) // 512) * -(-int(height) // 512)
    return IMAGE_BASE_TOKENS + IMAGE_TILE_TOKENS * max(tiles, 1)


def _data_url_size(url: str) -> tuple[int, int] | None:
    if not url.startswith("data:"):
        return None
    header, sep, payload = url.partition(",")
    if not sep or not header.endswith(";base64"):
        return None
    try:  # the header of every supported format sits well inside the first 64 KiB (JPEG: usually)
        head = base64.b64decode(payload[:87384] + "=" * (-len(payload[:87384]) % 4))
    except (binascii.Error, ValueError):
        return None
    return image_size(head)


def _image_part_tokens(part: dict[str, Any]) -> int:
    url = part.get("image_url")
    size = _data_url_size(url) if isinstance(url, str) else None
    detail = part.get("detail") if isinstance(part.get("detail"), str) else "auto"
    return image_tokens(*(size or DEFAULT_IMAGE_SIZE), detail=detail)


# ---- request -------------------------------------------------------------------------------------------


def _content_tokens(content: Any, count: Counter) -> int:
    if isinstance(content, str):
        return count(content)
    total = 0
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("input_text", "output_text", "summary_text") and isinstance(part.get("text"), str):
            total += count(part["text"])
        elif kind == "input_image":
            total += _image_part_tokens(part)
        elif kind == "input_file":
            total += count(str(part.get("filename") or "")) + image_tokens(*DEFAULT_IMAGE_SIZE)
    return total


def _item_tokens(item: dict[str, Any], count: Counter) -> int:
    kind = item.get("type", "message")
    if kind == "message":
        return TOKENS_PER_MESSAGE + count(str(item.get("role", ""))) + _content_tokens(item.get("content"), count)
    if kind in ("function_call", "custom_tool_call"):
        payload = item.get("arguments") if kind == "function_call" else item.get("input")
        return TOKENS_PER_MESSAGE + count(str(item.get("name", ""))) + count(str(payload or ""))
    if kind in ("function_call_output", "custom_tool_call_output"):
        output = item.get("output")
        return TOKENS_PER_MESSAGE + (count(output) if isinstance(output, str) else _content_tokens(output, count))
    if kind == "reasoning":
        return _content_tokens(item.get("summary"), count)
    return TOKENS_PER_MESSAGE


def _tool_tokens(tool: dict[str, Any], count: Counter) -> int:
    if tool.get("type") != "function":
        return TOKENS_PER_TOOL
    total = TOKENS_PER_TOOL + count(str(tool.get("name", "")))
    if isinstance(tool.get("description"), str):
        total += count(tool["description"])
    if tool.get("parameters"):
        total += count(orjson.dumps(tool["parameters"]).decode())
    return total


def count_request_tokens(request: dict[str, Any], count: Counter) -> int:
    """Input tokens of a Codex request body (instructions, input items, tools)."""
    total = REPLY_PRIMER
    instructions = request.get("instructions")
    if isinstance(instructions, str) and instructions:
        total += TOKENS_PER_MESSAGE + count("system") + count(instructions)
    for item in request.get("input") or []:
        if isinstance(item, dict):
            total += _item_tokens(item, count)
    tools = [t for t in request.get("tools") or [] if isinstance(t, dict)]
    if tools:
        total += TOOLS_END + sum(_tool_tokens(t, count) for t in tools)
    return total


def count_turn_tokens(turn: Turn, count: Counter) -> int:
    return count_request_tokens(turn.request, count)
