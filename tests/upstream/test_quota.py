"""The pool's rules on the one quota type, and how reports from headers, events and /wham/usage fold into
one cached snapshot."""

from codex_trio.upstream.quota import (
    Credits, LimitBucket, QuotaSnapshot, QuotaWindow, crossed_thresholds, from_headers, from_rate_limits_event,
    from_usage,
)

NOW = 1_800_000_000.0


def test_full_window_blocks_until_its_reset_only():
    q = QuotaSnapshot(QuotaWindow(100, 300, NOW + 100), QuotaWindow(40, 10080, NOW + 5000))
    assert q.blocks(NOW) and q.blocked_until(NOW) == NOW + 100
    assert not q.blocks(NOW + 100) and q.exhausted  # by the numbers still full; by the clock free again


def test_limit_reached_without_a_full_window_rechecks_at_the_first_reset():
    q = QuotaSnapshot(QuotaWindow(97, 300, NOW + 100), QuotaWindow(40, 10080, NOW + 5000), limit_reached=True)
    assert q.blocks(NOW) and q.blocked_until(NOW) == NOW + 100 and q.blocked_until() == NOW + 100
    assert not q.blocks(NOW + 101) and q.blocked_until(NOW + 101) is None


def test_no_reset_time_never_blocks_by_itself():
    assert not QuotaSnapshot(QuotaWindow(100), None, limit_reached=True).blocks(NOW)
    assert QuotaSnapshot(limit_reached=True).blocked_until(NOW) is None


def test_model_bucket_blocks_only_its_model():
    bucket = LimitBucket("codex_bengalfox", "GPT-5.3-Codex-Spark", QuotaWindow(100, 300, NOW + 60))
    q = QuotaSnapshot(QuotaWindow(5, 300, NOW + 60), buckets=(bucket,))
    assert q.blocks(NOW, "codex_bengalfox") and not q.blocks(NOW) and not q.blocks(NOW, "other")
    assert not q.blocks(NOW + 60, "codex_bengalfox")
    assert q.blocked_until(NOW) is None and q.blocked_until(NOW, "codex_bengalfox") == NOW + 60


def test_round_trip_and_thresholds():
    q = QuotaSnapshot(QuotaWindow(12.5, 300, NOW), QuotaWindow(3, 10080, None), Credits(True, False, "4.5"),
                      "pro", "codex", False, (LimitBucket("x", None, QuotaWindow(1)),))
    assert QuotaSnapshot.from_dict(q.to_dict()) == q
    assert QuotaSnapshot.from_dict(None) is None and QuotaSnapshot.from_dict({}) == QuotaSnapshot()
    assert crossed_thresholds(79, 91, (80, 90)) == [80, 90] and crossed_thresholds(80, 85, (80, 90)) == []


def test_headers_events_and_usage_feed_the_same_snapshot():
    """A cached snapshot from response headers, then a codex.rate_limits event for the main limit, one for a
    per-model limit, then /wham/usage: each report updates its part and keeps the rest."""
    cached = from_headers([
        ("x-codex-primary-used-percent", "42"), ("x-codex-primary-window-minutes", "300"),
        ("x-codex-primary-reset-at", str(int(NOW + 600))), ("x-codex-credits-has-credits", "true"),
        ("x-codex-bengalfox-primary-used-percent", "10"), ("x-codex-bengalfox-primary-window-minutes", "300"),
        ("x-codex-bengalfox-limit-name", "GPT-5.3-Codex-Spark"),
    ], NOW)
    event = from_rate_limits_event({"type": "codex.rate_limits", "plan_type": "plus", "metered_limit_name": "codex",
                                    "rate_limits": {"primary": {"used_percent": 81.0, "window_minutes": 300,
                                                                "reset_at": NOW + 500}}}, NOW)
    cached = cached.merged(event)
    assert cached.primary == QuotaWindow(81.0, 300, NOW + 500) and cached.plan == "plus"
    assert cached.credits.has_credits is True  # the event had none: kept
    spark = from_rate_limits_event({"type": "codex.rate_limits", "metered_limit_name": "codex_bengalfox",
                                    "rate_limits": {"primary": {"used_percent": 100.0, "window_minutes": 300,
                                                                "reset_at": NOW + 90}}}, NOW)
    cached = cached.merged(spark)
    assert cached.primary.used_percent == 81.0  # the main limit is untouched by another limit's event
    assert cached.bucket("codex_bengalfox") == LimitBucket("codex_bengalfox", "GPT-5.3-Codex-Spark",
                                                           QuotaWindow(100.0, 300, NOW + 90))
    assert cached.blocks(NOW, "codex_bengalfox") and not cached.blocks(NOW)
    usage = from_usage({"plan_type": "pro", "rate_limit": {"allowed": False, "limit_reached": True,
                        "primary_window": {"used_percent": 100, "limit_window_seconds": 18000, "reset_at": NOW + 70}}},
                       NOW)
    cached = cached.merged(usage)
    assert cached.limit_reached and cached.plan == "pro" and cached.blocked_until(NOW) == NOW + 70
    assert cached.bucket("codex_bengalfox") is not None  # /wham/usage listed no extra limits: kept
    assert QuotaSnapshot.from_dict(cached.to_dict()) == cached
