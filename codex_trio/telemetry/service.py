"""`Telemetry`: the operator-data service of one gateway. It hands out a `RequestTrace` per model request and
sends each finished record to its three consumers: the usage writer (SQLite, batched), the in-memory
request log (with its live tail) and the Prometheus metrics. It also owns the client keys and their limits."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Callable

import trio

from .client_keys import ClientKeys
from .metrics import Metrics
from .prices import estimate_cost
from .record import RequestRecord
from .request_log import RequestLog
from ..store.location import StoreLocation
from .store import OperatorStore
from .trace import RequestTrace
from .writer import UsageWriter

if TYPE_CHECKING:
    from ..config.store import ConfigStore

log = logging.getLogger(__name__)

# The POST routes that are model requests (one record each), by the protocol they speak.
_EXACT_ROUTES = {
    "/v1/chat/completions": "openai",
    "/v1/responses": "responses", "/responses": "responses", "/v1/responses/review": "responses",
    "/responses/review": "responses", "/v1/responses/compact": "responses",
    "/v1/messages": "anthropic",
    "/api/chat": "ollama", "/api/generate": "ollama",
    "/v1/images/generations": "images", "/v1/images/edits": "images", "/v1/codex/image-analysis": "images",
    "/v1/audio/transcriptions": "audio",
    "/v1/embeddings": "embeddings",
}
_GEMINI_ACTIONS = (":generateContent", ":streamGenerateContent")


def protocol_of(method: str, path: str) -> str | None:
    """The protocol of a model request, or None for every other route (not recorded)."""
    if method != "POST":
        return None
    if path.startswith("/v1beta/models/") and path.endswith(_GEMINI_ACTIONS):
        return "gemini"
    return _EXACT_ROUTES.get(path)


class Telemetry:
    def __init__(self, config: "ConfigStore", *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.store: OperatorStore | None = None
        self.writer = UsageWriter(clock=self._now, retention_days=lambda: self.config.settings.usage_stats.retention_days)
        self.request_log = RequestLog(lambda: self.config.settings.logs.request_log_size)
        self.metrics = Metrics()
        self.keys = ClientKeys(clock=self._now)

    def _now(self) -> float:
        return self.clock()

    def begin(self, protocol: str, path: str, method: str, *, user_agent: str = "", client_ip: str = "",
              key=None) -> RequestTrace:
        self.metrics.in_flight.inc()
        return RequestTrace(self._finished, protocol=protocol, path=path, method=method, wall_clock=self._now(),
                            user_agent=user_agent, client_ip=client_ip, key=key, admit=self.keys.admit)

    def _finished(self, trace: RequestTrace) -> None:
        self.metrics.in_flight.dec()
        record = trace.record
        settings = self.config.settings
        if record.model:
            record.cost_usd = round(estimate_cost(record.model, record.input_tokens, record.cached_tokens,
                                                  record.output_tokens, settings.usage_stats.prices), 8)
        self.submit(record, trace.upstream_failures)

    def submit(self, record: RequestRecord, upstream_failures: list[str] | tuple[str, ...] = ()) -> None:
        """A finished request: to the writer (when accounting is on), the request log and the metrics."""
        settings = self.config.settings
        self.writer.add(record, usage=settings.usage_stats.enabled,
                        persist_error=settings.logs.request_log and record.outcome == "error")
        if record.key_id:
            self.keys.account_tokens(record.key_id, record.started_at, record.total_tokens)
        if settings.logs.request_log:
            self.request_log.add(record)
        self.metrics.observe(record, upstream_failures)

    async def _after_flush(self, store: OperatorStore) -> None:
        await self.keys.reload_if_changed(store)
        if store.sync.dialect == "postgresql" and self.config.settings.usage_stats.enabled:
            await self.keys.share_budgets(store, self.writer.pending_records)  # other instances' usage

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Background job: open the operator store, load the client keys and their budget counters, then write
        usage once a second until cancelled (the last batch is written on the way out)."""
        self.store = store = await OperatorStore.open_at(StoreLocation.of(self.config))
        try:
            await self.keys.load(store)
            self.writer.on_flushed = lambda: self._after_flush(store)
            async with trio.open_nursery() as nursery:
                await nursery.start(self.writer.run, store)
                if store.sync.dialect == "postgresql":
                    from ..store.rate_leases import CONCURRENCY, RPM, SlotLeases

                    self.keys.rpm_leases = SlotLeases(store.sync, self.keys, RPM, clock=self.clock)
                    self.keys.concurrency_leases = SlotLeases(store.sync, self.keys, CONCURRENCY, clock=self.clock)
                    await nursery.start(self.keys.rpm_leases.run)
                    await nursery.start(self.keys.concurrency_leases.run)
                if store.sync.dialect == "postgresql" and self.config.settings.usage_stats.enabled:
                    from ..store.budget_leases import BudgetLeases

                    self.keys.leases = BudgetLeases(store.sync, self.keys, clock=self.clock,
                                                    unwritten=self.writer.unwritten_tokens)
                    await nursery.start(self.keys.leases.run)
                task_status.started()
        finally:
            with trio.CancelScope(shield=True):
                await store.close()
