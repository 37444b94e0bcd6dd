"""Interpreter exit with calls still in flight is clean (the runtime shuts down from atexit)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import socket, trio
    from codex_trio.native import Client

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    port = silent.getsockname()[1]

    from codex_trio import native

    client = Client("openssl")
    # Calls that never finish, still referenced when the interpreter exits.
    calls = [client._start("GET", f"http://127.0.0.1:{port}/", [], None, False, None, True) for _ in range(5)]

    async def main():
        await trio.sleep(0.3)
        print("leaving with", native.in_flight(), "in flight", flush=True)

    trio.run(main)
    """
)


def test_exit_with_calls_in_flight_is_clean():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "leaving with 5 in flight" in done.stdout
    assert "panic" not in done.stderr.lower()
