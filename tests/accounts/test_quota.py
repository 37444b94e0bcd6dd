from codex_trio.accounts.quota import QuotaSnapshot, QuotaWindow, crossed_thresholds

NOW = 1_800_000_000.0


def test_full_window_blocks_until_its_reset_only():
    q = QuotaSnapshot(QuotaWindow(100, 300, NOW + 100), QuotaWindow(40, 10080, NOW + 5000))
    assert q.exhausted(NOW) and q.blocked_until(NOW) == NOW + 100
    assert not q.exhausted(NOW + 100)


def test_limit_reached_without_a_full_window_rechecks_at_the_first_reset():
    q = QuotaSnapshot(QuotaWindow(97, 300, NOW + 100), QuotaWindow(40, 10080, NOW + 5000), limit_reached=True)
    assert q.exhausted(NOW) and q.blocked_until(NOW) == NOW + 100
    assert not q.exhausted(NOW + 101)


def test_no_reset_time_never_blocks_by_itself():
    assert not QuotaSnapshot(QuotaWindow(100), None, True).exhausted(NOW)
    assert QuotaSnapshot(limit_reached=True).blocked_until(NOW) is None


def test_model_bucket_blocks_only_its_model():
    bucket = QuotaSnapshot(QuotaWindow(100, 300, NOW + 60))
    q = QuotaSnapshot(QuotaWindow(5, 300, NOW + 60), model_limits={"codex_bengalfox": bucket})
    assert q.exhausted(NOW, "codex_bengalfox") and not q.exhausted(NOW) and not q.exhausted(NOW, "other")


def test_round_trip_and_thresholds():
    q = QuotaSnapshot(QuotaWindow(12.5, 300, NOW), QuotaWindow(3, 10080, None), False,
                      {"x": QuotaSnapshot(QuotaWindow(1))})
    assert QuotaSnapshot.from_dict(q.to_dict()) == q
    assert QuotaSnapshot.from_dict(None) is None
    assert crossed_thresholds(79, 91, (80, 90)) == [80, 90] and crossed_thresholds(80, 85, (80, 90)) == []
