"""Image generation and analysis: `/v1/images/generations`, edits (JSON or multipart) and
`/v1/codex/image-analysis`. Sans-IO. The `image_generation` tool's rules, which these share with the Chat and
Responses adapters, are in image_tool.py.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from codex_trio.errors import ErrorKind, GatewayError, invalid_request
from codex_trio.protocols.failures import error_from_failed
from codex_trio.protocols.image_tool import image_options
from codex_trio.protocols.json_body import load_openai_json_object
from codex_trio.protocols.meta import ResponseMeta
from codex_trio.protocols.multipart_form import UploadForm, UploadedFile
from codex_trio.turn import Turn
from codex_trio.upstream.events import Completed, Failed, ImageGenerated, NormalizedEvent, OutputItemDone, TextDelta

MAX_PROMPT_CHARS = 32768
IMAGE_MODEL_PREFIXES = ("gpt-image", "dall-e", "chatgpt-image")
OPT_IMAGE_FORMAT = "image_output_format"


# ---- /v1/images/generations and JSON edits ----------------------------------------------------------------------

def _load(body: bytes) -> dict[str, Any]:
    return load_openai_json_object(body)


def _prompt(data: dict[str, Any]) -> str:
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise invalid_request("'prompt' is required and must be a non-empty string.", param="prompt",
                              code="missing_required_parameter")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise invalid_request(f"'prompt' is too long: {len(prompt)} characters, at most {MAX_PROMPT_CHARS}.",
                              param="prompt", code="string_above_max_length")
    return prompt.strip()


def _host_model(data: dict[str, Any], default: str) -> str:
    """The chat model that hosts the tool: the request's model unless it names an image model (or is absent)."""
    model = data.get("model")
    if model is None:
        return default
    if not isinstance(model, str) or not model.strip():
        raise invalid_request("'model' must be a non-empty string.", param="model", code="invalid_type")
    return default if model.startswith(IMAGE_MODEL_PREFIXES) else model


def _image_turn(data: dict[str, Any], host_model: str, images: list[str]) -> Turn:
    n = data.get("n")
    if n is not None and n != 1:
        raise invalid_request("'n' must be 1: the backend makes one image per call. Make several calls for several "
                              "images.", param="n", code="unsupported_value")
    fmt = data.get("response_format")
    if fmt is not None and fmt != "b64_json" and fmt != {"type": "b64_json"}:
        raise invalid_request("Only response_format 'b64_json' is supported (this gateway does not host image "
                              "URLs).", param="response_format", code="unsupported_value")
    if data.get("stream") not in (None, False):
        raise invalid_request("Streaming image generation is not supported; omit 'stream'.", param="stream",
                              code="unsupported_value")
    for key in ("mask", "input_fidelity", "style"):
        if data.get(key) is not None:
            raise invalid_request(f"'{key}' is not supported by the image backend.", param=key,
                                  code="unsupported_parameter")
    tool = {"type": "image_generation", "size": "auto", "output_format": "png"}
    tool.update(image_options(data, ""))
    tool.pop("partial_images", None)  # never exposed: the reply is one final image
    content: list[dict[str, Any]] = [{"type": "input_text", "text": _prompt(data)}]
    content.extend({"type": "input_image", "image_url": url} for url in images)
    user = data.get("user")
    return Turn(
        request={"model": host_model,
                 "input": [{"type": "message", "role": "user", "content": content}], "tools": [tool]},
        requested_model=data.get("model") if isinstance(data.get("model"), str) else host_model,
        stream=False,
        conversation_id=user if isinstance(user, str) and user else None,
        expose_reasoning=False,
        options={OPT_IMAGE_FORMAT: tool["output_format"]},
    )


def parse_generations_request(body: bytes, *, host_model: str) -> Turn:
    """`POST /v1/images/generations` → Turn. `host_model` is the configured chat model that runs the tool; a
    chat model named in the request (e.g. `gpt-5.5`) replaces it, an image model name (`gpt-image-*`) does not."""
    data = _load(body)
    return _image_turn(data, _host_model(data, host_model), [])


def _data_image_url(value: Any, param: str) -> str:
    if not isinstance(value, str) or not value.startswith(("data:image/", "http://", "https://")):
        raise invalid_request(f"'{param}' must be a base64 data URL ('data:image/png;base64,...') or an http(s) "
                              "URL.", param=param, code="invalid_image_url")
    return value


