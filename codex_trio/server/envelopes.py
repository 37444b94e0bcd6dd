"""Which protocol's error envelope a path answers with, for errors raised before a protocol adapter runs
(authentication, unknown routes, malformed requests)."""

from __future__ import annotations

from typing import Any

from ..errors import ErrorKind, GatewayError

OPENAI_TYPES = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error", ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION: "permission_error", ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.REQUEST_TOO_LARGE: "invalid_request_error", ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.OVERLOADED: "server_error", ErrorKind.UPSTREAM: "server_error", ErrorKind.TIMEOUT: "server_error",
    ErrorKind.SERVER: "server_error",
}
ANTHROPIC_TYPES = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error", ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION: "permission_error", ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.REQUEST_TOO_LARGE: "request_too_large", ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.OVERLOADED: "overloaded_error", ErrorKind.UPSTREAM: "api_error", ErrorKind.TIMEOUT: "api_error",
    ErrorKind.SERVER: "api_error",
}
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL", 502: "UNAVAILABLE",
    503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}


def protocol_for_path(path: str) -> str:
    if path.startswith("/v1/messages"):
        return "anthropic"
    if path.startswith("/v1beta"):
        return "gemini"
    if path.startswith("/api/"):
        return "ollama"
    return "openai"


def error_body(path: str, error: GatewayError) -> tuple[int, dict[str, Any]]:
    protocol = protocol_for_path(path)
    if protocol == "anthropic":
        return error.status, {"type": "error", "error": {"type": ANTHROPIC_TYPES[error.kind], "message": error.message}}
    if protocol == "gemini":
        return error.status, {"error": {"code": error.status, "message": error.message,
                                        "status": GOOGLE_STATUS.get(error.status, "UNKNOWN")}}
    if protocol == "ollama":
        return error.status, {"error": error.message}
    return error.status, {"error": {"message": error.message, "type": OPENAI_TYPES[error.kind], "param": error.param,
                                    "code": error.code}}
