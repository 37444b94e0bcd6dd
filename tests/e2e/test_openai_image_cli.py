"""`codex-trio image` as a user runs it (the executable, a subprocess) against the real gateway on the simulator:
a real image file lands in the workspace."""

from __future__ import annotations

import os
import struct
import sys
import zlib
from pathlib import Path

import trio

EXECUTABLE = Path(sys.executable).with_name("codex-trio")


async def codex_trio_image(*args: str, cwd: Path) -> trio.CompletedProcess:
    # HOME points at the workspace: no ~/.config/codex-api of the machine running the tests is read
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_API_")} | {"HOME": str(cwd)}
    return await trio.run_process([str(EXECUTABLE), "image", *args], cwd=cwd, env=env, capture_stdout=True,
                                  capture_stderr=True, check=False)


async def test_image_command_saves_a_real_png(stack, tmp_path: Path):
    stack.sim.script({"match": {"user_text": "pixel art cat"}, "reply": {"image": {"size": "96x64"}}})
    result = await codex_trio_image("a pixel art cat", "--base-url", stack.url, "--token", stack.key, "--quiet",
                                    cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    saved = tmp_path / result.stdout.decode().strip()
    assert saved.parent == tmp_path / "assets" / "generated" and saved.suffix == ".png"
    data = saved.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    width, height = struct.unpack(">II", data[16:24])
    assert kind == b"IHDR" and (width, height) == (96, 64)
    assert zlib.crc32(data[12:16 + length]) == struct.unpack(">I", data[16 + length:20 + length])[0]
    sent = [t for t in stack.upstream_turns() if t.get("generate") is not False][-1]
    assert sent["tools"][0]["type"] == "image_generation" and sent["tools"][0]["output_format"] == "png"


async def test_image_command_reads_the_gateway_and_key_from_the_environment(stack, tmp_path: Path):
    stack.sim.script({"match": {"user_text": "tiny fox"}, "reply": {"image": {"size": "32x32"}}})
    env = {**os.environ, "HOME": str(tmp_path), "CODEX_API_BASE_URL": stack.url, "CODEX_API_TOKEN": stack.key}
    result = await trio.run_process([str(EXECUTABLE), "image", "a tiny fox", "-o", "art/fox.png"], cwd=tmp_path,
                                    env=env, capture_stdout=True, capture_stderr=True, check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "art/fox.png"
    assert (tmp_path / "art" / "fox.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_image_command_with_a_wrong_key_fails_cleanly(stack, tmp_path: Path):
    result = await codex_trio_image("a cat", "--base-url", stack.url, "--token", "wrong", "--quiet", cwd=tmp_path)
    assert result.returncode == 1
    assert "HTTP 401" in result.stderr.decode() and "Traceback" not in result.stderr.decode()
    assert not list(tmp_path.rglob("*.png"))
