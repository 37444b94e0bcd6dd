"""Classify upstream failures into what the gateway should do next (spec/upstream.md §6, translation.md §1.5, §7.10).

Input: an HTTP status + body + headers, or a stream `error` / `response.failed` event (SSE, or a WebSocket
frame, possibly wrapping an HTTP error with `status_code` and `headers`). Output: an `UpstreamFailure` that
says which action applies, what state the account should get, and until when it should rest. Pure: `now`
(unix seconds) is an argument.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from codex_trio.errors import ErrorKind, GatewayError, status_to_kind
from codex_trio.upstream.events import CodexEvent, error_fields
from codex_trio.upstream.quota import QuotaSnapshot, from_headers, parse_float

DEFAULT_RATE_LIMIT_COOLDOWN = 60.0  # seconds, when a 429 says nothing about its reset


class Action(StrEnum):
    RETRY = "retry"  # transient: same account again after a backoff (`rotate_after_retries`: then another)
    REFRESH = "refresh"  # first 401: refresh the access token, then retry on the same account
    ROTATE = "rotate"  # account resting until `cooldown_until`: try another account
    ACCOUNT_DEAD = "account_dead"  # banned / deactivated / 401 after a refresh / plan without Codex
    CLOUDFLARE = "cloudflare"  # edge block of this account's traffic: rest it (pool escalates), try another
    MODEL_UNSUPPORTED = "model_unsupported"  # this account's plan lacks the model: try one other account
    REPLAY = "replay"  # lost chain: drop previous_response_id, resend the full history, same account
    RELAY = "relay"  # the request itself is wrong: tell the client


@dataclass(frozen=True, slots=True)
class UpstreamFailure:
    action: Action
    status: int  # upstream HTTP status (or the one a stream error code stands for)
    code: str
    message: str
    account_state: str | None = None  # rate_limited, quota_exhausted, expired, deactivated, banned, ...
    cooldown_until: float | None = None  # unix seconds
    retry_after: float | None = None  # seconds, from retry-after / "try again in"
    rotate_after_retries: bool = False  # RETRY: move to another account once same-account retries are spent
    quota: QuotaSnapshot | None = None  # from the response headers, for the pool

    def to_gateway_error(self, now: float) -> GatewayError:
        """The error to show the client when no retry or rotation is left."""
        retry_after = self.retry_after
        if self.cooldown_until is not None:
            retry_after = max(1.0, self.cooldown_until - now)
        if self.action is Action.CLOUDFLARE:
            return GatewayError(502, "Upstream blocked the request (Cloudflare challenge or path block); "
                                "try again later or use another egress proxy.", ErrorKind.UPSTREAM, code=self.code)
        if self.action is Action.ROTATE:
            if self.account_state == "quota_exhausted":
                return GatewayError(429, self.message, ErrorKind.RATE_LIMIT, code=self.code or "insufficient_quota",
                                    retry_after=retry_after)
            return GatewayError(429, self.message, ErrorKind.RATE_LIMIT, code=self.code or "rate_limit_exceeded",
                                retry_after=retry_after)
        if self.action in (Action.REFRESH, Action.ACCOUNT_DEAD):
            if self.account_state in ("banned", "no_codex_plan"):
                return GatewayError(403, self.message, ErrorKind.PERMISSION, code=self.code)
            return GatewayError(401, f"The ChatGPT login was rejected ({self.message}); sign in to the account again.",
                                ErrorKind.AUTHENTICATION, code=self.code)
        status = self.status if 400 <= self.status <= 599 else 502
        return GatewayError(status, self.message, status_to_kind(status), code=self.code or None, retry_after=retry_after)


# ---- parsing helpers ------------------------------------------------------------------------------------

_TRY_AGAIN = re.compile(r"try again in\s*([0-9.]+)\s*(ms|milliseconds?|s|sec|seconds?)\b", re.IGNORECASE)
_MODEL_UNSUPPORTED = re.compile(r"model.*(not supported|not available|does not exist|unsupported)|"
                                r"(unsupported|unknown|invalid) model", re.IGNORECASE)
_CHAIN_LOST = ("previous_response_not_found", "no tool output found for function call")


def _header_map(headers: Iterable[tuple[str, str]] | dict[str, Any] | None) -> dict[str, str]:
    if not headers:
        return {}
    items = headers.items() if isinstance(headers, dict) else headers
    return {str(k).lower(): str(v) for k, v in items}


def _error_record(body: bytes) -> tuple[dict[str, Any], str]:
    """(error record, text) of a JSON or non-JSON error body."""
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError:
        return {}, text
    if not isinstance(parsed, dict):
        return {}, text
    record = parsed.get("error") if isinstance(parsed.get("error"), dict) else parsed
    if "detail" in parsed and "detail" not in record:
        record = {**record, "detail": parsed["detail"]}
    return record, text


def _message(record: dict[str, Any], text: str) -> str:
    for key in ("message", "detail", "error_description"):
        value = record.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, dict) and isinstance(value.get("message"), str):
            return value["message"]
    return text[:500] or "upstream error without a body"


_GENERIC_TYPES = ("error", "response.failed", "invalid_request_error")


def _code(record: dict[str, Any]) -> str:
    """`code`, else a specific `type` (429 bodies say `"type":"usage_limit_reached"` without a code)."""
    for key in ("code", "type"):
        value = record.get(key)
        if isinstance(value, str) and value and value not in _GENERIC_TYPES:
            return value
    return ""


    return None


def _retry_after(h: dict[str, str], message: str) -> float | None:
    value = parse_float(h.get("retry-after"))
    if value is not None:
        return value
    match = _TRY_AGAIN.search(message)
    if match:
        amount = float(match.group(1))
        return amount / 1000 if match.group(2).lower().startswith("m") else amount
    return None


def _is_cloudflare_challenge(h: dict[str, str], text: str) -> bool:
    if "cf-mitigated" in h:
        return True
    lowered = text[:4096].lower()
    return ("text/html" in h.get("content-type", "") or lowered.startswith("<")) and (
        "just a moment" in lowered or "attention required" in lowered or "cloudflare" in lowered
        or "cf-chl" in lowered)


def _rate_limit_until(record: dict[str, Any], h: dict[str, str], quota: QuotaSnapshot | None, now: float,
                      retry_after: float | None) -> float:
    resets_at = parse_float(record.get("resets_at"))
    if resets_at is not None:
        return resets_at
    resets_in = parse_float(record.get("resets_in_seconds"))
    if resets_in is not None:
        return now + resets_in
    if retry_after is not None:
        return now + retry_after
    blocked = quota.blocked_until() if quota else None
    return blocked if blocked is not None else now + DEFAULT_RATE_LIMIT_COOLDOWN


# ---- classification -------------------------------------------------------------------------------------


def classify_http(status: int, body: bytes, headers: Iterable[tuple[str, str]] | dict[str, Any] | None, *,
                  now: float, after_refresh: bool = False) -> UpstreamFailure:
    """A non-2xx answer to a backend call (or a WebSocket upgrade)."""
    record, text = _error_record(body)
    return _classify(status, record, text, _header_map(headers), now=now, after_refresh=after_refresh)


def classify_event(event: CodexEvent, *, now: float, after_refresh: bool = False) -> UpstreamFailure:
    """A stream `error` / `response.failed` event. WebSocket frames that wrap an HTTP error carry its
    status and headers; bare stream errors get the status their code stands for."""
    data = event.data
    h = _header_map(data.get("headers") if isinstance(data.get("headers"), dict) else None)
    code, message = error_fields(data)
    record = data.get("error") if isinstance(data.get("error"), dict) else {}
    if not record and isinstance(data.get("response"), dict) and isinstance(data["response"].get("error"), dict):
        record = data["response"]["error"]
    record = {**record, "code": code, "message": message}
    status = data.get("status_code") if isinstance(data.get("status_code"), int) else status_for_code(code)
    return _classify(status, record, message, h, now=now, after_refresh=after_refresh)


def status_for_code(code: str) -> int:
    """The HTTP status a stream error code stands for (codex-proxy's table, translation.md §1.5)."""
    exact = {
        "usage_limit_reached": 429, "rate_limit_exceeded": 429, "rate_limit_reached": 429, "usage_not_included": 429,
        "quota_exhausted": 402, "payment_required": 402, "insufficient_quota": 402,
        "unauthorized": 401, "token_invalid": 401, "token_expired": 401, "account_deactivated": 401,
        "invalid_api_key": 401, "forbidden": 403, "account_banned": 403, "banned": 403,
        "previous_response_not_found": 400, "context_length_exceeded": 400, "invalid_prompt": 400,
        "cyber_policy": 400, "server_is_overloaded": 503, "websocket_connection_limit_reached": 503,
        "server_error": 500, "stream_closed_early": 502,
    }
    if code in exact:
        return exact[code]
    for part, status in (("invalid_request", 400), ("not_found", 400), ("rate_limit", 429), ("usage_limit", 429),
                         ("unauthorized", 401), ("invalid_api_key", 401), ("forbidden", 403), ("banned", 403),
                         ("payment", 402), ("quota", 402)):
        if part in code:
            return status
    return 502


def _classify(status: int, record: dict[str, Any], text: str, h: dict[str, str], *, now: float,
              after_refresh: bool) -> UpstreamFailure:
    code = _code(record)
    message = _message(record, text)
    quota = from_headers(h.items(), now)
    retry_after = _retry_after(h, message)
    lowered = f"{code} {message}".lower()

    def failure(action: Action, state: str | None = None, **extra: Any) -> UpstreamFailure:
        return UpstreamFailure(action, status, code, message, state, quota=quota, retry_after=retry_after, **extra)

    if any(marker in lowered for marker in _CHAIN_LOST):
        return failure(Action.REPLAY)
    if status == 401:
        if "deactivated" in lowered:
            return failure(Action.ACCOUNT_DEAD, "deactivated")
        return failure(Action.ACCOUNT_DEAD, "expired") if after_refresh else failure(Action.REFRESH)
    if status == 402:
        return failure(Action.ROTATE, "quota_exhausted",
                       cooldown_until=_rate_limit_until(record, h, quota, now, retry_after)
                       if record.get("resets_at") or record.get("resets_in_seconds") else None)
    if status == 403:
        if _is_cloudflare_challenge(h, text):
            return failure(Action.CLOUDFLARE, "cloudflare")
        if "region" in lowered or "country" in lowered:
            return failure(Action.CLOUDFLARE, "region_blocked")
        return failure(Action.ACCOUNT_DEAD, "deactivated" if "deactivated" in lowered else "banned")
    if status == 404 and not text:
        return failure(Action.CLOUDFLARE, "path_blocked")
    if status == 429:
        if code == "usage_not_included":
            return failure(Action.ACCOUNT_DEAD, "no_codex_plan")
        state = "quota_exhausted" if code in ("insufficient_quota", "quota_exhausted") else "rate_limited"
        return failure(Action.ROTATE, state, cooldown_until=_rate_limit_until(record, h, quota, now, retry_after))
    if 400 <= status < 500 and _MODEL_UNSUPPORTED.search(message):
        return failure(Action.MODEL_UNSUPPORTED)
    if code == "sse_event_too_large":
        return failure(Action.RELAY)
    if code == "websocket_connection_limit_reached" or status in (408, 502, 504) or status >= 500:
        return failure(Action.RETRY, rotate_after_retries=code != "websocket_connection_limit_reached")
    return failure(Action.RELAY)
