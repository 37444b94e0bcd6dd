"""Reading a multipart upload from the current request, streamed, with the per-file cap of
`server.max_upload_file_mb`. The parsing itself is `protocols/multipart_form.py`; the listener's cap on the whole
body (`body_limit.py`) has already run.

A declared Content-Length that cannot fit the allowed files is refused before one byte is read; otherwise the
body is fed to the parser chunk by chunk as it arrives, and the first file to pass the cap ends the request with a
413 there and then (the rest of the body is never read: the connection closes after the answer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quart import request

from ..protocols.multipart_form import MIB, FormReader, UploadForm, boundary_of, file_too_large

if TYPE_CHECKING:
    from .turns import SettingsSource

FORM_OVERHEAD_BYTES = 1024 * 1024  # part headers, boundaries and the text fields around the files


def max_file_bytes(config: "SettingsSource") -> int:
    return config.settings.server.max_upload_file_mb * MIB


def is_multipart() -> bool:
    return (request.headers.get("content-type") or "").lower().startswith("multipart/form-data")


async def read_upload_form(config: "SettingsSource", *, max_files: int) -> UploadForm:
    """The request's multipart form; GatewayError 400 (not a form, malformed) or 413 (a file over the cap)."""
    boundary = boundary_of(request.headers.get("content-type"))
    limit = max_file_bytes(config)
    declared = request.content_length
    if declared is not None and declared > limit * max_files + FORM_OVERHEAD_BYTES:
        raise file_too_large(limit)
    reader = FormReader(boundary, max_file_bytes=limit)
    async for chunk in request.body:
        reader.feed(chunk)
    return reader.finish()
