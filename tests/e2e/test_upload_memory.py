"""Oversized uploads to `/v1/audio/transcriptions` leave the gateway's memory where it was: a `codex-trio run`
subprocess (RSS from /proc) before and after four chunked 64 MiB multipart uploads against a 4 MiB per-file cap."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.audio import speech_wav
from tests.gateway_process import gateway_process, rss_mib

KEY = "ct-upload-memory-test-key-0123456789"
MIB = 1024 * 1024


def _upload(port: int, size: int) -> tuple[int, int]:
    """A chunked multipart upload of a `size`-byte file, sent as long as the gateway reads it; (status, bytes sent
    before the gateway stopped reading)."""
    head = (b'--b0\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
            b'--b0\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
            b"Content-Type: audio/wav\r\n\r\n" + speech_wav("x"))
    piece = b"\0" * 65536
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(30)  # a gateway that stopped reading without answering fails the test, never hangs it
        sock.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer "
                     + KEY.encode() + b"\r\ntransfer-encoding: chunked\r\n"
                     b"content-type: multipart/form-data; boundary=b0\r\n\r\n")
        try:
            sock.sendall(b"%x\r\n%s\r\n" % (len(head), head))
            while sent < size:
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                sent += len(piece)
            tail = b"\r\n--b0--\r\n"
            sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail))
        except OSError:
            pass  # the gateway answered and closed
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            assert chunk, "connection closed without an answer"
            answer += chunk
    return int(answer.split(b" ", 2)[1]), sent


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_oversized_uploads_are_refused_without_memory_growth(tmp_path: Path):
    with gateway_process(tmp_path / "data", KEY, local={"server": {"max_upload_file_mb": 4}},
                         stderr=subprocess.DEVNULL) as (proc, port):
        assert _upload(port, 0)[0] == 503  # an upload within the cap is read; no account: 503 (and code is warm)
        before = rss_mib(proc.pid)
        results = [_upload(port, 64 * MIB) for _ in range(4)]
        time.sleep(0.5)
        after = rss_mib(proc.pid)
    assert [status for status, _ in results] == [413] * 4
    print(f"RSS before {before:.0f} MiB, after {after:.0f} MiB; sent before the refusal: "
          f"{[round(sent / MIB, 1) for _, sent in results]} MiB")
    assert all(sent < 32 * MIB for _, sent in results), results  # cut off near the cap, not read to the end
    assert after - before < 32, f"RSS grew from {before:.0f} MiB to {after:.0f} MiB"
