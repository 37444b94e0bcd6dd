"""The main listener's app: every API and the admin API. Routes are thin glue."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson
from quart import Response, request, websocket
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from ..errors import ErrorKind, GatewayError, status_to_kind
from ..store.errors import StoreUnavailable
from ..telemetry.key_check import client_key_admits, open_by_settings
from ..telemetry import stage_timing
from .auth import key_problem, needs_key, presented_key
from .envelopes import error_body, error_headers
from .quart_http import GatewayRequest, InlineHTTPConnection

if TYPE_CHECKING:
    from .host import GatewayHost

log = logging.getLogger(__name__)

# Requests carry base64 images (4K PNGs exceed 30 MiB once encoded); refuse only what is clearly absurd.
MAX_REQUEST_BYTES = 96 * 1024 * 1024


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, content_type="application/json", headers=headers)


def error_response(error: GatewayError, path: str | None = None) -> Response:
    path = path if path is not None else request.path
    status, body = error_body(path, error)
    headers = {**error_headers(path, status), **dict(error.headers)}
    if error.retry_after is not None:
        headers["retry-after"] = str(max(1, round(error.retry_after)))
    return json_response(body, status, headers)


def configure(app: QuartTrio) -> QuartTrio:
    """Settings every app of ours needs (both listeners)."""
    app.config["RESPONSE_TIMEOUT"] = None  # Quart's 60 s default silently truncates long streams
    app.config["BODY_TIMEOUT"] = 300
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = True
    app.asgi_http_class = InlineHTTPConnection  # one task per request, not three (quart_http.py)
    app.request_class = GatewayRequest  # a complete body without a scheduler pass (quart_http.py)

    @app.errorhandler(GatewayError)
    async def _gateway_error(error: GatewayError) -> Response:
        return error_response(error)

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        message = {404: f"No route for {request.method} {request.path}.",
                   405: f"Method {request.method} is not allowed on {request.path}.",
                   413: "The request body is too large."}.get(status, error.description or "HTTP error")
        return error_response(GatewayError(status, message, status_to_kind(status)))

    @app.errorhandler(StoreUnavailable)
    async def _store_away(error: StoreUnavailable) -> Response:
        log.warning("%s %s: %s", request.method, request.path, error)
        return error_response(GatewayError(503, "The store (database) cannot be reached right now, so this was not "
                                           "done; requests are still served. Try again when it is back (GET "
                                           "/health shows it).", ErrorKind.OVERLOADED, code="store_unavailable",
                                           retry_after=5))

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(GatewayError(500, "Internal gateway error; see the gateway log.", ErrorKind.SERVER))

    return app


def create_api_app(gateway: "GatewayHost") -> QuartTrio:
    # No static folder: Quart's default would serve `./static` of whatever directory the gateway was started in.
    app = configure(QuartTrio("codex_trio.api", static_folder=None))
    app.extensions["gateway"] = gateway

    def refusal(path: str, presented: str | None) -> Response | None:
        problem = key_problem(presented, gateway.config.settings.server.proxy_api_key)
        # Not the admin key: a client key may still use the model APIs (its limits are checked per turn).
        if problem is None or client_key_admits(gateway, presented, path):
            return None
        return error_response(GatewayError(401, problem, ErrorKind.AUTHENTICATION, code="invalid_api_key"), path)

    # Every route needs the key unless `auth.OPEN_ROUTES` says otherwise. This runs before a routing error is
    # raised, so an unknown path without the key is a 401 too, never a 404 that confirms what exists.
    @app.before_request
    async def _require_key() -> Response | None:
        method, path = request.method, request.path
        if not needs_key(method, path) or open_by_settings(gateway, method, path):
            return None
        presented = presented_key(request.headers, request.args)
        # The dashboard's browser gate (server/dashboard.py) answers keyless browser requests: its log-in page,
        # a live session cookie (with its Origin check), or a refusal; anything it does not decide needs the key.
        gate = app.extensions.get("browser_gate")
        if presented is None and gate is not None:
            decided, response = gate.screen(method, path, request.headers, request.cookies, request.args)
            if decided:
                return response
        refused = refusal(path, presented)
        stage_timing.mark("auth")
        return refused

    # A refused WebSocket upgrade gets the same HTTP 401 and JSON body as the HTTP routes (not a bare 403), so
    # SDKs can tell a wrong key from a broken server.
    @app.before_websocket
    async def _require_key_for_websockets() -> Response | None:
        return refusal(websocket.path, presented_key(websocket.headers, websocket.args))

    @app.get("/health")
    async def health() -> Response:
        from ..store.health import store_report

        body = gateway.health()
        store = store_report(gateway.services)
        if store:
            body["store"] = store
            if not store["available"] and body["status"] == "ok":
                body["status"] = "degraded"  # still serving (200): a load balancer keeps it in rotation
        return json_response(body)

    for register in gateway.route_registrars:
        register(app, gateway)
    return app
