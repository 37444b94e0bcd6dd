"""Real WAV files for the transcription tests, written with the standard library's `wave` module."""

from __future__ import annotations

import io
import math
import struct
import wave


def speech_wav(words: str, seconds: float = 0.5, rate: int = 16000) -> bytes:
    """16 kHz mono 16-bit PCM (what Codex dictation records): a tone, with `words` in a LIST/INFO/ICMT chunk, the
    simulator's stand-in for the speech it would recognise."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = int(seconds * rate)
        out.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                                 for i in range(frames)))
    riff = bytearray(buffer.getvalue())
    text = words.encode() + b"\0"
    if len(text) % 2:
        text += b"\0"
    info = b"INFO" + b"ICMT" + len(text).to_bytes(4, "little") + text
    riff += b"LIST" + len(info).to_bytes(4, "little") + info
    riff[4:8] = (len(riff) - 8).to_bytes(4, "little")
    return bytes(riff)
