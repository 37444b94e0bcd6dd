"""Compressed answers, as chatgpt.com's edge gives them to a client that sends `accept-encoding` (Codex 0.171.0
sends `zstd,gzip`; 0.169.0 sends none and gets plain bodies).

`SimConfig.response_encoding` picks the behaviour: "negotiate" (zstd when accepted, else gzip, else none),
"zstd" / "gzip" (that one when accepted, else none), "identity" (never compress), or "mislabeled" (claims
the negotiated encoding but sends the body as it is: what a broken proxy does, for the client's error path).
Streamed bodies (SSE) are compressed chunk by chunk with a flush after each, so every event still reaches
the client when it is produced.
"""

from __future__ import annotations

import zlib
from typing import AsyncIterator, Literal

import zstandard

from .wire import HTTPResponse

ResponseEncoding = Literal["negotiate", "zstd", "gzip", "identity", "mislabeled"]
SUPPORTED = ("zstd", "gzip")  # the server's preference order


def accepted(header: str | None) -> list[str]:
    """The codings an `accept-encoding` value allows (q=0 excluded), lower-cased, in the client's order."""
    codings = []
    for part in (header or "").split(","):
        name, _, params = part.strip().partition(";")
        quality = params.strip().removeprefix("q=").strip() if params.strip().startswith("q=") else "1"
        try:
            allowed = float(quality) > 0
        except ValueError:
            allowed = False
        if name and allowed:
            codings.append(name.strip().lower())
    return codings


def choose(header: str | None, mode: ResponseEncoding) -> str | None:
    """The coding to answer with (None: a plain body)."""
    offered = accepted(header)
    if mode == "identity":
        return None
    if mode in SUPPORTED:
        return mode if mode in offered else None
    return next((c for c in SUPPORTED if c in offered), None)


class _Encoder:
    """One body's compressor: `chunk()` returns what can be sent now (flushed), `end()` the rest."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        if coding == "zstd":
            self._zstd = zstandard.ZstdCompressor(level=3).compressobj()
        else:
            self._gzip = zlib.compressobj(6, zlib.DEFLATED, 31)

    def chunk(self, data: bytes) -> bytes:
        if self.coding == "zstd":
            return self._zstd.compress(data) + self._zstd.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        return self._gzip.compress(data) + self._gzip.flush(zlib.Z_SYNC_FLUSH)

    def end(self) -> bytes:
        return self._zstd.flush() if self.coding == "zstd" else self._gzip.flush()


def encode_response(response: HTTPResponse, accept_encoding: str | None, mode: ResponseEncoding) -> HTTPResponse:
    """`response` with its body compressed as the client accepts (in place; returned for chaining). Empty
    bodies, 1xx/204/304 answers and bodies that already carry an encoding are left alone."""
    coding = choose(accept_encoding, "negotiate" if mode == "mislabeled" else mode)
    empty = response.stream is None and not response.body
    already = any(k.lower() == "content-encoding" for k, _ in response.headers)
    if coding is None or empty or already or response.status < 200 or response.status in (204, 304):
        return response
    response.headers = [*response.headers, ("content-encoding", coding)]
    if mode == "mislabeled":
        return response
    encoder = _Encoder(coding)
    if response.stream is None:
        response.body = encoder.chunk(response.body) + encoder.end()
    else:
        response.stream = _encoded(response.stream, encoder)
    return response


async def _encoded(stream: AsyncIterator[bytes], encoder: _Encoder) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield encoder.chunk(chunk)
    yield encoder.end()
