"""The client-key half of the API key check (`server/api.py` calls it when the presented key is not the admin
key). Kept apart from the routes so the key check imports nothing of the admin API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from quart import g

from ..errors import ErrorKind, GatewayError

if TYPE_CHECKING:
    from ..server.host import GatewayHost

CLIENT_KEY_FORBIDDEN = ("/admin", "/auth", "/api/")  # the admin surfaces (/api/proxies*: the reference
# gateway's names for the proxy pool); everything else the key check guards is a model API


def client_key_admits(gateway: "GatewayHost", presented: str | None, path: str) -> bool:
    """Whether `presented` is a client key that may use `path`: True (and the key is remembered for the
    request's trace), False when it is no client key. A client key on the admin surfaces is refused with 403,
    a disabled or expired one with 401."""
    services = gateway.services
    telemetry = services.telemetry if services is not None else None
    key = telemetry.keys.lookup(presented) if telemetry is not None else None
    if key is None:
        return False
    if path.startswith(CLIENT_KEY_FORBIDDEN):
        raise GatewayError(403, "Client keys can use the model APIs only; the admin API needs the admin key.",
                           ErrorKind.PERMISSION, code="client_key_not_allowed")
    telemetry.keys.check_usable(key)
    g.client_key = key
    return True


def open_by_settings(gateway: "GatewayHost", method: str, path: str) -> bool:
    """Routes a setting opens without any key: `GET /metrics` with `metrics.public: true` (for a key check that
    guards every route; the /metrics route checks the admin key itself otherwise)."""
    return method.upper() in ("GET", "HEAD") and path == "/metrics" and gateway.config.settings.metrics.public
