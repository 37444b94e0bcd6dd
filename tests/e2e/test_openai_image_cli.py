"""`codex-trio image` against the real gateway on the simulator: a real image file lands in the workspace."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import trio

from codex_trio import image_cli


async def test_image_cli_saves_a_real_png(stack, tmp_path: Path, capsys):
    stack.sim.script({"match": {"user_text": "pixel art cat"}, "reply": {"image": {"size": "96x64"}}})
    argv = ["a pixel art cat", "--base-url", stack.url, "--token", stack.key, "--quiet"]
    code = await trio.to_thread.run_sync(lambda: image_cli.main(argv, env={}, cwd=tmp_path,
                                                                 config_dir=tmp_path / "no-config"))
    assert code == 0, capsys.readouterr().err
    saved = tmp_path / capsys.readouterr().out.strip()
    assert saved.parent == tmp_path / "assets" / "generated" and saved.suffix == ".png"
    data = saved.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    width, height = struct.unpack(">II", data[16:24])
    assert kind == b"IHDR" and (width, height) == (96, 64)
    assert zlib.crc32(data[12:16 + length]) == struct.unpack(">I", data[16 + length:20 + length])[0]
    sent = [t for t in stack.upstream_turns() if t.get("generate") is not False][-1]
    assert sent["tools"][0]["type"] == "image_generation" and sent["tools"][0]["output_format"] == "png"


async def test_image_cli_wrong_key_fails_cleanly(stack, tmp_path: Path, capsys):
    argv = ["a cat", "--base-url", stack.url, "--token", "wrong", "--quiet"]
    code = await trio.to_thread.run_sync(lambda: image_cli.main(argv, env={}, cwd=tmp_path,
                                                                 config_dir=tmp_path / "no-config"))
    assert code == 1
    assert "HTTP 401" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.png"))
