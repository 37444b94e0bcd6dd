"""The one quota type of the gateway, fed from the three places the backend reports it (spec/upstream.md
§5.5, §6.2, §6.3):

* rate-limit response headers on every `/codex/responses` reply and WebSocket upgrade (`x-codex-primary-*` …),
* `codex.rate_limits` WebSocket events,
* the `GET /wham/usage` body,

and the pure rules the account pool applies to it (when an account is blocked, until when, which thresholds
a change crosses), plus its store form (`to_dict` / `from_dict`). A newer report is folded into the cached
snapshot with `merged`, so every source updates the same view.

Everything here is pure: `now` (unix seconds) is passed in.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

DEFAULT_LIMIT = "codex"


@dataclass(frozen=True, slots=True)
class QuotaWindow:
    used_percent: float
    window_minutes: int | None = None
    resets_at: float | None = None  # unix seconds

    @property
    def exhausted(self) -> bool:
        return self.used_percent >= 100.0

    def to_dict(self) -> dict[str, Any]:
        return {"used_percent": self.used_percent, "window_minutes": self.window_minutes,
                "resets_at": self.resets_at}

    @classmethod
    def from_dict(cls, data: Any) -> QuotaWindow | None:
        if not isinstance(data, dict) or parse_float(data.get("used_percent")) is None:
            return None
        minutes, resets = parse_float(data.get("window_minutes")), parse_float(data.get("resets_at"))
        return cls(parse_float(data["used_percent"]) or 0.0, int(minutes) if minutes is not None else None, resets)


@dataclass(frozen=True, slots=True)
class Credits:
    has_credits: bool | None
    unlimited: bool | None
    balance: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"has_credits": self.has_credits, "unlimited": self.unlimited, "balance": self.balance}

    @classmethod
    def from_dict(cls, data: Any) -> Credits | None:
        return _credits(data.get("has_credits"), data.get("unlimited"), data.get("balance")) \
            if isinstance(data, dict) else None


def _windows(*windows: QuotaWindow | None) -> list[QuotaWindow]:
    return [w for w in windows if w is not None]


def _blocking(windows: list[QuotaWindow], limit_reached: bool) -> list[QuotaWindow]:
    """The windows that hold an account back. When the backend says `limit_reached` but no window shows
    100 %, the earliest-resetting window is taken, so the account is re-checked at the first reset instead
    of being held until the longest one (the stale-cooldown bug of peers.md §3 A.3)."""
    full = [w for w in windows if w.exhausted]
    if full or not limit_reached:
        return full
    timed = [w for w in windows if w.resets_at is not None]
    return [min(timed, key=lambda w: w.resets_at)] if timed else []


def _blocks(windows: list[QuotaWindow], limit_reached: bool, now: float) -> bool:
    """Blocked right now: a blocking window whose known reset is still ahead. Never past a reset, nor
    without one (the pool's cooldown covers that case)."""
    return any(w.resets_at is not None and w.resets_at > now for w in _blocking(windows, limit_reached))


@dataclass(frozen=True, slots=True)
class LimitBucket:
    """An extra metered limit (e.g. `codex_bengalfox`) that blocks only its own models."""

    limit_id: str
    display_name: str | None = None
    primary: QuotaWindow | None = None
    secondary: QuotaWindow | None = None

    def blocks(self, now: float) -> bool:
        return _blocks(_windows(self.primary, self.secondary), False, now)

    def to_dict(self) -> dict[str, Any]:
        return {"limit_id": self.limit_id, "display_name": self.display_name,
                "primary": self.primary.to_dict() if self.primary else None,
                "secondary": self.secondary.to_dict() if self.secondary else None}

    @classmethod
    def from_dict(cls, data: Any) -> LimitBucket | None:
        if not isinstance(data, dict) or not isinstance(data.get("limit_id"), str):
            return None
        name = data.get("display_name")
        return cls(data["limit_id"], name if isinstance(name, str) else None,
                   QuotaWindow.from_dict(data.get("primary")), QuotaWindow.from_dict(data.get("secondary")))


@dataclass(frozen=True, slots=True)
class QuotaSnapshot:
    primary: QuotaWindow | None = None  # the short window (5 h)
    secondary: QuotaWindow | None = None  # the long window (weekly)
    credits: Credits | None = None
    plan: str | None = None
    limit_id: str = DEFAULT_LIMIT  # which metered limit primary/secondary describe
    limit_reached: bool = False  # the backend said so explicitly (429 headers, /wham/usage)
    buckets: tuple[LimitBucket, ...] = ()

    def windows(self) -> list[QuotaWindow]:
        return _windows(self.primary, self.secondary)

    @property
    def exhausted(self) -> bool:
        """Over the limit by the numbers, whatever the time (see `blocks` for "right now")."""
        return self.limit_reached or any(w.exhausted for w in self.windows())

    def bucket(self, limit_id: str) -> LimitBucket | None:
        return next((b for b in self.buckets if b.limit_id == limit_id), None)

    def blocks(self, now: float, limit_id: str | None = None) -> bool:
        """Whether this snapshot keeps the account from serving now (a model with its own metered limit
        passes `limit_id`, whose bucket blocks it too)."""
        bucket = self.bucket(limit_id) if limit_id is not None else None
        if bucket is not None and bucket.blocks(now):
            return True
        return _blocks(self.windows(), self.limit_reached, now)

    def blocked_until(self, now: float | None = None, limit_id: str | None = None) -> float | None:
        """When the blocking windows reset (the time to re-verify), if known; with `now`, only resets still
        ahead count; with `limit_id`, that bucket's blocking windows count too."""
        blocking = _blocking(self.windows(), self.limit_reached)
        bucket = self.bucket(limit_id) if limit_id is not None else None
        if bucket is not None:
            blocking += _blocking(_windows(bucket.primary, bucket.secondary), False)
        times = [w.resets_at for w in blocking if w.resets_at is not None and (now is None or w.resets_at > now)]
        return max(times) if times else None

    def earliest_reset(self, now: float) -> float | None:
        times = [w.resets_at for w in self.windows() if w.resets_at is not None and w.resets_at > now]
        return min(times) if times else None

    def max_used_percent(self) -> float:
        return max((w.used_percent for w in self.windows()), default=0.0)

    def merged(self, update: QuotaSnapshot) -> QuotaSnapshot:
        """This cached snapshot with a newer report folded in. A report about the main limit replaces its
        windows and verdict; a `codex.rate_limits` event about another metered limit updates only that
        bucket. Buckets are replaced by id; credits and plan are kept when the report lacks them."""
        buckets = {b.limit_id: b for b in self.buckets}
        for bucket in update.buckets:
            buckets[bucket.limit_id] = bucket
        credits, plan = update.credits or self.credits, update.plan or self.plan
        if update.limit_id != self.limit_id:
            old = buckets.get(update.limit_id)
            buckets[update.limit_id] = LimitBucket(update.limit_id, old.display_name if old else None,
                                                   update.primary, update.secondary)
            return replace(self, credits=credits, plan=plan, buckets=tuple(buckets.values()))
        return replace(update, credits=credits, plan=plan, buckets=tuple(buckets.values()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "limit_id": self.limit_id,
            "primary": self.primary.to_dict() if self.primary else None,
            "secondary": self.secondary.to_dict() if self.secondary else None,
            "limit_reached": self.limit_reached,
            "credits": self.credits.to_dict() if self.credits else None,
            "plan": self.plan,
            "buckets": [b.to_dict() for b in self.buckets],
        }

    @classmethod
    def from_dict(cls, data: Any) -> QuotaSnapshot | None:
        if not isinstance(data, dict):
            return None
        buckets = data.get("buckets") if isinstance(data.get("buckets"), list) else []
        plan = data.get("plan")
        return cls(
            primary=QuotaWindow.from_dict(data.get("primary")),
            secondary=QuotaWindow.from_dict(data.get("secondary")),
            credits=Credits.from_dict(data.get("credits")),
            plan=plan if isinstance(plan, str) else None,
            limit_id=str(data.get("limit_id") or DEFAULT_LIMIT),
            limit_reached=data.get("limit_reached") is True,
            buckets=tuple(b for raw in buckets if (b := LimitBucket.from_dict(raw)) is not None),
        )


def crossed_thresholds(before: float, after: float, thresholds: Iterable[float]) -> list[float]:
    """Warning thresholds (e.g. 80, 90) that `after` reaches and `before` did not."""
    return [t for t in thresholds if before < t <= after]


# ---- small value parsers ----------------------------------------------------------------------------------


def parse_float(value: Any) -> float | None:
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
    used_f, minutes_f = parse_float(used), parse_float(minutes)
    resets_at = parse_float(reset_at)
    if resets_at is None:
        after = parse_float(reset_after)
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
    seconds = parse_float(raw.get("limit_window_seconds"))
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


# ---- forwarding to clients (translation.md §7.12) -----------------------------------------------------------

_FORWARDED = re.compile(r"^x-[a-z0-9-]+-(primary|secondary)-[a-z-]+$|^x-[a-z0-9-]+-limit-name$|^x-codex-credits-"
                        r"|^x-codex-active-limit$|^x-codex-rate-limit-reached-type$")


def rate_limit_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The rate-limit headers of an upstream answer that clients get too (`x-codex-primary-*`,
    `x-codex-secondary-*`, `x-codex-credits-*`, `x-codex-active-limit`, `x-codex-rate-limit-reached-type` and the
    other metered limits' families), lower-cased, in the upstream's order. Never routing state such as
    `x-codex-turn-state`."""
    # Names interned: a kept socket holds its handshake's list, and the names are the same for every socket.
    return [(sys.intern(name.lower()), value) for name, value in headers if _FORWARDED.match(name.lower())]


def _window_headers(prefix: str, which: str, window: QuotaWindow | None, now: float) -> list[tuple[str, str]]:
    if window is None:
        return []
    base = f"{prefix}-{which}"
    out = [(f"{base}-used-percent", str(float(window.used_percent)))]
    if window.window_minutes is not None:
        out.append((f"{base}-window-minutes", str(window.window_minutes)))
    if window.resets_at is not None:
        out.append((f"{base}-reset-at", str(int(window.resets_at))))
        out.append((f"{base}-reset-after-seconds", str(max(0, int(window.resets_at - now)))))
    return out


def to_headers(snapshot: QuotaSnapshot, now: float) -> list[tuple[str, str]]:
    """A snapshot as the upstream's rate-limit headers (for a turn that got its quota from a
    `codex.rate_limits` event rather than from an HTTP answer)."""
    prefix = "x-" + snapshot.limit_id.replace("_", "-")
    out = _window_headers(prefix, "primary", snapshot.primary, now) + \
        _window_headers(prefix, "secondary", snapshot.secondary, now)
    for bucket in snapshot.buckets:
        bucket_prefix = "x-" + bucket.limit_id.replace("_", "-")
        out += _window_headers(bucket_prefix, "primary", bucket.primary, now)
        out += _window_headers(bucket_prefix, "secondary", bucket.secondary, now)
        if bucket.display_name:
            out.append((f"{bucket_prefix}-limit-name", bucket.display_name))
    if snapshot.credits is not None:
        credits = snapshot.credits
        for name, value in (("has-credits", credits.has_credits), ("unlimited", credits.unlimited)):
            if value is not None:
                out.append((f"x-codex-credits-{name}", "true" if value else "false"))
        if credits.balance is not None:
            out.append(("x-codex-credits-balance", credits.balance))
    return out
