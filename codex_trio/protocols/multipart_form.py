"""Multipart form uploads, parsed as the body streams in. Sans-IO: bytes in, an `UploadForm` out.

The byte-level parsing is `python-multipart`'s streaming `MultipartParser` (the parser Starlette and FastAPI use;
it is exact for any chunking of the body; werkzeug's sans-IO decoder, tried first, gives a part a stray CR at
its end when the chunks that bring the closing boundary are small). This module adds the limits an upload
endpoint needs and gathers the parts:

* a file part larger than `max_file_bytes` raises a 413 as soon as its bytes pass the limit, so the caller stops
  reading the body there — nothing past the limit is kept;
* a text field is small by nature (a model name, a prompt): one over `MAX_FIELD_BYTES` is a 400;
* at most `MAX_PARTS` parts, so a body of many tiny parts cannot grow the form without bound.

The whole request body is also capped by the listener (`server/body_limit.py`), before any of this runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser
from werkzeug.http import parse_options_header

from codex_trio.errors import ErrorKind, GatewayError, invalid_request

MAX_FIELD_BYTES = 64 * 1024  # a prompt of 32768 characters in UTF-8 fits with room to spare
MAX_PARTS = 64
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class UploadedFile:
    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass(slots=True)
class UploadForm:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[UploadedFile]] = field(default_factory=dict)

    def text(self, name: str) -> str | None:
        """The field's value (the last one when a client repeated it), or None when it was not sent."""
        values = self.fields.get(name)
        return values[-1] if values else None

    def names(self) -> list[str]:
        return [*self.fields, *self.files]


def file_too_large(limit: int) -> GatewayError:
    """The rest of the upload is never read, so the connection cannot carry another request: say so."""
    return GatewayError(413, f"The uploaded file is too large: the limit is {limit // MIB} MiB per file "
                             "(server.max_upload_file_mb).", ErrorKind.INVALID_REQUEST, code="file_too_large",
                        param="file", headers=[("connection", "close")])


def malformed(detail: str) -> GatewayError:
    return invalid_request(f"The multipart body is malformed: {detail}", code="invalid_multipart")


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a `multipart/form-data` content type; a 400 naming what is wrong otherwise."""
    mimetype, options = parse_options_header(content_type or "")
    if mimetype != "multipart/form-data":
        raise invalid_request(f"This endpoint takes multipart/form-data (got {mimetype or 'no content type'}); send "
                              "the file as a form upload.", code="invalid_content_type")
    boundary = options.get("boundary", "")
    if not boundary or not boundary.isascii() or len(boundary) > 70:  # RFC 2046: 1-70 ASCII characters
        raise invalid_request("The multipart/form-data content type has no valid boundary.",
                              code="invalid_content_type")
    return boundary.encode("ascii")


class _Part:
    """The part being read: its headers as they arrive, then its bytes."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.name = ""
        self.filename: str | None = None
        self.data = bytearray()

    def end_header(self) -> None:
        self.headers[self.header_name.decode("latin-1").strip().lower()] = self.header_value.decode("utf-8",
                                                                                                    "replace").strip()
        self.header_name.clear()
        self.header_value.clear()

    def end_headers(self) -> None:
        disposition, options = parse_options_header(self.headers.get("content-disposition", ""))
        if disposition != "form-data" or not options.get("name"):
            raise malformed("every part needs 'Content-Disposition: form-data; name=...'.")
        self.name = options["name"]
        self.filename = options.get("filename")


class FormReader:
    """Feed the body chunk by chunk (`feed`), then `finish()` for the form. Raises GatewayError (400 / 413)."""

    def __init__(self, boundary: bytes, *, max_file_bytes: int) -> None:
        self._max_file_bytes = max_file_bytes
        self._form = UploadForm()
        self._part: _Part | None = None
        self._parts = 0
        self._ended = False
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._begin, "on_header_field": self._header_name, "on_header_value": self._header_value,
            "on_header_end": lambda: self._current().end_header(), "on_headers_finished": self._headers_done,
            "on_part_data": self._data, "on_part_end": self._end, "on_end": self._finished})

    def feed(self, chunk: bytes) -> None:
        if self._ended:
            return  # the epilogue after the closing boundary carries nothing
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise malformed(str(exc)) from None

    def finish(self) -> UploadForm:
        self._parser.finalize()
        if not self._ended:
            raise malformed("the body ended before its closing boundary.")
        return self._form

    def _current(self) -> _Part:
        assert self._part is not None  # the parser reports headers and data only inside a part
        return self._part

    def _begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise invalid_request(f"The form has too many parts (at most {MAX_PARTS}).", code="invalid_multipart")
        self._part = _Part()

    def _header_name(self, data: bytes, start: int, end: int) -> None:
        self._current().header_name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._current().header_value += data[start:end]

    def _headers_done(self) -> None:
        self._current().end_headers()

    def _data(self, data: bytes, start: int, end: int) -> None:
        part = self._current()
        part.data += data[start:end]
        if part.filename is not None and len(part.data) > self._max_file_bytes:
            raise file_too_large(self._max_file_bytes)
        if part.filename is None and len(part.data) > MAX_FIELD_BYTES:
            raise invalid_request(f"The form field '{part.name}' is too long (at most {MAX_FIELD_BYTES // 1024} KiB).",
                                  param=part.name, code="invalid_multipart")

    def _end(self) -> None:
        part = self._current()
        self._part = None
        if part.filename is not None:
            content_type = part.headers.get("content-type", "application/octet-stream")
            self._form.files.setdefault(part.name, []).append(UploadedFile(part.name, part.filename, content_type,
                                                                           bytes(part.data)))
            return
        try:
            text = part.data.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid_request(f"The form field '{part.name}' is not UTF-8 text.", param=part.name,
                                  code="invalid_multipart") from None
        self._form.fields.setdefault(part.name, []).append(text)

    def _finished(self) -> None:
        self._ended = True
