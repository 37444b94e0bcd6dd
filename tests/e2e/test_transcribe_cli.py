"""`codex-trio transcribe FILE` as a user runs it (the executable, a subprocess) against the real gateway on the
simulator, with a real WAV file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import orjson
import trio

from tests.audio import speech_wav

EXECUTABLE = Path(sys.executable).with_name("codex-trio")


async def codex_trio_transcribe(*args: str, cwd: Path) -> trio.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_API_")} | {"HOME": str(cwd)}
    return await trio.run_process([str(EXECUTABLE), "transcribe", *args], cwd=cwd, env=env, capture_stdout=True,
                                  capture_stderr=True, check=False)


async def test_transcribe_prints_the_transcript(stack, tmp_path: Path):
    (tmp_path / "note.wav").write_bytes(speech_wav("remember to buy milk"))
    result = await codex_trio_transcribe("note.wav", "--language", "en", "--base-url", stack.url, "--token", stack.key,
                                         cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == "remember to buy milk\n"
    (sent,) = stack.sim.requests_to("/backend-api/transcribe", "POST")
    assert b'name="language"\r\n\r\nen\r\n' in sent.raw_body


async def test_transcribe_as_verbose_json(stack, tmp_path: Path):
    (tmp_path / "note.wav").write_bytes(speech_wav("hello", seconds=0.25))
    result = await codex_trio_transcribe("note.wav", "--format", "verbose_json", "--base-url", stack.url,
                                         "--token", stack.key, cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert orjson.loads(result.stdout) == {"task": "transcribe", "language": None, "text": "hello", "duration": 0.25}


async def test_transcribe_of_a_file_that_is_not_audio_fails_cleanly(stack, tmp_path: Path):
    (tmp_path / "note.wav").write_text("not audio")
    result = await codex_trio_transcribe("note.wav", "--base-url", stack.url, "--token", stack.key, cwd=tmp_path)
    assert result.returncode == 1
    assert "HTTP 400" in result.stderr.decode() and "Traceback" not in result.stderr.decode()
