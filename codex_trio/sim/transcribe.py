"""The backend's dictation endpoint, `POST /backend-api/transcribe`, as strict as what is known of it.

What is known was read from two public clients of the endpoint, not captured from real traffic (the project's
transcription spec says so): a multipart form with `file` (a filename and an audio content type) and an optional
ISO-639-1 `language`, no `model`; the Desktop app's `originator` and `User-Agent`; `{"text": ...}` back. Cloudflare
challenges a rustls ClientHello on this path and lets OpenSSL's through — here: a TLS connection that negotiated
ALPN (the rustls profile offers h2; the OpenSSL profile offers no ALPN at all) gets the challenge page. Anything
else is refused, so the gateway cannot drift into sending something the real endpoint was never seen to take.

The transcript is deterministic: a WAV may carry its words in a RIFF `LIST`/`INFO` `ICMT` (comment) chunk, which
tests write next to real samples; otherwise the transcript describes the audio (its duration or size).
"""

from __future__ import annotations

import re

from ..errors import GatewayError
from ..protocols.multipart_form import MIB, FormReader, UploadForm, boundary_of
from ..protocols.transcriptions import wav_seconds
from .validation import Rejection, detail

MAX_FILE_BYTES = 25 * MIB
AUDIO_TYPES = frozenset({"audio/wav", "audio/webm", "audio/mpeg", "audio/mp4", "audio/ogg", "audio/flac"})
ORIGINATORS = frozenset({"codex_desktop", "Codex Desktop"})
USER_AGENT_PREFIX = "Codex Desktop/"
FIELDS = frozenset({"file", "language"})
_LANGUAGE = re.compile(r"[a-z]{2}")


def check_client(originator: str | None, user_agent: str | None) -> Rejection | None:
    if originator not in ORIGINATORS:
        return detail(403, f"transcribe: unexpected originator {originator!r} (the Desktop app's is expected)")
    if not (user_agent or "").startswith(USER_AGENT_PREFIX):
        return detail(403, f"transcribe: unexpected User-Agent {user_agent!r} (Codex Desktop/<version> expected)")
    return None


def read_form(content_type: str | None, body: bytes) -> tuple[UploadForm | None, Rejection | None]:
    try:
        reader = FormReader(boundary_of(content_type), max_file_bytes=MAX_FILE_BYTES)
        reader.feed(body)
        form = reader.finish()
    except GatewayError as exc:
        return None, detail(exc.status, exc.message)
    unknown = sorted(set(form.names()) - FIELDS)
    if unknown:
        return None, detail(400, f"Unexpected form field(s): {', '.join(unknown)}")
    if set(form.fields) & {"file"} or len(form.files.get("file", [])) != 1:
        return None, detail(400, "Exactly one 'file' part with a filename is required")
    if "language" in form.files or len(form.fields.get("language", [])) > 1:
        return None, detail(400, "'language' must be one text field")
    language = form.text("language")
    if language is not None and not _LANGUAGE.fullmatch(language):
        return None, detail(400, f"Invalid language {language!r}: an ISO-639-1 code such as 'en' is expected")
    (upload,) = form.files["file"]
    if upload.content_type not in AUDIO_TYPES:
        return None, detail(400, f"Unsupported file type {upload.content_type!r}")
    if not upload.data:
        return None, detail(400, "The audio file is empty")
    if upload.content_type == "audio/wav" and not (upload.data[:4] == b"RIFF" and upload.data[8:12] == b"WAVE"):
        return None, detail(400, "The file is not a WAV file")
    return form, None


def _riff_chunks(data: bytes):
    position = 12
    while position + 8 <= len(data):
        name, size = data[position:position + 4], int.from_bytes(data[position + 4:position + 8], "little")
        yield name, data[position + 8:position + 8 + size]
        position += 8 + size + (size & 1)


def embedded_words(wav: bytes) -> str | None:
    """The text of a WAV's LIST/INFO/ICMT chunk, if it has one."""
    for name, content in _riff_chunks(wav):
        if name == b"LIST" and content[:4] == b"INFO":
            position = 4
            while position + 8 <= len(content):
                sub, size = content[position:position + 4], int.from_bytes(content[position + 4:position + 8], "little")
                if sub == b"ICMT":
                    return content[position + 8:position + 8 + size].rstrip(b"\0").decode("utf-8", "replace")
                position += 8 + size + (size & 1)
    return None


def transcript_of(form: UploadForm) -> str:
    (upload,) = form.files["file"]
    if upload.content_type == "audio/wav":
        words = embedded_words(upload.data)
        if words is not None:
            return words
        seconds = wav_seconds(upload.data)
        if seconds is not None:
            return f"[{seconds:.2f} seconds of audio without words]"
    return f"[{len(upload.data)} bytes of {upload.content_type}]"
