"""Large request bodies leave no resident memory behind: measured on a `codex-trio run` subprocess (RSS from
/proc) before and after uploads that are rejected (chunked and declared, 100 MB each) and accepted (40 MB)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.gateway_process import gateway_process, rss_mib

KEY = "ct-body-memory-test-key-0123456789"
MB = 1024 * 1024


def _head(port: int, path: str, extra: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {KEY}\r\n"
            f"content-type: application/json\r\n").encode() + extra + b"\r\n"


def _status_of(sock: socket.socket) -> int:
    sock.settimeout(30)
    answer = b""
    while b"\r\n" not in answer:
        chunk = sock.recv(4096)
        assert chunk, "connection closed without an answer"
        answer += chunk
    return int(answer.split(b" ", 2)[1])


def _upload_chunked(port: int, size: int) -> int:
    """Send `size` bytes chunked (as long as the server reads them); return the answer's status."""
    piece = b"x" * 65536
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(_head(port, "/v1/chat/completions", b"transfer-encoding: chunked\r\n"))
        try:
            for _ in range(size // len(piece)):
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed: what is wanted past the cap
        return _status_of(sock)


def _upload_declared(port: int, body: bytes | int) -> int:
    """A Content-Length upload: `body` itself, or only the declaration of that many bytes."""
    length = body if isinstance(body, int) else len(body)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(_head(port, "/v1/chat/completions", b"content-length: %d\r\n" % length))
        if isinstance(body, bytes):
            sock.sendall(body)
        return _status_of(sock)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_rejected_and_finished_large_bodies_leave_no_resident_memory(tmp_path: Path):
    with gateway_process(tmp_path / "data", KEY, stderr=subprocess.DEVNULL) as (proc, port):
        # a first ordinary request, so lazily imported code is counted in the baseline
        assert _upload_declared(port, b'{"model": "gpt-5.5", "messages": []}') == 400
        before = rss_mib(proc.pid)

        statuses = [_upload_chunked(port, 100 * MB) for _ in range(4)]
        statuses += [_upload_declared(port, 100 * MB) for _ in range(2)]
        big_message = b'{"model": "gpt-5.5", "messages": [{"role": "user", "content": "' + b"a" * (40 * MB) + b'"}]}'
        accepted = [_upload_declared(port, big_message) for _ in range(2)]
        time.sleep(0.5)
        after = rss_mib(proc.pid)
    assert statuses == [413] * 6
    assert all(status < 500 or status == 503 for status in accepted), accepted  # read, parsed, then no account
    print(f"RSS before {before:.0f} MB, after {after:.0f} MB")
    assert after - before < 40, f"RSS grew from {before:.0f} MB to {after:.0f} MB"
