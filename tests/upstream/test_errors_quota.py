"""Error classification and quota parsing."""

from __future__ import annotations

import json

import orjson
import pytest

from codex_trio.errors import ErrorKind
from codex_trio.upstream.errors import Action, classify_event, classify_http, status_for_code
from codex_trio.upstream.events import CodexEvent
from codex_trio.upstream.quota import from_headers, from_rate_limits_event, from_usage
from codex_trio.upstream.sse import SseDecoder
from tests.conftest import FIXTURES

NOW = 1_800_000_000.0
REPLIES = FIXTURES / "chatgpt-mode/stand-in-replies"


def j(value) -> bytes:
    return orjson.dumps(value)


def test_usage_limit_429_rotates_until_resets_at() -> None:
    body = j({"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                        "plan_type": "plus", "resets_at": NOW + 3600, "resets_in_seconds": 10}})
    f = classify_http(429, body, [("x-codex-primary-used-percent", "100.0")], now=NOW)
    assert (f.action, f.account_state, f.code) == (Action.ROTATE, "rate_limited", "usage_limit_reached")
    assert f.cooldown_until == NOW + 3600
    err = f.to_gateway_error(NOW)
    assert err.status == 429 and err.kind is ErrorKind.RATE_LIMIT and err.retry_after == 3600


def test_429_cooldown_sources_in_order() -> None:
    in_seconds = classify_http(429, j({"error": {"type": "usage_limit_reached", "resets_in_seconds": 120}}), [], now=NOW)
    assert in_seconds.cooldown_until == NOW + 120
    retry_after = classify_http(429, j({"error": {"code": "rate_limit_exceeded"}}), [("Retry-After", "7")], now=NOW)
    assert retry_after.cooldown_until == NOW + 7 and retry_after.retry_after == 7
    from_quota = classify_http(429, b"", [("x-codex-primary-used-percent", "100"), ("x-codex-primary-window-minutes", "300"),
                                          ("x-codex-primary-reset-at", str(int(NOW + 500)))], now=NOW)
    assert from_quota.cooldown_until == NOW + 500 and from_quota.quota.primary.exhausted
    default = classify_http(429, b"{}", [], now=NOW)
    assert default.cooldown_until == NOW + 60


def test_usage_not_included_is_a_dead_account() -> None:
    f = classify_http(429, j({"error": {"type": "usage_not_included", "message": "no codex"}}), [], now=NOW)
    assert (f.action, f.account_state) == (Action.ACCOUNT_DEAD, "no_codex_plan")
    assert f.to_gateway_error(NOW).status == 403


def test_401_refresh_then_dead_and_deactivated() -> None:
    body = j({"error": {"message": "token expired", "code": "token_expired"}})
    assert classify_http(401, body, [], now=NOW).action is Action.REFRESH
    dead = classify_http(401, body, [], now=NOW, after_refresh=True)
    assert (dead.action, dead.account_state) == (Action.ACCOUNT_DEAD, "expired")
    assert dead.to_gateway_error(NOW).status == 401
    deactivated = classify_http(401, j({"error": {"code": "account_deactivated", "message": "deactivated"}}), [], now=NOW)
    assert (deactivated.action, deactivated.account_state) == (Action.ACCOUNT_DEAD, "deactivated")


def test_403_cloudflare_vs_ban() -> None:
    html = b"<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>"
    cf = classify_http(403, html, [("content-type", "text/html; charset=UTF-8")], now=NOW)
    assert (cf.action, cf.account_state) == (Action.CLOUDFLARE, "cloudflare")
    assert cf.to_gateway_error(NOW).status == 502
    assert classify_http(403, b"", [("cf-mitigated", "challenge")], now=NOW).action is Action.CLOUDFLARE
    ban = classify_http(403, j({"detail": "Your account has been banned"}), [], now=NOW)
    assert (ban.action, ban.account_state) == (Action.ACCOUNT_DEAD, "banned")
    assert ban.to_gateway_error(NOW).kind is ErrorKind.PERMISSION


def test_404_empty_is_a_path_block_and_model_errors() -> None:
    assert classify_http(404, b"", [], now=NOW).account_state == "path_blocked"
    model = classify_http(400, j({"detail": "The 'gpt-9' model is not supported when using Codex with a ChatGPT account."}),
                          [], now=NOW)
    assert model.action is Action.MODEL_UNSUPPORTED
    other_404 = classify_http(404, j({"detail": "Not Found"}), [], now=NOW)
    assert other_404.action is Action.RELAY and other_404.to_gateway_error(NOW).status == 404


def test_client_errors_are_relayed_with_their_message() -> None:
    f = classify_http(400, j({"detail": "Unsupported parameter: max_output_tokens"}), [], now=NOW)
    assert f.action is Action.RELAY
    err = f.to_gateway_error(NOW)
    assert err.status == 400 and err.message == "Unsupported parameter: max_output_tokens"
    assert err.kind is ErrorKind.INVALID_REQUEST


def test_chain_lost_means_replay() -> None:
    for body in (j({"error": {"code": "previous_response_not_found", "message": "Previous response with id 'resp_1' not found."}}),
                 j({"detail": "No tool output found for function call call_9."})):
        assert classify_http(400, body, [], now=NOW).action is Action.REPLAY


def test_5xx_retry_same_then_rotate() -> None:
    f = classify_http(503, j({"error": {"code": "server_is_overloaded", "message": "busy"}}), [("retry-after", "2")], now=NOW)
    assert (f.action, f.rotate_after_retries, f.retry_after) == (Action.RETRY, True, 2)
    assert f.to_gateway_error(NOW).kind is ErrorKind.OVERLOADED
    assert classify_http(520, b"<html>cloudflare</html>", [], now=NOW).action is Action.RETRY


def test_402_quota() -> None:
    f = classify_http(402, j({"error": {"code": "payment_required", "message": "pay"}}), [], now=NOW)
    assert (f.action, f.account_state, f.cooldown_until) == (Action.ROTATE, "quota_exhausted", None)


def test_stream_error_events() -> None:
    wrapped = CodexEvent("error", {"type": "error", "status_code": 429,
                                   "error": {"type": "usage_limit_reached", "message": "limit", "resets_at": NOW + 99},
                                   "headers": {"x-codex-primary-used-percent": "100.0", "x-codex-primary-window-minutes": 15}})
    f = classify_event(wrapped, now=NOW)
    assert (f.action, f.status, f.cooldown_until) == (Action.ROTATE, 429, NOW + 99)
    assert f.quota.primary.window_minutes == 15
    failed = CodexEvent("response.failed", {"type": "response.failed", "response": {
        "id": "r", "status": "failed", "error": {"code": "rate_limit_exceeded", "message": "Rate limit reached. Please try again in 1.5s."}}})
    f = classify_event(failed, now=NOW)
    assert f.action is Action.ROTATE and f.retry_after == 1.5 and f.cooldown_until == NOW + 1.5
    ctx = classify_event(CodexEvent("response.failed", {"type": "response.failed", "response": {
        "error": {"code": "context_length_exceeded", "message": "too long"}}}), now=NOW)
    assert (ctx.action, ctx.status) == (Action.RELAY, 400)
    chain = classify_event(CodexEvent("error", {"type": "error", "error": {"code": "previous_response_not_found",
                                                                        "message": "gone"}}), now=NOW)
    assert chain.action is Action.REPLAY
    limit = classify_event(CodexEvent("error", {"type": "error", "error": {"code": "websocket_connection_limit_reached",
                                                                        "message": "60 minutes"}}), now=NOW)
    assert limit.action is Action.RETRY and not limit.rotate_after_retries
    overloaded = classify_event(CodexEvent("error", {"type": "error", "error": {"code": "server_is_overloaded"}}), now=NOW)
    assert overloaded.action is Action.RETRY and overloaded.status == 503


def test_non_sse_body_through_the_decoder_classifies() -> None:
    decoder = SseDecoder()
    decoder.feed(b'{"detail":"Instructions are required"}')
    (event,) = decoder.close()
    f = classify_event(event, now=NOW)
    assert f.code == "non_sse_response" and f.message == "Instructions are required"


@pytest.mark.parametrize("code,status", [("usage_limit_reached", 429), ("quota_exhausted", 402), ("token_expired", 401),
                                         ("account_banned", 403), ("server_error", 500), ("weird_invalid_request", 400),
                                         ("something_else", 502)])
def test_status_for_code(code: str, status: int) -> None:
    assert status_for_code(code) == status


# ---- quota ------------------------------------------------------------------------------------------------


def test_quota_from_headers() -> None:
    headers = [
        ("x-codex-primary-used-percent", "42.5"), ("x-codex-primary-window-minutes", "300"),
        ("x-codex-primary-reset-at", "1800003600"), ("x-codex-secondary-used-percent", "18"),
        ("x-codex-secondary-window-minutes", "10080"), ("x-codex-secondary-reset-after-seconds", "600"),
        ("x-codex-credits-has-credits", "False"), ("x-codex-credits-unlimited", "0"), ("x-codex-credits-balance", "0"),
        ("x-codex-bengalfox-primary-used-percent", "100"), ("x-codex-bengalfox-primary-window-minutes", "300"),
        ("x-codex-bengalfox-limit-name", "GPT-5.3-Codex-Spark"), ("content-type", "text/event-stream"),
    ]
    q = from_headers(headers, NOW)
    assert q.primary.used_percent == 42.5 and q.primary.window_minutes == 300 and q.primary.resets_at == 1800003600
    assert q.secondary.resets_at == NOW + 600
    assert q.credits.has_credits is False and q.credits.unlimited is False and q.credits.balance == "0"
    (bucket,) = q.buckets
    assert bucket.limit_id == "codex_bengalfox" and bucket.display_name == "GPT-5.3-Codex-Spark"
    assert bucket.primary.exhausted and not q.exhausted
    assert from_headers([("content-type", "x")], NOW) is None
    assert from_headers([("x-codex-primary-used-percent", "0")], NOW) is None  # "no data"


def test_quota_from_rate_limits_event() -> None:
    event = {"type": "codex.rate_limits", "plan_type": "plus",
             "rate_limits": {"primary": {"used_percent": 100.0, "window_minutes": 300, "reset_at": NOW + 10},
                             "secondary": {"used_percent": 18.0, "window_minutes": 10080, "reset_at": NOW + 99}},
             "credits": {"has_credits": False, "unlimited": False, "balance": "0"}, "metered_limit_name": "codex"}
    q = from_rate_limits_event(event, NOW)
    assert q.plan == "plus" and q.limit_id == "codex" and q.exhausted and q.blocked_until() == NOW + 10
    assert from_rate_limits_event({"type": "codex.rate_limits", "limit_name": "codex_bengalfox"}, NOW).limit_id == "codex_bengalfox"


def test_quota_from_usage_reply() -> None:
    body = json.loads((REPLIES / "wham-usage.response.json").read_text())
    q = from_usage(body, NOW)
    assert q.plan == body["plan_type"]
    pw = body["rate_limit"]["primary_window"]
    assert q.primary.used_percent == pw["used_percent"]
    assert q.primary.window_minutes == pw["limit_window_seconds"] // 60
    assert q.primary.resets_at == pw["reset_at"]
    blocked = from_usage({"rate_limit": {"allowed": False, "limit_reached": True,
                                         "primary_window": {"used_percent": 100, "limit_window_seconds": 18000,
                                                            "reset_after_seconds": 50}}}, NOW)
    assert blocked.exhausted and blocked.blocked_until() == NOW + 50