def parse_edits_request(body: bytes, *, host_model: str) -> Turn:
    """JSON `POST /v1/images/edits`: `images: [{image_url}]` (or `image: "<data url>"`) plus the prompt; the input
    images go to the model as `input_image` parts next to the tool (a reference-image edit)."""
    data = _load(body)
    urls: list[str] = []
    if data.get("images") is not None:
        listed = data["images"]
        if not isinstance(listed, list) or not listed:
            raise invalid_request("'images' must be a non-empty array of {image_url} objects.", param="images")
        for i, entry in enumerate(listed):
            url = _url_of(entry.get("image_url") if isinstance(entry, dict) else entry)
            urls.append(_data_image_url(url, f"images[{i}].image_url"))
    elif data.get("image") is not None:
        urls.append(_data_image_url(data["image"], "image"))
    else:
        raise invalid_request("An image edit needs 'images' (an array of {image_url}) or 'image'.", param="images",
                              code="missing_required_parameter")
    return _image_turn(data, _host_model(data, host_model), urls)


# ---- multipart /v1/images/edits (what the official SDKs send) ---------------------------------------------------

MAX_EDIT_IMAGES = 16
_INTEGER_FIELDS = ("n", "output_compression", "partial_images")
_IMAGE_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def _image_data_url(upload: UploadedFile, param: str) -> str:
    """An uploaded image as the data URL the model takes; its type recognised from its bytes (png, jpeg, webp)."""
    data = upload.data
    kind = next((k for signature, k in _IMAGE_SIGNATURES if data.startswith(signature)), None)
    if kind is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = "image/webp"
    if kind is None:
        raise invalid_request(f"The file '{upload.filename}' in '{param}' is not a PNG, JPEG or WebP image.",
                              param=param, code="invalid_image_format")
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def _form_value(name: str, value: str) -> Any:
    """A form field as the JSON value the shared checks expect (integers and booleans arrive as text)."""
    if name in _INTEGER_FIELDS and value.strip().lstrip("-").isdigit():
        return int(value)
    if name == "stream":
        return {"true": True, "false": False}.get(value.strip().lower(), value)
    return value


def parse_edits_form(form: UploadForm, *, host_model: str) -> Turn:
    """Multipart `POST /v1/images/edits`: `image` (or `image[]`, one part per image), `prompt` and the same options
    as a generation, checked by the same rules; a `mask` is refused like in JSON (the backend has no masks)."""
    uploads = [*form.files.get("image", []), *form.files.get("image[]", [])]
    if not uploads:
        raise invalid_request("An image edit needs the image to edit as the 'image' file part.", param="image",
                              code="missing_required_parameter")
    if len(uploads) > MAX_EDIT_IMAGES:
        raise invalid_request(f"At most {MAX_EDIT_IMAGES} images can be edited together.", param="image",
                              code="too_many_images")
    others = sorted(set(form.files) - {"image", "image[]", "mask"})
    if others:
        raise invalid_request(f"'{others[0]}' must be a text field, not a file.", param=others[0], code="invalid_type")
    data: dict[str, Any] = {name: _form_value(name, values[-1]) for name, values in form.fields.items()}
    if "mask" in form.files:
        data["mask"] = form.files["mask"][0].filename
    urls = [_image_data_url(upload, "image") for upload in uploads]
    return _image_turn(data, _host_model(data, host_model), urls)


def _final_image(events: Iterable[NormalizedEvent]) -> tuple[ImageGenerated | None, Completed | None]:
    image: ImageGenerated | None = None
    for event in events:
        if isinstance(event, ImageGenerated) and image is None:
            image = event
        elif isinstance(event, Failed):
            raise error_from_failed(event)
        elif isinstance(event, Completed):
            output = event.response.get("output")
            if isinstance(output, list) and output:  # a non-empty final output is authoritative
                item = next((o for o in output if isinstance(o, dict) and o.get("type") == "image_generation_call"
                             and isinstance(o.get("result"), str) and o["result"]), None)
                image = None if item is None else ImageGenerated(item.get("id") or "", item["result"],
                                                                 item.get("revised_prompt"),
                                                                 item.get("output_format") or "png", item)
            return image, event
    return image, None


