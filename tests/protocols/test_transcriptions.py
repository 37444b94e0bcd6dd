"""The transcription adapter, sans-IO: which files count as audio, which fields are refused and why, and the three
reply shapes."""

from __future__ import annotations

import io
import wave

import pytest

from codex_trio.errors import GatewayError
from codex_trio.protocols.multipart_form import UploadedFile, UploadForm
from codex_trio.protocols.transcriptions import audio_type, encode_transcription, parse_transcription_form
from tests.audio import speech_wav


def form(audio: bytes = b"", **fields: str) -> UploadForm:
    upload = UploadedFile("file", "a.bin", "application/octet-stream", audio or speech_wav("hi"))
    return UploadForm(fields={"model": ["whisper-1"], **{k: [v] for k, v in fields.items()}}, files={"file": [upload]})


@pytest.mark.parametrize("head,kind", [
    (b"ID3\x04\0\0\0\0", "audio/mpeg"), (b"\xff\xfb\x90\x64", "audio/mpeg"), (b"OggS\0\x02", "audio/ogg"),
    (b"fLaC\0\0\0\x22", "audio/flac"), (b"\x1a\x45\xdf\xa3\x9f", "audio/webm"), (b"\0\0\0\x20ftypM4A ", "audio/mp4"),
])
def test_audio_is_recognised_by_its_bytes(head, kind):
    assert audio_type(head + b"\0" * 32) == kind
    assert parse_transcription_form(form(head + b"\0" * 32)).content_type == kind


@pytest.mark.parametrize("data", [b"%PDF-1.7", b"\x89PNG\r\n\x1a\n", b"hello", b"RIFF\0\0\0\0AVI "])
def test_anything_else_is_not_audio(data):
    with pytest.raises(GatewayError) as caught:
        parse_transcription_form(form(data))
    assert caught.value.status == 400 and caught.value.code == "invalid_file_format"


@pytest.mark.parametrize("fields,param", [
    ({"language": "English"}, "language"), ({"temperature": "2"}, "temperature"), ({"temperature": "hot"}, "temperature"),
    ({"stream": "true"}, "stream"), ({"include[]": "logprobs"}, "include"), ({"model": "gpt-5.5"}, "model"),
    ({"timestamp_granularities[]": "word"}, "timestamp_granularities"), ({"response_format": "srt"}, "response_format"),
    ({"response_format": "xml"}, "response_format"), ({"speed": "2"}, "speed"),
])
def test_refused_fields_name_the_field(fields, param):
    with pytest.raises(GatewayError) as caught:
        parse_transcription_form(form(**fields))
    assert caught.value.status == 400 and caught.value.param == param


def test_a_missing_file_is_400():
    with pytest.raises(GatewayError) as caught:
        parse_transcription_form(UploadForm(fields={"model": ["whisper-1"]}))
    assert caught.value.param == "file" and caught.value.code == "missing_required_parameter"


def test_the_three_reply_shapes():
    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1), audio.setsampwidth(2), audio.setframerate(16000)
        audio.writeframes(b"\0\0" * 8000)
    wav = out.getvalue()
    assert encode_transcription(parse_transcription_form(form(wav)), "hi") == ("application/json", {"text": "hi"})
    assert encode_transcription(parse_transcription_form(form(wav, response_format="text")), "hi") == (
        "text/plain; charset=utf-8", "hi")
    assert encode_transcription(parse_transcription_form(form(wav, response_format="verbose_json", language="de")),
                                "hi") == ("application/json", {"task": "transcribe", "language": "de", "text": "hi",
                                                               "duration": 0.5})
