"""The streamed multipart reader: parts gathered across any chunking, the per-file cap hit as soon as it is passed,
and malformed forms refused with a 400."""

from __future__ import annotations

import httpx
import pytest

from codex_trio.errors import GatewayError
from codex_trio.protocols.multipart_form import MAX_FIELD_BYTES, FormReader, boundary_of


def encoded(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """A body exactly as httpx (the openai SDK's transport) encodes a form upload."""
    request = httpx.Request("POST", "http://127.0.0.1/", data=fields, files=files)
    return request.read(), request.headers["content-type"]


def read(body: bytes, content_type: str, *, chunk: int, max_file_bytes: int = 1 << 20):
    reader = FormReader(boundary_of(content_type), max_file_bytes=max_file_bytes)
    for start in range(0, len(body), chunk):
        reader.feed(body[start:start + chunk])
    return reader.finish()


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
def test_fields_and_files_survive_any_chunking(chunk):
    audio = bytes(range(256)) * 40
    body, content_type = encoded({"model": "whisper-1", "language": "en"}, {"file": ("speech.wav", audio, "audio/wav")})
    form = read(body, content_type, chunk=chunk)
    assert form.text("model") == "whisper-1" and form.text("language") == "en"
    (upload,) = form.files["file"]
    assert (upload.filename, upload.content_type, upload.data) == ("speech.wav", "audio/wav", audio)


def test_a_file_over_the_cap_is_refused_while_it_streams():
    body, content_type = encoded({}, {"file": ("big.wav", b"\0" * 5000, "audio/wav")})
    reader = FormReader(boundary_of(content_type), max_file_bytes=1000)
    fed = 0
    with pytest.raises(GatewayError) as caught:
        for start in range(0, len(body), 256):
            reader.feed(body[start:start + 256])
            fed = start + 256
    assert caught.value.status == 413 and caught.value.code == "file_too_large"
    assert fed < 2000  # refused about where the limit was passed, not at the end of the body


@pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data", None,
                                          "multipart/form-data; boundary=\u00e9t\u00e9\u2603", "multipart/form-data; boundary=" + "x" * 71])
def test_not_a_form_is_a_400(content_type):
    with pytest.raises(GatewayError) as caught:
        boundary_of(content_type)
    assert caught.value.status == 400


def test_a_truncated_form_is_a_400():
    body, content_type = encoded({"model": "whisper-1"}, {"file": ("a.wav", b"abc", "audio/wav")})
    with pytest.raises(GatewayError) as caught:
        read(body[:-20], content_type, chunk=64)
    assert caught.value.status == 400 and caught.value.code == "invalid_multipart"


def test_an_oversized_text_field_is_a_400():
    body, content_type = encoded({"prompt": "x" * (MAX_FIELD_BYTES + 1)}, {"file": ("a.wav", b"abc", "audio/wav")})
    with pytest.raises(GatewayError) as caught:
        read(body, content_type, chunk=4096)
    assert caught.value.status == 400 and caught.value.param == "prompt"


def test_a_part_without_a_name_is_a_400():
    body = b'--b\r\nContent-Disposition: form-data; filename="a.wav"\r\n\r\nabc\r\n--b--\r\n'
    with pytest.raises(GatewayError) as caught:
        read(body, "multipart/form-data; boundary=b", chunk=8)
    assert caught.value.status == 400 and caught.value.code == "invalid_multipart"
