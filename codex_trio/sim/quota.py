"""Per-account usage accounting: 5-hour and weekly windows, per-model buckets, on the simulated clock.

A window opens with the first usage and resets `length` seconds later, like the real backend's rolling
limits. Budgets are in tokens per window; `used_percent` is what the headers and `/wham/usage` report.
Pure logic: every method takes `now`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PRIMARY_SECONDS = 300 * 60
SECONDARY_SECONDS = 10080 * 60

# tokens per (5-hour, weekly) window
PLAN_BUDGETS: dict[str, tuple[int, int]] = {
    "free": (200_000, 1_000_000),
    "go": (400_000, 2_000_000),
    "plus": (1_000_000, 5_000_000),
    "team": (1_000_000, 5_000_000),
    "business": (1_000_000, 5_000_000),
    "edu": (1_000_000, 5_000_000),
    "pro": (6_000_000, 30_000_000),
    "enterprise": (6_000_000, 30_000_000),
}

# per-model buckets: model slug -> (metered limit id, display name); budget is half the plan's
MODEL_LIMITS: dict[str, tuple[str, str]] = {"gpt-6-luna": ("codex_bengalfox", "GPT-6-Luna")}


@dataclass(slots=True)
class Window:
    length: int
    limit: int
    used: int = 0
    started_at: float | None = None

    def roll(self, now: float) -> None:
        if self.started_at is not None and now >= self.started_at + self.length:
            self.used = 0
            self.started_at = None

    def add(self, tokens: int, now: float) -> None:
        self.roll(now)
        if self.started_at is None:
            self.started_at = now
        self.used += tokens

    def reset_at(self, now: float) -> int:
        self.roll(now)
        return int((self.started_at if self.started_at is not None else now) + self.length)

    def used_percent(self, now: float) -> float:
        self.roll(now)
        return round(min(100.0, self.used * 100.0 / self.limit), 1) if self.limit else 0.0

    def exhausted(self, now: float) -> bool:
        self.roll(now)
        return self.used >= self.limit

    def fill(self, now: float) -> None:
        self.add(max(0, self.limit - self.used), now)

    def clear(self) -> None:
        self.used = 0
        self.started_at = None

    def usage_json(self, now: float) -> dict:
        reset_at = self.reset_at(now)
        return {
            "used_percent": self.used_percent(now),
            "limit_window_seconds": self.length,
            "reset_after_seconds": max(0, reset_at - int(now)),
            "reset_at": reset_at,
        }


@dataclass(slots=True)
class Bucket:
    limit_id: str  # "codex" or a per-model id like "codex_bengalfox"
    display_name: str
    primary: Window
    secondary: Window

    def exhausted_window(self, now: float) -> Window | None:
        for window in (self.primary, self.secondary):
            if window.exhausted(now):
                return window
        return None

    def windows(self) -> tuple[Window, Window]:
        return self.primary, self.secondary


def _bucket(limit_id: str, name: str, budgets: tuple[int, int]) -> Bucket:
    return Bucket(limit_id, name, Window(PRIMARY_SECONDS, budgets[0]), Window(SECONDARY_SECONDS, budgets[1]))


@dataclass
class Quota:
    plan: str
    buckets: dict[str, Bucket] = field(default_factory=dict)

    @classmethod
    def for_plan(cls, plan: str) -> "Quota":
        budgets = PLAN_BUDGETS.get(plan, PLAN_BUDGETS["plus"])
        quota = cls(plan, {"codex": _bucket("codex", "Codex", budgets)})
        for limit_id, name in sorted(set(MODEL_LIMITS.values())):
            quota.buckets[limit_id] = _bucket(limit_id, name, (budgets[0] // 2, budgets[1] // 2))
        return quota

    def buckets_for(self, model: str | None) -> list[Bucket]:
        found = [self.buckets["codex"]]
        limit = MODEL_LIMITS.get(model or "")
        if limit is not None:
            found.append(self.buckets[limit[0]])
        return found

    def blocked(self, model: str | None, now: float) -> tuple[Bucket, Window] | None:
        for bucket in self.buckets_for(model):
            window = bucket.exhausted_window(now)
            if window is not None:
                return bucket, window
        return None

    def record(self, model: str | None, tokens: int, now: float) -> None:
        for bucket in self.buckets_for(model):
            for window in bucket.windows():
                window.add(tokens, now)

    def exhaust(self, now: float, limit_id: str = "codex") -> None:
        self.buckets[limit_id].primary.fill(now)

    def reset(self) -> None:
        for bucket in self.buckets.values():
            for window in bucket.windows():
                window.clear()

    def headers(self, now: float) -> list[tuple[str, str]]:
        """The rate-limit headers of spec/upstream.md §6.2."""
        out: list[tuple[str, str]] = []
        for bucket in self.buckets.values():
            prefix = "x-" + bucket.limit_id.replace("_", "-")
            for name, window in (("primary", bucket.primary), ("secondary", bucket.secondary)):
                reset_at = window.reset_at(now)
                out.append((f"{prefix}-{name}-used-percent", str(window.used_percent(now))))
                out.append((f"{prefix}-{name}-window-minutes", str(window.length // 60)))
                out.append((f"{prefix}-{name}-reset-at", str(reset_at)))
                out.append((f"{prefix}-{name}-reset-after-seconds", str(max(0, reset_at - int(now)))))
            if bucket.limit_id != "codex":
                out.append((f"{prefix}-limit-name", bucket.display_name))
        out += [("x-codex-credits-has-credits", "false"), ("x-codex-credits-unlimited", "false"),
                ("x-codex-credits-balance", "0")]
        return out

    def _rate_limit_json(self, bucket: Bucket, now: float) -> dict:
        reached = bucket.exhausted_window(now) is not None
        return {
            "allowed": not reached,
            "limit_reached": reached,
            "primary_window": bucket.primary.usage_json(now),
            "secondary_window": bucket.secondary.usage_json(now),
        }

    def usage_json(self, now: float, reset_credits: int) -> dict:
        """The `/wham/usage` body (spec/upstream.md §6.3)."""
        main = self.buckets["codex"]
        blocked = main.exhausted_window(now)
        return {
            "plan_type": self.plan,
            "rate_limit": self._rate_limit_json(main, now),
            "code_review_rate_limit": None,
            "additional_rate_limits": [
                {"limit_name": b.display_name, "metered_feature": b.limit_id, "rate_limit": self._rate_limit_json(b, now)}
                for b in self.buckets.values() if b.limit_id != "codex"
            ],
            "credits": {"has_credits": False, "unlimited": False, "overage_limit_reached": False, "balance": "0",
                        "approx_local_messages": [0, 0], "approx_cloud_messages": [0, 0]},
            "spend_control": {"reached": False, "individual_limit": None},
            "rate_limit_reached_type": ("primary" if blocked is main.primary else "secondary") if blocked else None,
            "rate_limit_reset_credits": {"available_count": reset_credits},
            "promo": None,
        }

    def rate_limits_event(self, model: str | None, now: float) -> list[dict]:
        """`codex.rate_limits` WebSocket events: one for the main bucket, one per per-model bucket in play."""
        events = []
        for bucket in self.buckets_for(model):
            events.append({
                "type": "codex.rate_limits",
                "plan_type": self.plan,
                "rate_limits": {
                    name: {"used_percent": w.used_percent(now), "window_minutes": w.length // 60,
                           "reset_at": w.reset_at(now)}
                    for name, w in (("primary", bucket.primary), ("secondary", bucket.secondary))
                },
                "credits": {"has_credits": False, "unlimited": False, "balance": "0"},
                "metered_limit_name": bucket.limit_id,
            })
        return events

    def limit_error(self, bucket: Bucket, window: Window, now: float) -> dict:
        """The 429 `usage_limit_reached` body with reset information."""
        reset_at = window.reset_at(now)
        return {"error": {
            "type": "usage_limit_reached",
            "message": "The usage limit has been reached",
            "plan_type": self.plan,
            "resets_at": reset_at,
            "resets_in_seconds": max(0, reset_at - int(now)),
            "metered_limit_name": bucket.limit_id,
        }}
