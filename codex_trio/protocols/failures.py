"""How an upstream turn that did not end well reaches a client, shared by the protocol adapters and routes.

Errors here are built fresh on every call: an exception instance raised from several concurrent tasks would
collect every task's traceback and context on the one object (and keep them alive).
"""

from __future__ import annotations

from codex_trio.errors import ErrorKind, GatewayError, status_to_kind
from codex_trio.upstream.events import Failed


def premature_close() -> GatewayError:
    """The upstream stream ended without a terminal event."""
    return GatewayError(502, "The upstream response ended before it was complete; please retry.",
                        ErrorKind.UPSTREAM, code="premature_close")


def error_from_failed(failed: Failed) -> GatewayError:
    """A terminal upstream failure as a GatewayError, so each protocol can render its own error object."""
    code = failed.code.lower()
    if code == "server_is_overloaded":
        status = 503
    elif code == "server_error":
        status = 500
    elif "context_length" in code or "invalid_request" in code or "not_found" in code:
        status = 400
    elif "rate_limit" in code or "usage_limit" in code:
        status = 429
    elif "unauthorized" in code or "invalid_api_key" in code:
        status = 401
    elif "forbidden" in code or "banned" in code:
        status = 403
    else:
        status = 502
    return GatewayError(status, failed.message, status_to_kind(status), code=failed.code)
