"""The main listener's app: every API and the admin API. Routes are thin glue."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from ..errors import ErrorKind, GatewayError, status_to_kind
from .auth import is_protected, key_matches, presented_key
from .envelopes import error_body
from ..telemetry.key_check import client_key_admits

if TYPE_CHECKING:
    from ..app import Gateway

log = logging.getLogger(__name__)

# Requests carry base64 images (4K PNGs exceed 30 MiB once encoded); refuse only what is clearly absurd.
MAX_REQUEST_BYTES = 96 * 1024 * 1024


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, content_type="application/json", headers=headers)


def error_response(error: GatewayError, path: str | None = None) -> Response:
    status, body = error_body(path if path is not None else request.path, error)
    headers = dict(error.headers)
    if error.retry_after is not None:
        headers["retry-after"] = str(max(1, round(error.retry_after)))
    return json_response(body, status, headers)


def configure(app: QuartTrio) -> QuartTrio:
    """Settings every app of ours needs (both listeners)."""
    app.config["RESPONSE_TIMEOUT"] = None  # Quart's 60 s default silently truncates long streams
    app.config["BODY_TIMEOUT"] = 300
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = True

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

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(GatewayError(500, "Internal gateway error; see the gateway log.", ErrorKind.SERVER))

    return app


def create_api_app(gateway: "Gateway") -> QuartTrio:
    app = configure(QuartTrio("codex_trio.api"))
    app.extensions["gateway"] = gateway

    @app.before_request
    async def _require_key() -> Response | None:
        if not is_protected(request.path) or request.method == "OPTIONS":
            return None
        expected = gateway.config.settings.server.proxy_api_key
        presented = presented_key(request.headers, request.args)
        if key_matches(presented, expected):
            return None
        if client_key_admits(gateway, presented, request.path):
            return None
        message = ("Missing API key: send it as Authorization: Bearer <key>, x-api-key, x-goog-api-key or ?key=."
                   if presented is None else "Invalid API key.")
        return error_response(GatewayError(401, message, ErrorKind.AUTHENTICATION, code="invalid_api_key"))

    @app.get("/health")
    async def health() -> Response:
        return json_response(gateway.health())

    for register in gateway.route_registrars:
        register(app, gateway)
    return app
