"""Times in query strings and CLI options: unix seconds, ISO 8601, or a span back from now ("7d", "24h")."""

from __future__ import annotations

import datetime as dt
import re

SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
SPAN_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_span(text: str) -> float | None:
    match = SPAN.match(text)
    return float(match.group(1)) * SPAN_SECONDS[match.group(2)] if match else None


def parse_time(text: str, now: float) -> float:
    """Raises ValueError with a message that says what is accepted."""
    span = parse_span(text)
    if span is not None:
        return now - span
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time: use unix seconds, ISO 8601 (2026-12-01T00:00:00Z) or a span "
                         "back from now (30m, 24h, 7d)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()
