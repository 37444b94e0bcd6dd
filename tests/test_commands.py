"""`codex-trio demo` and `codex-trio sim` as a user runs them (subprocesses, 127.0.0.1 only)."""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.foundation.test_serving import _free_port


def _read_until(proc: subprocess.Popen, pattern: str, timeout: float = 60) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        seen += line
        if re.search(pattern, seen):
            return seen
    raise AssertionError(f"never saw {pattern!r}; output so far:\n{seen}")


def test_demo_serves_every_protocol_offline_and_stops_on_sigterm(tmp_path: Path):
    port, ollama_port = _free_port(), _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "codex_trio.cli", "demo", "--port", str(port), "--ollama-port",
                             str(ollama_port), "--data-dir", str(tmp_path / "demo")],
                            stderr=subprocess.PIPE, text=True,
                            env={k: v for k, v in os.environ.items() if k != "PORT"})
    try:
        output = _read_until(proc, r"Ctrl-C stops it")
        key = re.search(r"API key:\s+(\S+)", output).group(1)
        headers = {"authorization": f"Bearer {key}"}
        base = f"http://127.0.0.1:{port}"
        chat = httpx.post(f"{base}/v1/chat/completions", headers=headers, timeout=30,
                          json={"model": "gpt-5.5", "messages": [{"role": "user", "content": "hello demo"}]})
        assert chat.status_code == 200, chat.text
        assert "hello demo" in chat.json()["choices"][0]["message"]["content"]
        message = httpx.post(f"{base}/v1/messages", headers={"x-api-key": key}, timeout=30,
                             json={"model": "claude-sonnet-4-6", "max_tokens": 50,
                                   "messages": [{"role": "user", "content": "hi"}]})
        assert message.status_code == 200 and message.json()["content"][0]["type"] == "text"
        gemini = httpx.post(f"{base}/v1beta/models/gpt-5.5:generateContent", headers={"x-goog-api-key": key},
                            timeout=30, json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
        assert gemini.status_code == 200 and gemini.json()["candidates"][0]["finishReason"] == "STOP"
        tags = httpx.get(f"http://127.0.0.1:{ollama_port}/api/tags", timeout=30)
        assert "gpt-5.5" in [m["name"] for m in tags.json()["models"]]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    assert "Traceback" not in proc.stderr.read()


def test_sim_command_prints_its_urls_and_answers(tmp_path: Path):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "codex_trio.cli", "sim", "--port", str(port), "--accounts", "2"],
                            stdout=subprocess.PIPE, text=True)
    try:
        text = ""
        while not text.rstrip().endswith("}") or text.count("{") != text.count("}"):
            line = proc.stdout.readline()
            assert line, "sim exited early"
            text += line
        summary = json.loads(text)
        assert len(summary["accounts"]) == 2
        account = summary["accounts"][0]
        trust = ssl.create_default_context(cafile=summary["ca_file"])
        checked = httpx.get(f"{summary['backend_base']}/wham/accounts/check", verify=trust, timeout=30,
                            headers={"authorization": f"Bearer {account['access_token']}",
                                     "chatgpt-account-id": account["account_id"]})
        assert checked.status_code == 200
        assert checked.json()["accounts"][0]["id"] == account["account_id"]
        refused = httpx.get(f"{summary['backend_base']}/wham/accounts/check", verify=trust, timeout=30,
                            headers={"authorization": "Bearer forged"})
        assert refused.status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=20)
