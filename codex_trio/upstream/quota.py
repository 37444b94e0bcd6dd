"""One typed quota view from the three places the backend reports it (spec/upstream.md §5.5, §6.2, §6.3):

* rate-limit response headers on every `/codex/responses` reply and WebSocket upgrade (`x-codex-primary-*` …),
* `codex.rate_limits` WebSocket events,
* the `GET /wham/usage` body.

All parsers are pure: `now` (unix seconds) is passed in to turn relative resets into absolute ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

DEFAULT_LIMIT = "codex"


@dataclass(frozen=True, slots=True)
class QuotaWindow:
    used_percent: float
    window_minutes: int | None
    resets_at: float | None  # unix seconds

    @property
    def exhausted(self) -> bool:
        return self.used_percent >= 100.0


@dataclass(frozen=True, slots=True)
class Credits:
    has_credits: bool | None
    unlimited: bool | None
    balance: str | None


@dataclass(frozen=True, slots=True)
class LimitBucket:
    """An extra metered limit (e.g. `codex_bengalfox`) that blocks only its own models."""

    limit_id: str
    display_name: str | None
    primary: QuotaWindow | None
    secondary: QuotaWindow | None


@dataclass(frozen=True, slots=True)
class QuotaSnapshot:
    primary: QuotaWindow | None = None  # the short window (5 h)
    secondary: QuotaWindow | None = None  # the long window (weekly)
    credits: Credits | None = None
    plan: str | None = None
    limit_id: str = DEFAULT_LIMIT  # which metered limit primary/secondary describe
    limit_reached: bool = False  # the backend said so explicitly
    buckets: tuple[LimitBucket, ...] = ()

    @property
    def exhausted(self) -> bool:
        return self.limit_reached or any(w is not None and w.exhausted for w in (self.primary, self.secondary))

    def blocked_until(self) -> float | None:
        """When an exhausted account becomes usable again: the latest reset among exhausted windows."""
        if not self.exhausted:
            return None
        windows = [w for w in (self.primary, self.secondary) if w is not None]
        resets = [w.resets_at for w in windows if w.exhausted and w.resets_at is not None]
        if not resets and self.limit_reached:
            resets = [w.resets_at for w in windows if w.resets_at is not None]
        return max(resets) if resets else None


# ---- small value parsers ----------------------------------------------------------------------------------


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
    if isinstance(value, (int, float)):
        return bool(value)
    return None


def _window(used: Any, minutes: Any, reset_at: Any, reset_after: Any, now: float) -> QuotaWindow | None:
    used_f, minutes_f = _float(used), _float(minutes)
    resets_at = _float(reset_at)
    if resets_at is None:
        after = _float(reset_after)
        resets_at = now + after if after is not None else None
    if used_f is None and minutes_f is None and resets_at is None:
        return None
    if not used_f and not minutes_f and resets_at is None:
        return None  # "no data" (spec/upstream.md §6.2)
    return QuotaWindow(used_f or 0.0, int(minutes_f) if minutes_f is not None else None, resets_at)


def _credits(has: Any, unlimited: Any, balance: Any) -> Credits | None:
    parsed = Credits(_bool(has), _bool(unlimited), str(balance) if balance is not None else None)
    return None if parsed == Credits(None, None, None) else parsed


# ---- headers ----------------------------------------------------------------------------------------------

_FAMILY = re.compile(r"^x-([a-z0-9-]+)-primary-used-percent$")


def _header_window(h: dict[str, str], prefix: str, which: str, now: float) -> QuotaWindow | None:
    base = f"x-{prefix}-{which}"
    return _window(h.get(f"{base}-used-percent"), h.get(f"{base}-window-minutes"), h.get(f"{base}-reset-at"),
                   h.get(f"{base}-reset-after-seconds"), now)


def from_headers(headers: Iterable[tuple[str, str]], now: float) -> QuotaSnapshot | None:
    h = {name.lower(): value for name, value in headers}
    primary = _header_window(h, "codex", "primary", now)
    secondary = _header_window(h, "codex", "secondary", now)
    credits = _credits(h.get("x-codex-credits-has-credits"), h.get("x-codex-credits-unlimited"),
                       h.get("x-codex-credits-balance"))
    buckets = []
    for name in h:
        match = _FAMILY.match(name)
        if not match or match.group(1) in ("codex",):
            continue
        prefix = match.group(1)
        buckets.append(LimitBucket(prefix.replace("-", "_"), h.get(f"x-{prefix}-limit-name"),
                                   _header_window(h, prefix, "primary", now), _header_window(h, prefix, "secondary", now)))
    reached = bool(h.get("x-codex-rate-limit-reached-type"))
    if primary is None and secondary is None and credits is None and not buckets and not reached:
        return None
    return QuotaSnapshot(primary, secondary, credits, None, DEFAULT_LIMIT, reached, tuple(buckets))


# ---- codex.rate_limits event ------------------------------------------------------------------------------


def _event_window(raw: Any, now: float) -> QuotaWindow | None:
    if not isinstance(raw, dict):
        return None
    return _window(raw.get("used_percent"), raw.get("window_minutes"), raw.get("reset_at", raw.get("resets_at")),
                   raw.get("reset_after_seconds", raw.get("resets_in_seconds")), now)


def from_rate_limits_event(data: dict[str, Any], now: float) -> QuotaSnapshot:
    limits = data.get("rate_limits") if isinstance(data.get("rate_limits"), dict) else {}
    credits = data.get("credits") if isinstance(data.get("credits"), dict) else {}
    limit_id = data.get("metered_limit_name") or data.get("limit_name") or DEFAULT_LIMIT
    return QuotaSnapshot(
        primary=_event_window(limits.get("primary"), now),
        secondary=_event_window(limits.get("secondary"), now),
        credits=_credits(credits.get("has_credits"), credits.get("unlimited"), credits.get("balance")),
        plan=data.get("plan_type") if isinstance(data.get("plan_type"), str) else None,
        limit_id=str(limit_id),
    )


# ---- GET /wham/usage --------------------------------------------------------------------------------------


def _usage_window(raw: Any, now: float) -> QuotaWindow | None:
    if not isinstance(raw, dict):
        return None
    seconds = _float(raw.get("limit_window_seconds"))
    return _window(raw.get("used_percent"), seconds / 60 if seconds is not None else None, raw.get("reset_at"),
                   raw.get("reset_after_seconds"), now)


def from_usage(body: dict[str, Any], now: float) -> QuotaSnapshot:
    limit = body.get("rate_limit") if isinstance(body.get("rate_limit"), dict) else {}
    credits = body.get("credits") if isinstance(body.get("credits"), dict) else {}
    spend = body.get("spend_control") if isinstance(body.get("spend_control"), dict) else {}
    buckets = []
    for extra in body.get("additional_rate_limits") or []:
        if isinstance(extra, dict) and isinstance(extra.get("rate_limit"), dict):
            buckets.append(LimitBucket(str(extra.get("metered_feature") or extra.get("limit_name") or "unknown"),
                                       extra.get("limit_name"), _usage_window(extra["rate_limit"].get("primary_window"), now),
                                       _usage_window(extra["rate_limit"].get("secondary_window"), now)))
    reached = limit.get("limit_reached") is True or limit.get("allowed") is False or spend.get("reached") is True
    return QuotaSnapshot(
        primary=_usage_window(limit.get("primary_window"), now),
        secondary=_usage_window(limit.get("secondary_window"), now),
        credits=_credits(credits.get("has_credits"), credits.get("unlimited"), credits.get("balance")),
        plan=body.get("plan_type") if isinstance(body.get("plan_type"), str) else None,
        limit_reached=reached,
        buckets=tuple(buckets),
    )
