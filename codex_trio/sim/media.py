"""Real, small images for `image_generation_call` results (Pillow encodes PNG, JPEG and WebP).

The picture is a deterministic gradient seeded by the prompt, so the same prompt gives the same bytes.
"""

from __future__ import annotations

import hashlib
import io

from PIL import Image

FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}


def parse_size(size: str | None, default: tuple[int, int] = (64, 64)) -> tuple[int, int]:
    """`"WxH"` → (W, H), capped to 512 px a side so results stay small; `auto`/None → default."""
    if not size or size == "auto":
        return default
    width, _, height = size.partition("x")
    try:
        return max(1, min(512, int(width))), max(1, min(512, int(height)))
    except ValueError:
        return default


def render(prompt: str, fmt: str, size: tuple[int, int], quality: int | None = None) -> bytes:
    seed = hashlib.sha256(prompt.encode("utf-8")).digest()
    width, height = size
    base = (seed[0], seed[1], seed[2])
    image = Image.new("RGB", size)
    image.putdata([
        ((base[0] + x * 255 // max(1, width - 1)) % 256, (base[1] + y * 255 // max(1, height - 1)) % 256, base[2])
        for y in range(height) for x in range(width)
    ])
    out = io.BytesIO()
    kind = FORMATS.get(fmt.lower(), "PNG")
    options = {"quality": quality} if quality is not None and kind in ("JPEG", "WEBP") else {}
    image.save(out, kind, **options)
    return out.getvalue()