def encode_generations_response(turn: Turn, events: Iterable[NormalizedEvent], meta: ResponseMeta) -> dict[str, Any]:
    """The Images API reply `{created, data:[{b64_json, revised_prompt}], output_format, quality, size, usage}`."""
    image, completed = _final_image(events)
    if image is None or completed is None:
        raise GatewayError(502, "The model did not return an image (no image_generation_call result). Rephrase the "
                                "prompt to ask for an image explicitly, then retry.", ErrorKind.UPSTREAM,
                           code="image_generation_failed")
    entry: dict[str, Any] = {"b64_json": image.result_b64}
    if image.revised_prompt:
        entry["revised_prompt"] = image.revised_prompt
    reply: dict[str, Any] = {"created": meta.created, "data": [entry],
                             "output_format": image.item.get("output_format") or turn.options.get(OPT_IMAGE_FORMAT,
                                                                                                   "png"),
                             "quality": "auto"}
    for key in ("size", "background"):
        if isinstance(image.item.get(key), str):
            reply[key] = image.item[key]
    usage = completed.usage
    if usage.image_input_tokens or usage.image_output_tokens:
        reply["usage"] = {"input_tokens": usage.image_input_tokens, "output_tokens": usage.image_output_tokens,
                          "total_tokens": usage.image_input_tokens + usage.image_output_tokens}
    return reply


# ---- /v1/codex/image-analysis ----------------------------------------------------------------------------------

def _url_of(value: Any) -> Any:
    """An image reference as a string or as Chat's `{url: …}` object."""
    return value.get("url") if isinstance(value, dict) else value


def parse_analysis_request(body: bytes, *, default_model: str) -> Turn:
    """`{prompt, image_url | images[], model?}` → a Turn asking the model about the image(s); text only."""
    data = _load(body)
    prompt = data.get("prompt", "Describe this image.")
    if not isinstance(prompt, str) or not prompt.strip():
        raise invalid_request("'prompt' must be a non-empty string.", param="prompt")
    urls: list[str] = []
    if data.get("image_url") is not None:
        urls.append(_data_image_url(_url_of(data["image_url"]), "image_url"))
    listed = data.get("images")
    if listed is not None and not isinstance(listed, list):
        raise invalid_request("'images' must be an array of {image_url} objects.", param="images",
                              code="invalid_type")
    for i, entry in enumerate(listed or []):
        # {image_url: "data:…"}, {image_url: {url: "data:…"}} (the Chat content-part shape) or a bare string
        urls.append(_data_image_url(_url_of(entry.get("image_url") if isinstance(entry, dict) else entry),
                                    f"images[{i}]"))
    if not urls:
        raise invalid_request("Send the image as 'image_url' (a base64 data URL such as 'data:image/png;base64,...').",
                              param="image_url", code="missing_required_parameter")
    model = data.get("model", default_model)
    if not isinstance(model, str) or not model:
        raise invalid_request("'model' must be a non-empty string.", param="model")
    content = [{"type": "input_text", "text": prompt}] + [{"type": "input_image", "image_url": u} for u in urls]
    return Turn(request={"model": model,
                         "input": [{"type": "message", "role": "user", "content": content}]},
                requested_model=model, stream=False, expose_reasoning=False)


def encode_analysis_response(turn: Turn, events: Iterable[NormalizedEvent], meta: ResponseMeta) -> dict[str, Any]:
    """`{id, object:"image_analysis", created, model, text, usage}` from the collected events."""
    text: list[str] = []
    message_text: list[str] = []
    for event in events:
        if isinstance(event, TextDelta):
            text.append(event.delta)
        elif isinstance(event, OutputItemDone) and event.item.get("type") == "message":
            message_text.extend(p.get("text", "") for p in event.item.get("content") or []
                                if isinstance(p, dict) and p.get("type") == "output_text")
        elif isinstance(event, Failed):
            raise error_from_failed(event)
        elif isinstance(event, Completed):
            usage = event.usage
            return {"id": meta.id, "object": "image_analysis", "created": meta.created, "model": meta.model,
                    "text": "".join(text) or "".join(message_text),
                    "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                              "total_tokens": usage.total_tokens}}
    raise GatewayError(502, "The upstream stream closed before the analysis was complete. Retry the request.",
                       ErrorKind.UPSTREAM, code="stream_disconnected")
