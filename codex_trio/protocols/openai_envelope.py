"""OpenAI's error envelope, shared by Chat Completions, Responses and the Images endpoints. Sans-IO."""

from __future__ import annotations

from typing import Any

from codex_trio.errors import ErrorKind, GatewayError

_ERROR_TYPES = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.REQUEST_TOO_LARGE: "invalid_request_error",
    ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.OVERLOADED: "server_error",
    ErrorKind.UPSTREAM: "server_error",
    ErrorKind.TIMEOUT: "server_error",
    ErrorKind.SERVER: "server_error",
}


def encode_error(err: GatewayError) -> tuple[int, dict[str, Any]]:
    """(status, `{"error": {message, type, param, code}}`). Headers (Retry-After, ...) are in `err.headers`."""
    return err.status, {"error": {"message": err.message, "type": _ERROR_TYPES.get(err.kind, "server_error"),
                                  "param": err.param, "code": err.code}}
