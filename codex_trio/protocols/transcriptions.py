"""OpenAI's `POST /v1/audio/transcriptions` over the backend's dictation endpoint. Sans-IO: an `UploadForm` in, a
`TranscriptionRequest` out; the backend's text in, the client's reply out.

The backend takes the audio and an optional language and returns only text, so:

* `model` is required like OpenAI's API and names which transcription model the client meant (gpt-4o-transcribe,
  gpt-4o-mini-transcribe, whisper-1, ...); the backend has no choice of model, so it is not sent;
* `prompt`, `temperature` and `chunking_strategy` are accepted, but not sent (the backend takes none of them);
* `response_format` json / text / verbose_json; srt and vtt need timestamps the backend does not return, so they
  are a 400 rather than invented timings (and so are `timestamp_granularities[]`, `include[]` and `stream`);
* the file must be audio in a format the backend takes (wav, mp3, mp4/m4a, ogg, webm, flac), recognised by its
  first bytes rather than by the name or content type a client guessed; anything else is a 400.
"""

from __future__ import annotations

import io
import re
import wave
from dataclasses import dataclass
from typing import Any

from codex_trio.errors import ErrorKind, GatewayError, invalid_request
from codex_trio.protocols.multipart_form import UploadForm

RESPONSE_FORMATS = ("json", "text", "verbose_json")
TIMESTAMP_FORMATS = ("srt", "vtt")
KNOWN_FIELDS = frozenset({"file", "model", "language", "prompt", "response_format", "temperature",
                          "timestamp_granularities[]", "stream", "chunking_strategy", "include[]"})
_LANGUAGE = re.compile(r"[a-z]{2}")
_MODEL_WORDS = ("transcribe", "whisper")


@dataclass(frozen=True, slots=True)
class TranscriptionRequest:
    model: str
    audio: bytes
    filename: str
    content_type: str  # recognised from the bytes: what the backend is told
    language: str | None
    response_format: str


def audio_type(data: bytes) -> str | None:
    """The audio content type of `data` by its signature, or None when it is not audio the backend takes."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[:4] == b"OggS":
        return "audio/ogg"
    if data[:4] == b"fLaC":
        return "audio/flac"
    if data[:4] == b"\x1a\x45\xdf\xa3":  # EBML: WebM (Matroska) audio
        return "audio/webm"
    if data[4:8] == b"ftyp":  # ISO media: m4a / mp4
        return "audio/mp4"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):  # MPEG audio frame
        return "audio/mpeg"
    return None


def _one_text(form: UploadForm, name: str) -> str | None:
    if name in form.files:
        raise invalid_request(f"'{name}' must be a text field, not a file.", param=name, code="invalid_type")
    return form.text(name)


def parse_transcription_form(form: UploadForm) -> TranscriptionRequest:
    unknown = sorted(set(form.names()) - KNOWN_FIELDS)
    if unknown:
        raise invalid_request(f"Unknown form field(s): {', '.join(unknown)}. This endpoint takes file, model, "
                              "language, prompt, response_format and temperature.", param=unknown[0],
                              code="unknown_parameter")
    files = form.files.get("file", [])
    if "file" in form.fields or len(files) != 1:
        raise invalid_request("Send exactly one audio file as the 'file' form part (with a filename).", param="file",
                              code="missing_required_parameter" if not files else "invalid_value")
    model = _one_text(form, "model")
    if not model or not model.strip():
        raise invalid_request("'model' is required (for example 'gpt-4o-transcribe' or 'whisper-1').", param="model",
                              code="missing_required_parameter")
    if not any(word in model for word in _MODEL_WORDS):
        raise invalid_request(f"'{model}' is not a transcription model; use gpt-4o-transcribe, "
                              "gpt-4o-mini-transcribe or whisper-1.", param="model", code="model_not_found")
    language = _one_text(form, "language") or None
    if language is not None and not _LANGUAGE.fullmatch(language):
        raise invalid_request(f"Invalid language '{language}': use an ISO-639-1 code such as 'en'.",
                              param="language", code="invalid_value")
    response_format = _one_text(form, "response_format") or "json"
    if response_format in TIMESTAMP_FORMATS:
        raise invalid_request(f"response_format '{response_format}' needs timestamps, which the ChatGPT "
                              "transcription backend does not return; use json, text or verbose_json.",
                              param="response_format", code="unsupported_value")
    if response_format not in RESPONSE_FORMATS:
        raise invalid_request(f"Invalid response_format '{response_format}': use json, text or verbose_json.",
                              param="response_format", code="invalid_value")
    if form.fields.get("timestamp_granularities[]"):
        raise invalid_request("timestamp_granularities needs timestamps, which the ChatGPT transcription backend "
                              "does not return.", param="timestamp_granularities", code="unsupported_parameter")
    if form.fields.get("include[]"):
        raise invalid_request("'include' (logprobs) is not available: the ChatGPT transcription backend returns only "
                              "text.", param="include", code="unsupported_parameter")
    if (_one_text(form, "stream") or "false").lower() != "false":
        raise invalid_request("Streaming transcription is not supported; omit 'stream'.", param="stream",
                              code="unsupported_value")
    temperature = _one_text(form, "temperature")
    if temperature is not None:
        try:
            valid = 0.0 <= float(temperature) <= 1.0
        except ValueError:
            valid = False
        if not valid:
            raise invalid_request("'temperature' must be a number from 0 to 1.", param="temperature",
                                  code="invalid_value")
    (upload,) = files
    kind = audio_type(upload.data)
    if kind is None:
        raise invalid_request(f"The file '{upload.filename}' is not audio in a supported format (wav, mp3, mp4/m4a, "
                              "ogg, webm, flac).", param="file", code="invalid_file_format")
    return TranscriptionRequest(model.strip(), upload.data, upload.filename or "audio", kind, language,
                                response_format)


def wav_seconds(data: bytes) -> float | None:
    try:
        with wave.open(io.BytesIO(data)) as audio:
            return round(audio.getnframes() / audio.getframerate(), 3)
    except (wave.Error, EOFError, ZeroDivisionError):
        return None


def transcript_text(answer: Any) -> str:
    """The backend's `{"text": ...}`; anything else is the backend's fault (a 502 said so)."""
    if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
        raise GatewayError(502, "The transcription backend answered without a transcript. Retry the request.",
                           ErrorKind.UPSTREAM, code="bad_upstream_response")
    return answer["text"]


def encode_transcription(request: TranscriptionRequest, text: str) -> tuple[str, Any]:
    """(content type, body) for the client: text → the plain text; json → `{text}`; verbose_json → text,
    language (the one asked for, when given) and duration (for WAV; the backend reports neither), no segments."""
    if request.response_format == "text":
        return "text/plain; charset=utf-8", text
    if request.response_format == "verbose_json":
        reply: dict[str, Any] = {"task": "transcribe", "language": request.language, "text": text}
        seconds = wav_seconds(request.audio) if request.content_type == "audio/wav" else None
        if seconds is not None:
            reply["duration"] = seconds
        return "application/json", reply
    return "application/json", {"text": text}
