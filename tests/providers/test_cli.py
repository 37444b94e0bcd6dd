"""`codex-trio providers add|list|remove|models` as subprocesses on a data dir; a gateway running on the same
data dir serves a provider added by the CLI at its next request (no restart)."""

from __future__ import annotations

import os
import subprocess
import sys

import openai
import pytest
import orjson
import trio

from tests.conftest import api_key, running_gateway

from .fakes import ANTHROPIC_KEY, OPENAI_KEY, running_fakes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


async def cli(data_dir, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "codex_trio.cli", "providers", args[0], "--data-dir", str(data_dir), *args[1:]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_TRIO")}
    with trio.fail_after(60):
        return await trio.run_process(argv, stdin=stdin, capture_stdout=True, capture_stderr=True, check=False,
                                      cwd=ROOT, env=env)


async def test_add_list_models_remove_and_a_running_gateway_follows(data_dir):
    async with running_fakes() as fakes:
        async with running_gateway(data_dir, install=True) as (gateway, url):
            added = await cli(data_dir, "add", "--provider", "custom", "--label", "fakeai", "--base-url",
                              f"{fakes.url}/v1", "--key-stdin", stdin=OPENAI_KEY.encode() + b"\n")
            assert added.returncode == 0, added.stderr
            assert OPENAI_KEY.encode() not in added.stdout and b"fake-gpt" in added.stdout  # models fetched
            added = await cli(data_dir, "add", "--provider", "anthropic", "--label", "claude", "--base-url",
                              fakes.url, "--key", ANTHROPIC_KEY, "--model", "claude-fake-1", "--priority", "2")
            assert added.returncode == 0, added.stderr
            listed = await cli(data_dir, "list", "--json")
            providers = orjson.loads(listed.stdout)["providers"]
            assert [(p["label"], p["models"]) for p in providers] == [
                ("fakeai", ["fake-gpt", "fake-embed"]), ("claude", ["claude-fake-1"])]
            assert OPENAI_KEY.encode() not in listed.stdout and ANTHROPIC_KEY.encode() not in listed.stdout
            models = await cli(data_dir, "models", "claude", "--refresh")
            assert models.stdout.decode().split() == ["claude/claude-fake-1"], models.stderr

            client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=api_key(gateway), max_retries=0)
            reply = await client.chat.completions.create(model="claude/claude-fake-1",
                                                         messages=[{"role": "user", "content": "hi"}])
            assert reply.choices[0].message.content == "Hello from fake-anthropic!"

            removed = await cli(data_dir, "remove", "claude")
            assert removed.returncode == 0 and b"removed 1" in removed.stdout
            missing = await cli(data_dir, "remove", "claude")
            assert missing.returncode == 1 and b"no provider 'claude'" in missing.stderr
            # the gateway re-reads the providers every 0.5 s: give a loaded machine a few polls
            with trio.fail_after(10), pytest.raises(openai.NotFoundError):
                while True:
                    await client.chat.completions.create(model="claude/claude-fake-1",
                                                         messages=[{"role": "user", "content": "hi"}])
                    await trio.sleep(0.2)
            bad = await cli(data_dir, "add", "--provider", "custom", "--key", "k")
            assert bad.returncode == 1 and b"baseUrl" in bad.stderr
