"""The request log: the most recent requests in memory (a ring of `logs.request_log_size`), filtered and paged
for `GET /admin/logs`, and a live tail for `GET /admin/logs/stream`. Errors are also persisted (by the usage
writer) so they outlive the ring and restarts."""

from __future__ import annotations

import logging
from collections import deque
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import trio

from .record import RequestRecord

log = logging.getLogger(__name__)

TAIL_BUFFER = 256  # records a slow live-tail reader may fall behind before it misses some
FILTER_FIELDS = ("status", "model", "account", "key", "protocol", "outcome")


class RequestLog:
    def __init__(self, size: Callable[[], int]) -> None:
        self._size = size
        self._ring: deque[RequestRecord] = deque(maxlen=max(1, size()))
        self._subscribers: set[trio.MemorySendChannel[RequestRecord]] = set()
        self.missed = 0  # records a live-tail reader was too slow for

    def add(self, record: RequestRecord) -> None:
        size = self._size()
        if size <= 0:
            return
        if self._ring.maxlen != size:
            self._ring = deque(self._ring, maxlen=size)
        self._ring.append(record)
        for channel in list(self._subscribers):
            try:
                channel.send_nowait(record)
            except trio.WouldBlock:
                self.missed += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.discard(channel)

    def __len__(self) -> int:
        return len(self._ring)

    def query(self, filters: dict[str, str], *, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        """Newest first. Filters: status (a code, or 2xx / 4xx / 5xx / error), model, account, key (id or name),
        protocol, outcome, text (a substring of the path, models, error text or user agent)."""
        matched = [r for r in reversed(self._ring) if _matches(r, filters)]
        page = matched[offset:offset + limit]
        return {"total": len(matched), "offset": offset, "limit": limit, "size": self._ring.maxlen,
                "records": [r.to_json() for r in page]}

    @contextmanager
    def subscribe(self) -> Iterator[trio.MemoryReceiveChannel[RequestRecord]]:
        """Every record added while the block runs (a reader that falls TAIL_BUFFER behind misses some)."""
        send, receive = trio.open_memory_channel[RequestRecord](TAIL_BUFFER)
        self._subscribers.add(send)
        try:
            yield receive
        finally:
            self._subscribers.discard(send)
            send.close()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)


def _matches(record: RequestRecord, filters: dict[str, str]) -> bool:
    status = filters.get("status")
    if status:
        wanted = status.lower()
        if wanted == "error":
            if record.outcome != "error":
                return False
        elif wanted.endswith("xx"):
            if str(record.status)[:1] != wanted[:1]:
                return False
        elif str(record.status) != wanted:
            return False
    for name, value in (("model", record.model), ("account", record.account), ("protocol", record.protocol),
                        ("outcome", record.outcome)):
        wanted = filters.get(name)
        if wanted and wanted != value and not (name == "model" and wanted == record.requested_model):
            return False
    key = filters.get("key")
    if key and key not in (record.key_id, record.key_name):
        return False
    text = (filters.get("text") or "").lower()
    if text:
        haystack = " ".join((record.path, record.model, record.requested_model, record.error_text,
                             record.user_agent, record.account)).lower()
        if text not in haystack:
            return False
    return True
