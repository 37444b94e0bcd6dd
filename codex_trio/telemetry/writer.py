"""The background writer: records queue up in memory on the request path (an append, no I/O) and go to the
operator store in one transaction once a second, so accounting never delays a response.

On a clean shutdown the job's `finally` writes what is left (shielded, with a deadline); a kill -9 loses at
most the last second.
"""

from __future__ import annotations

import logging
from typing import Callable

import trio

from .record import RequestRecord
from ..store.errors import DATABASE_ERRORS
from .store import OperatorStore, prune, write_batch

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
PRUNE_SECONDS = 3600.0
FINAL_FLUSH_DEADLINE = 15.0
MAX_PENDING = 200_000  # if the disk refuses writes for long, keep at most this many records waiting


class UsageWriter:
    def __init__(self, *, clock: Callable[[], float], retention_days: Callable[[], int],
                 flush_seconds: float = FLUSH_SECONDS) -> None:
        self._clock = clock
        self._retention_days = retention_days
        self._flush_seconds = flush_seconds
        self._records: list[RequestRecord] = []
        self._flushing: list[list[RequestRecord]] = []  # the batch taken by the flush in progress, not committed yet
        self._one_at_a_time = trio.Lock()
        self._errors: list[RequestRecord] = []
        self.written = 0
        self.dropped = 0
        self.on_flushed: Callable[[], object] | None = None  # after each batch (the key cache's reload check)

    def pending_records(self) -> list[RequestRecord]:
        """The records not in the store yet (a flush in progress included)."""
        return [record for batch in self._flushing for record in batch] + self._records

    def unwritten_tokens(self, key_id: str) -> int:
        return sum(r.total_tokens for r in self.pending_records() if r.key_id == key_id)

    @property
    def pending(self) -> int:
        """Records not in the store yet, a flush in progress included."""
        return len(self._records) + len(self._errors) + sum(len(batch) for batch in self._flushing)

    def add(self, record: RequestRecord, *, usage: bool, persist_error: bool) -> None:
        if usage:
            self._records.append(record)
        if persist_error:
            self._errors.append(record)
        overflow = len(self._records) - MAX_PENDING
        if overflow > 0:
            del self._records[:overflow]
            self.dropped += overflow

    async def flush(self, store: OperatorStore) -> int:
        """Write what is pending. Flushes run one at a time: a route that flushes before it reads (the usage
        summary) waits for a flush already under way, so it reads every record finished before it was asked."""
        async with self._one_at_a_time:
            return await self._flush(store)

    async def _flush(self, store: OperatorStore) -> int:
        records, errors = self._records, self._errors
        if not records and not errors:
            return 0
        self._records, self._errors = [], []
        self._flushing.append(records)  # a flush may run beside the loop's (the dashboard's overview flushes)
        try:
            await store.write(lambda conn: write_batch(conn, records, errors))
        except DATABASE_ERRORS as exc:
            log.error("usage records could not be written (%s); retrying with the next batch", exc)
            self._records[:0], self._errors[:0] = records, errors
            return 0
        except BaseException:
            # Cancelled while waiting for the store's writer (a thread, once it runs, is not cancelled): nothing
            # was written, so the batch goes back for the next flush rather than being lost.
            self._records[:0], self._errors[:0] = records, errors
            raise
        finally:
            self._flushing = [batch for batch in self._flushing if batch is not records]
        self.written += len(records)
        return len(records)

    async def prune(self, store: OperatorStore) -> int:
        before = self._clock() - self._retention_days() * 86400
        return await store.write(lambda conn: prune(conn, before))

    async def run(self, store: OperatorStore, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        next_prune = 0.0
        try:
            while True:
                await trio.sleep(self._flush_seconds)
                await self.flush(store)
                try:
                    if self.on_flushed is not None:
                        await self.on_flushed()
                    if trio.current_time() >= next_prune:
                        next_prune = trio.current_time() + PRUNE_SECONDS
                        removed = await self.prune(store)
                        if removed:
                            log.info("usage: %d rows older than %d days removed", removed, self._retention_days())
                except DATABASE_ERRORS as exc:  # the store is away: keys and budgets as held, try next round
                    log.warning("operator store: %s", exc)
        finally:
            with trio.move_on_after(FINAL_FLUSH_DEADLINE) as final:
                final.shield = True
                await self.flush(store)
