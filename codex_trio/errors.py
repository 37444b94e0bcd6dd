"""The one error type that crosses layers.

Everything a user can cause or the upstream can report becomes a `GatewayError` with an HTTP status and a
protocol-neutral `kind`. Each protocol adapter's `encode_error` turns it into that protocol's own envelope,
so the middle of the gateway never needs to know which client is being served.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ErrorKind(StrEnum):
    INVALID_REQUEST = "invalid_request"  # 400: bad JSON, wrong types, unsupported option
    AUTHENTICATION = "authentication"  # 401: missing or wrong gateway key, or no usable login
    PERMISSION = "permission"  # 403: key not allowed to use this model, account banned
    NOT_FOUND = "not_found"  # 404: unknown model or route
    REQUEST_TOO_LARGE = "request_too_large"  # 413
    RATE_LIMIT = "rate_limit"  # 429: every eligible account is limited
    OVERLOADED = "overloaded"  # 503/529: no account available right now
    UPSTREAM = "upstream"  # 502/504 or a status the upstream returned
    TIMEOUT = "timeout"  # 504
    SERVER = "server"  # 500: a bug of ours; message never carries a traceback


@dataclass(eq=False)
class GatewayError(Exception):
    status: int
    message: str
    kind: ErrorKind = ErrorKind.INVALID_REQUEST
    code: str | None = None  # machine-readable detail, e.g. "usage_limit_reached", "model_not_found"
    param: str | None = None  # the request field at fault, when there is one
    retry_after: float | None = None  # seconds, for 429/503
    headers: list[tuple[str, str]] = field(default_factory=list)  # extra response headers

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def invalid_request(message: str, *, param: str | None = None, code: str | None = None) -> GatewayError:
    return GatewayError(400, message, ErrorKind.INVALID_REQUEST, code=code, param=param)


def not_found(message: str, *, code: str | None = "model_not_found") -> GatewayError:
    return GatewayError(404, message, ErrorKind.NOT_FOUND, code=code)


def status_to_kind(status: int) -> ErrorKind:
    """Protocol-neutral kind for an HTTP status we must relay (e.g. an upstream 4xx after rotation)."""
    if status == 401:
        return ErrorKind.AUTHENTICATION
    if status == 403:
        return ErrorKind.PERMISSION
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status == 413:
        return ErrorKind.REQUEST_TOO_LARGE
    if status == 429:
        return ErrorKind.RATE_LIMIT
    if status in (503, 529):
        return ErrorKind.OVERLOADED
    if status == 504:
        return ErrorKind.TIMEOUT
    if 400 <= status < 500:
        return ErrorKind.INVALID_REQUEST
    return ErrorKind.UPSTREAM
