"""A native client builds each TLS stack when it first needs it.

Every upstream client pairs an OpenSSL one (HTTPS) with a rustls one (WebSocket) per proxy, and each TLS stack
loads the system's root certificates and runs its library's start-up code: about 6 MiB of RSS for OpenSSL and
2 MiB for rustls (docs/performance.md, "Idle RSS and memory per stream, fourth round"). A client used only for
WebSockets never needs the HTTPS stack, one used only for HTTPS never the WebSocket's; a gateway that has not
served a turn needs no WebSocket stack.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from codex_trio import native

SCRIPT = textwrap.dedent(
    """
    import socket, trio
    from codex_trio.native import Client, ConnectError

    def rss_kib():
        for line in open("/proc/self/smaps_rollup"):
            if line.startswith("Rss:"):
                return int(line.split()[1])

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()

    before = rss_kib()
    https, websocket = Client("openssl"), Client("rustls")
    made = rss_kib()

    async def first_request():
        try:
            await https.request("GET", f"https://127.0.0.1:{port}/", [])
        except ConnectError:
            pass

    trio.run(first_request)
    print(made - before, rss_kib() - made)
    """
)


def test_making_clients_builds_no_tls_stack_until_a_call_needs_one():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    made_kib, first_request_kib = map(int, done.stdout.split())
    assert made_kib < 1024, f"making the two clients took {made_kib} KiB (their TLS stacks were built)"
    # The measurement sees a stack being built: the first HTTPS call builds OpenSSL's.
    assert first_request_kib > 2048, first_request_kib


def test_a_bad_ca_file_or_proxy_still_fails_when_the_client_is_made(tmp_path):
    with pytest.raises(native.TlsError, match="ca_file"):
        native.Client("openssl", ca_file=str(tmp_path / "missing.pem"))
    empty = tmp_path / "empty.pem"
    empty.write_text("no certificate here\n")
    with pytest.raises(native.TlsError, match="no certificate"):
        native.Client("rustls", ca_file=str(empty))
    with pytest.raises(native.ProxyError):
        native.Client("openssl", proxy="not a proxy url")
