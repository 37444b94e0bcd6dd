"""The `image_generation` tool's rules, shared by `/v1/images/*` (images.py) and the tool declared in Chat
Completions and Responses requests. Sans-IO.

The backend's image tool (gpt-image-2 behind the Codex model) has narrower rules than the public Images API; a
request that breaks them fails only after the model has run, so they are checked here, before upstream, with a
400 that says what to change:

* size: `auto` or `WxH` with both sides divisible by 16, longest edge ≤ 3840, between 1024×1024 and 3840×2160
  pixels in total (about 8.3 MP; 3072×3072 is rejected);
* output_format png/jpeg/webp; output_compression 0–100 and only for jpeg/webp (png takes only 100);
* background auto/opaque; moderation auto/low; partial_images 0–3;
* `n`, `mask`, `input_fidelity`, `style`, `response_format`, `input_image` are rejected upstream;
  `quality` and `model` are overridden upstream (quality is always echoed as `auto`), so they are dropped.
"""

from __future__ import annotations

from typing import Any

import orjson

from codex_trio.errors import GatewayError, invalid_request

MIN_PIXELS = 1024 * 1024
MAX_PIXELS = 3840 * 2160
MAX_EDGE = 3840
OUTPUT_FORMATS = ("png", "jpeg", "webp")
_REJECTED_TOOL_FIELDS = ("n", "mask", "input_fidelity", "style", "response_format", "input_image", "input_image_mask")
_DROPPED_TOOL_FIELDS = ("quality", "model")
_TOOL_FIELDS = ("type", "size", "output_format", "output_compression", "background", "moderation", "partial_images")
_QUALITIES = ("auto", "low", "medium", "high", "standard", "hd")


def _bad(message: str, param: str, code: str = "invalid_value") -> GatewayError:
    return invalid_request(message, param=param, code=code)


def check_size(size: Any, param: str) -> str:
    if not isinstance(size, str):
        raise _bad(f"'{param}' must be a string such as '1024x1024' or 'auto'.", param, "invalid_type")
    if size == "auto":
        return size
    width_text, sep, height_text = size.partition("x")
    if not sep or not width_text.isdigit() or not height_text.isdigit():
        raise _bad(f"Invalid size '{size}': use 'WIDTHxHEIGHT' (for example '1536x1024') or 'auto'.", param)
    width, height = int(width_text), int(height_text)
    if width % 16 or height % 16:
        raise _bad(f"Invalid size '{size}': width and height must both be divisible by 16.", param)
    if max(width, height) > MAX_EDGE:
        raise _bad(f"Invalid size '{size}': the longest edge may be at most {MAX_EDGE} pixels.", param)
    pixels = width * height
    if pixels < MIN_PIXELS:
        raise _bad(f"Invalid size '{size}': at least 1024x1024 pixels in total are required.", param)
    if pixels > MAX_PIXELS:
        raise _bad(f"Invalid size '{size}': at most {MAX_PIXELS} pixels (3840x2160) in total are allowed.", param)
    return size


def _int_in(value: Any, low: int, high: int, param: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _bad(f"'{param}' must be an integer from {low} to {high}.", param)
    return value


def _one_of(value: Any, allowed: tuple[str, ...], param: str, hint: str = "") -> str:
    if value not in allowed:
        raise _bad(f"Invalid value for '{param}': {orjson.dumps(value).decode()}. Supported values: "
                   f"{', '.join(allowed)}.{hint}", param)
    return value


def image_options(source: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Validate the shared image fields of `source` and return the upstream tool fields (without `type`)."""
    out: dict[str, Any] = {}
    if source.get("size") is not None:
        out["size"] = check_size(source["size"], f"{prefix}size")
    fmt = source.get("output_format")
    if fmt is not None:
        out["output_format"] = _one_of(fmt, OUTPUT_FORMATS, f"{prefix}output_format")
    compression = source.get("output_compression")
    if compression is not None:
        compression = _int_in(compression, 0, 100, f"{prefix}output_compression")
        if out.get("output_format", "png") == "png":
            if compression != 100:
                raise _bad("'output_compression' applies only to jpeg and webp; set output_format to 'jpeg' or "
                           "'webp', or drop output_compression.", f"{prefix}output_compression")
        else:
            out["output_compression"] = compression
    if source.get("background") is not None:
        out["background"] = _one_of(source["background"], ("auto", "opaque"), f"{prefix}background",
                                    " Transparent backgrounds are not available on this model.")
    if source.get("moderation") is not None:
        out["moderation"] = _one_of(source["moderation"], ("auto", "low"), f"{prefix}moderation")
    if source.get("partial_images") is not None:
        out["partial_images"] = _int_in(source["partial_images"], 0, 3, f"{prefix}partial_images")
    quality = source.get("quality")
    if quality is not None:
        _one_of(quality, _QUALITIES, f"{prefix}quality")
    return out


def validate_image_tool(tool: dict[str, Any], param: str) -> dict[str, Any]:
    """Check an `image_generation` tool object and return what goes upstream (quality/model dropped)."""
    for key in _REJECTED_TOOL_FIELDS:
        if tool.get(key) is not None:
            hint = " One image per call; make several calls for several images." if key == "n" else ""
            raise _bad(f"'{param}.{key}' is not supported by the image_generation tool.{hint}", f"{param}.{key}",
                       "unsupported_parameter")
    return {"type": "image_generation", **image_options(tool, f"{param}.")}
