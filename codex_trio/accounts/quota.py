"""The quota snapshot the pool consumes (typed; the upstream package parses headers, WS events and
/wham/usage into it — to be merged with its parser) and the pure rules the pool applies to it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class QuotaWindow:
    used_percent: float
    window_minutes: int | None = None
    resets_at: float | None = None  # unix seconds

    def to_dict(self) -> dict[str, Any]:
        return {"used_percent": self.used_percent, "window_minutes": self.window_minutes,
                "resets_at": self.resets_at}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> QuotaWindow | None:
        if not isinstance(data, dict) or not isinstance(data.get("used_percent"), (int, float)):
            return None
        return cls(float(data["used_percent"]), data.get("window_minutes"), data.get("resets_at"))


@dataclass(frozen=True, slots=True)
class QuotaSnapshot:
    """primary = the short (5 h) window, secondary = the long (weekly) one. `limit_reached` is the backend's
    own verdict (429 usage_limit_reached or /wham/usage limit_reached); used_percent ≥ 100 counts too.
    `model_limits` are per-model buckets keyed by metered limit id (e.g. codex_bengalfox)."""

    primary: QuotaWindow | None = None
    secondary: QuotaWindow | None = None
    limit_reached: bool = False
    model_limits: dict[str, QuotaSnapshot] = field(default_factory=dict)

    def windows(self) -> list[QuotaWindow]:
        return [w for w in (self.primary, self.secondary) if w is not None]

    def _blocking(self) -> list[QuotaWindow]:
        """The windows that are over their limit. When the backend says `limit_reached` but no window shows
        100 %, the earliest-resetting window is taken, so the account is re-checked at the first reset
        instead of being held until the longest one (the stale-cooldown bug of peers.md §3 A.3)."""
        full = [w for w in self.windows() if w.used_percent >= 100]
        if full or not self.limit_reached:
            return full
        timed = [w for w in self.windows() if w.resets_at is not None]
        return [min(timed, key=lambda w: w.resets_at)] if timed else []

    def exhausted(self, now: float, limit_id: str | None = None) -> bool:
        """Blocked right now by this snapshot: a window over its limit whose known reset is still ahead.
        A snapshot never blocks past a reset, nor without one (the pool's cooldown covers that case)."""
        if limit_id is not None and limit_id in self.model_limits and self.model_limits[limit_id].exhausted(now):
            return True
        return any(w.resets_at is not None and w.resets_at > now for w in self._blocking())

    def blocked_until(self, now: float) -> float | None:
        """When the blocking windows reset (the time to re-verify), if known."""
        times = [w.resets_at for w in self._blocking() if w.resets_at is not None and w.resets_at > now]
        return max(times) if times else None

    def earliest_reset(self, now: float) -> float | None:
        times = [w.resets_at for w in self.windows() if w.resets_at is not None and w.resets_at > now]
        return min(times) if times else None

    def max_used_percent(self) -> float:
        return max((w.used_percent for w in self.windows()), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "primary": self.primary.to_dict() if self.primary else None,
            "secondary": self.secondary.to_dict() if self.secondary else None,
            "limit_reached": self.limit_reached,
            "model_limits": {k: v.to_dict() for k, v in self.model_limits.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> QuotaSnapshot | None:
        if not isinstance(data, dict):
            return None
        limits = data.get("model_limits") if isinstance(data.get("model_limits"), dict) else {}
        return cls(
            QuotaWindow.from_dict(data.get("primary")),
            QuotaWindow.from_dict(data.get("secondary")),
            bool(data.get("limit_reached")),
            {k: s for k, v in limits.items() if (s := cls.from_dict(v)) is not None},
        )


def crossed_thresholds(before: float, after: float, thresholds: tuple[float, ...]) -> list[float]:
    """Warning thresholds (e.g. 80, 90) that `after` reaches and `before` did not."""
    return [t for t in thresholds if before < t <= after]
