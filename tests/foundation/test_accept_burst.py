"""A burst of client connections larger than hypercorn's default listen backlog (100), arriving while the gateway
cannot accept (a loaded 2-core machine, a long scheduler pass, a paused process): the kernel must queue every
handshake, and the gateway must then serve every connection.

With a backlog of 100 the kernel dropped the handshakes beyond it. A client whose handshake kept being dropped for
about a minute (the server's SYN-ACK retries) got a reset before any byte: 164 and 429 of 1,000 streams in
`benches/stream_pacing` at load 11, each a lost request."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from tests.gateway_process import gateway_process

KEY = "sk-accept-burst-admin-key-0123456789"
BURST = 600


def _somaxconn() -> int:
    return int(Path("/proc/sys/net/core/somaxconn").read_text())


def _connect_all(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        sockets.append(sock)
    return sockets


def _established_within(sockets: list[socket.socket], seconds: float) -> int:
    """How many of the non-blocking connects completed their handshake within `seconds` (on loopback a queued
    handshake completes at once; a dropped one is retried by the kernel only after a second)."""
    selector = selectors.DefaultSelector()
    for sock in sockets:
        selector.register(sock, selectors.EVENT_WRITE)
    established = 0
    deadline = time.monotonic() + seconds
    while selector.get_map() and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
            selector.unregister(key.fileobj)
            if key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                established += 1
    selector.close()
    return established


def _answer(sock: socket.socket) -> bytes:
    sock.setblocking(True)
    sock.settimeout(30)
    sock.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


@pytest.mark.skipif(sys.platform != "linux", reason="reads Linux's somaxconn; pauses the process with SIGSTOP")
def test_a_burst_beyond_the_default_backlog_waits_in_the_kernel_and_is_served(tmp_path: Path):
    if _somaxconn() < BURST:
        pytest.fail(f"net.core.somaxconn is {_somaxconn()}: the kernel caps every listen backlog below this test's "
                    f"burst of {BURST} (Linux has defaulted to 4096 since 5.4)")
    with gateway_process(tmp_path / "data", KEY) as (proc, port):
        os.kill(proc.pid, signal.SIGSTOP)  # nothing is accepted meanwhile: every handshake must wait in the backlog
        try:
            clients = _connect_all(port, BURST)
            established = _established_within(clients, 0.8)
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        try:
            assert established == BURST, f"only {established} of {BURST} handshakes were queued"
            answers = [_answer(client) for client in clients]
        finally:
            for client in clients:
                client.close()
    served = sum(answer.startswith(b"HTTP/1.1 200") for answer in answers)
    assert served == BURST, f"{served} of {BURST} connections answered; first other: " + \
        next((repr(answer[:200]) for answer in answers if not answer.startswith(b"HTTP/1.1 200")), "")
