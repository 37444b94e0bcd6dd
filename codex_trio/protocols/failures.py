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


# The status a terminal upstream failure implies, by a fragment of its code; first match wins, 502 when none.
_CODE_STATUS = (("server_is_overloaded", 503), ("server_error", 500), ("invalid_request", 400), ("not_found", 400),
                ("context_length", 400), ("rate_limit", 429), ("usage_limit", 429), ("unauthorized", 401),
                ("invalid_api_key", 401), ("forbidden", 403), ("banned", 403), ("payment", 402), ("quota", 402))


def error_from_failed(failed: Failed) -> GatewayError:
    """A terminal upstream failure as a GatewayError, so each protocol can render its own error object."""
    code = failed.code.lower()
    status = next((s for fragment, s in _CODE_STATUS if fragment in code), 502)
    return GatewayError(status, failed.message, status_to_kind(status), code=failed.code)
