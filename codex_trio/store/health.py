"""Whether this instance reaches its store, and what waits for it: reported by /health, metrics and the follower's
log (docs/scale-out.md, "When the database goes away")."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class StoreHealth:
    """Whether this instance reaches its store (reported by /health, `doctor`, metrics)."""

    engine: str = "sqlite"
    available: bool = True
    since: float = field(default_factory=time.time)
    last_error: str | None = None

    def ok(self, now: float) -> None:
        if not self.available:
            log.warning("store reachable again after %.1f s", now - self.since)
            self.available, self.since, self.last_error = True, now, None

    def failed(self, now: float, error: str) -> None:
        if self.available:
            log.error("store unreachable (%s): serving from what this instance holds; no refresh, no new accounts "
                      "until it is back", error)
            self.available, self.since = False, now
        self.last_error = error

    def public(self) -> dict[str, Any]:
        return {"engine": self.engine, "available": self.available, "since": self.since, "last_error": self.last_error}


def store_report(services: Any) -> dict[str, Any]:
    """The store part of /health and `doctor`: reachable or not since when, and what waits for it."""
    store = getattr(services, "store", None)
    if store is None:
        return {}
    report = {**store.health.public(), "deferred_writes": store.deferred, "deferred_dropped": store.deferred_dropped}
    telemetry = getattr(services, "telemetry", None)
    if telemetry is not None:
        report["usage_records_pending"] = telemetry.writer.pending
        report["usage_records_dropped"] = telemetry.writer.dropped
    return report
