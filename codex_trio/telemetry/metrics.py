"""Prometheus metrics (`GET /metrics`), with the `prometheus-client` library.

Each gateway has its own registry (tests run several in one process). Request metrics are updated when a
record is finished; account states, quota, open streams and the Ollama listener are read at scrape time by a
collector, so they are never stale and cost nothing between scrapes.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .record import RequestRecord

CONTENT_TYPE = CONTENT_TYPE_LATEST
disable_created_metrics()  # the *_created series double the exposition and say nothing an operator needs
# Seconds: first upstream events come in tens of ms on a warm socket and in seconds with heavy reasoning.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("codex_trio_requests", "Model requests, by client protocol, model and HTTP status.",
                                ["protocol", "model", "status", "outcome"], registry=registry)
        self.ttfb = Histogram("codex_trio_time_to_first_byte_seconds", "Request arrival to the first substantive "
                              "upstream event.", ["protocol"], buckets=LATENCY_BUCKETS, registry=registry)
        self.duration = Histogram("codex_trio_request_duration_seconds", "Request arrival to the end of the reply.",
                                  ["protocol", "stream"], buckets=LATENCY_BUCKETS, registry=registry)
        self.tokens = Counter("codex_trio_tokens", "Tokens reported by the upstream, by kind (input includes cached, "
                              "output includes reasoning).", ["model", "kind"], registry=registry)
        self.upstream_failures = Counter("codex_trio_upstream_failures", "Upstream failures, by kind: before the "
                                         "first byte (each account given up on) and mid-stream.", ["kind"],
                                         registry=registry)
        self.failovers = Counter("codex_trio_failovers", "Accounts given up on before a turn started.",
                                 registry=registry)
        self.in_flight = Gauge("codex_trio_in_flight_requests", "Model requests being served now.", registry=registry)
        self._live = _LiveState()
        registry.register(self._live)
        # (metric, label values) -> its child: `labels()` validates, converts and locks on every call.
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def _child(self, metric: Any, *values: str) -> Any:
        child = self._children.get((metric, values))
        if child is None:
            child = self._children[(metric, values)] = metric.labels(*values)
        return child

    def bind(self, *, accounts: Callable[[], Iterable[Any]], open_streams: Callable[[], int],
             ollama_up: Callable[[], bool], store_available: Callable[[], bool] = lambda: True) -> None:
        """Where the scrape-time values come from (set by the app, which knows the pool and listeners)."""
        self._live.accounts, self._live.open_streams, self._live.ollama_up = accounts, open_streams, ollama_up
        self._live.store_available = store_available

    def observe(self, record: RequestRecord, upstream_failures: Iterable[str] = ()) -> None:
        model, child = record.model or "unknown", self._child
        child(self.requests, record.protocol, model, str(record.status), record.outcome).inc()
        if record.ttfb_ms is not None:
            child(self.ttfb, record.protocol).observe(record.ttfb_ms / 1000)
        child(self.duration, record.protocol, "true" if record.stream else "false").observe(record.duration_ms / 1000)
        for kind, value in (("input", record.input_tokens), ("cached_input", record.cached_tokens),
                            ("output", record.output_tokens), ("reasoning", record.reasoning_tokens)):
            if value:
                child(self.tokens, model, kind).inc(value)
        if record.failovers:
            self.failovers.inc(record.failovers)
        for kind in upstream_failures:
            child(self.upstream_failures, kind).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LiveState:
    """Scrape-time gauges: account states, quota used-percent per window, open streams, the Ollama listener."""

    def __init__(self) -> None:
        self.accounts: Callable[[], Iterable[Any]] = lambda: ()
        self.open_streams: Callable[[], int] = lambda: 0
        self.ollama_up: Callable[[], bool] = lambda: False
        self.store_available: Callable[[], bool] = lambda: True

    def describe(self) -> list:
        return []  # values are produced at scrape time only

    def collect(self):
        from ..upstream.quota import QuotaSnapshot

        states = GaugeMetricFamily("codex_trio_accounts", "Accounts by state.", labels=["state"])
        quota = GaugeMetricFamily("codex_trio_account_quota_used_percent", "Last known quota use per account and "
                                  "window (primary = short, secondary = weekly).", labels=["account", "window"])
        counts: dict[str, int] = {}
        for account in self.accounts():
            state = str(account.status) if account.enabled else "disabled"
            counts[state] = counts.get(state, 0) + 1
            snapshot = QuotaSnapshot.from_dict(account.quota) if account.quota else None
            if snapshot is None:
                continue
            for name, window in (("primary", snapshot.primary), ("secondary", snapshot.secondary)):
                if window is not None:
                    quota.add_metric([account.id, name], float(window.used_percent))
        for state, count in sorted(counts.items()):
            states.add_metric([state], count)
        yield states
        yield quota
        yield GaugeMetricFamily("codex_trio_open_streams", "Streamed replies open now.", value=self.open_streams())
        yield GaugeMetricFamily("codex_trio_ollama_listener_up", "1 when the Ollama listener is serving.",
                                value=1 if self.ollama_up() else 0)
        yield GaugeMetricFamily("codex_trio_store_available", "1 when the store (SQLite or PostgreSQL) answers; 0 "
                                "while this instance serves degraded from what it holds.",
                                value=1 if self.store_available() else 0)
