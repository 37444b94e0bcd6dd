"""The rate-limit headers clients get (translation.md §7.12): the upstream's own, filtered; or, for a turn on
a reused WebSocket, the cached quota rendered in the same form."""

from __future__ import annotations

from codex_trio.sim.quota import Quota
from codex_trio.upstream.quota import from_headers, rate_limit_headers, to_headers

NOW = 1_800_000_000.0


def test_only_rate_limit_headers_are_forwarded_never_routing_state():
    upstream = [("Content-Type", "text/event-stream"), ("X-Codex-Primary-Used-Percent", "12.5"),
                ("x-codex-turn-state", "ts_secret"), ("x-codex-secondary-window-minutes", "10080"),
                ("x-codex-credits-balance", "0"), ("x-codex-active-limit", "codex"),
                ("x-codex-rate-limit-reached-type", "primary"), ("x-codex-bengalfox-limit-name", "GPT-6-Luna"),
                ("x-codex-bengalfox-primary-reset-at", "1800000100"), ("x-request-id", "abc"), ("set-cookie", "a=b")]
    assert rate_limit_headers(upstream) == [
        ("x-codex-primary-used-percent", "12.5"), ("x-codex-secondary-window-minutes", "10080"),
        ("x-codex-credits-balance", "0"), ("x-codex-active-limit", "codex"),
        ("x-codex-rate-limit-reached-type", "primary"), ("x-codex-bengalfox-limit-name", "GPT-6-Luna"),
        ("x-codex-bengalfox-primary-reset-at", "1800000100")]


def test_a_snapshot_renders_as_the_backends_headers():
    quota = Quota.for_plan("plus")
    quota.record("gpt-5.5", 40_000, NOW - 300)
    backend = quota.headers(NOW)  # what the simulated backend sends, in its order
    snapshot = from_headers(backend, NOW)
    assert snapshot is not None
    rendered = dict(to_headers(snapshot, NOW))
    assert rendered == dict(backend) and rendered["x-codex-primary-used-percent"] == "4.0"
    assert from_headers(list(rendered.items()), NOW) == snapshot
