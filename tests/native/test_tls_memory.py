"""What the native clients' TLS stacks cost in memory (docs/performance.md, "Idle RSS and memory per stream,
fourth round").

Every upstream client pairs an OpenSSL one (HTTPS) with a rustls one (WebSocket) per egress proxy. A client
builds each TLS stack when it first needs it: the first stack of each library costs its start-up (~6 MiB of RSS
for OpenSSL, ~2 MiB for rustls), so a client used only for WebSockets never builds the HTTPS one and a gateway
that has not served a turn has no WebSocket stack. The clients of different proxies share one OpenSSL context
(~850 KiB each) and one parsed set of root certificates (~130 KiB each); the hellos are the same
(`test_hello.py`).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from codex_trio import native

# Each measurement runs in a process of its own; `port` refuses connections at once.
PRELUDE = textwrap.dedent(
    """
    import socket, trio
    from codex_trio.native import Client, ConnectError, ProxyError

    def rss_kib():
        for line in open("/proc/self/smaps_rollup"):
            if line.startswith("Rss:"):
                return int(line.split()[1])

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    """
)

SCRIPT = PRELUDE + textwrap.dedent(
    """

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


PER_PROXY = PRELUDE + textwrap.dedent(
    """

    async def one_call(index):
        # A distinct proxy per client pair, as the accounts' egress proxies are (the port refuses at once).
        proxy = f"http://user{index}:secret@127.0.0.1:{port}"
        https, websocket = Client("openssl", proxy=proxy), Client("rustls", proxy=proxy)
        try:
            await https.request("GET", "https://example.com/", [])
        except (ConnectError, ProxyError):
            pass
        try:
            await websocket.websocket("wss://example.com/ws", [])
        except (ConnectError, ProxyError):
            pass
        return https, websocket

    async def main():
        kept = [await one_call(0)]  # OpenSSL's own start-up, once per process
        before = rss_kib()
        for index in range(1, 11):
            kept.append(await one_call(index))
        print((rss_kib() - before) // 10)

    trio.run(main)
    """
)


def test_the_clients_of_different_proxies_share_their_tls_context_and_roots():
    done = subprocess.run([sys.executable, "-c", PER_PROXY], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    per_proxy_kib = int(done.stdout)
    assert per_proxy_kib < 100, f"each proxy's two clients took {per_proxy_kib} KiB after a call each"


def test_a_bad_ca_file_or_proxy_still_fails_when_the_client_is_made(tmp_path):
    with pytest.raises(native.TlsError, match="ca_file"):
        native.Client("openssl", ca_file=str(tmp_path / "missing.pem"))
    empty = tmp_path / "empty.pem"
    empty.write_text("no certificate here\n")
    with pytest.raises(native.TlsError, match="no certificate"):
        native.Client("rustls", ca_file=str(empty))
    with pytest.raises(native.ProxyError):
        native.Client("openssl", proxy="not a proxy url")
