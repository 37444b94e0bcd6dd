"""The Ollama listener's own small app (a second app, so the main app's lifespan runs once).

It has no key (that is the Ollama API), so what keeps other web pages from using it is checked here, before
any route runs: the Host and Origin rules of `site_guard`, then CORS for the pages that are allowed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from quart import Response, request
from quart_trio import QuartTrio

from ..protocols import cors
from . import site_guard
from .api import configure, error_response, json_response

if TYPE_CHECKING:
    from .host import GatewayHost


def create_ollama_app(gateway: "GatewayHost") -> QuartTrio:
    app = configure(QuartTrio("codex_trio.ollama", static_folder=None))  # no ./static (see create_api_app)
    app.extensions["gateway"] = gateway

    # Built once per settings object (a settings change makes a new one); holding it keeps the comparison sound.
    built: list = [None, None]

    def policy() -> site_guard.SitePolicy:
        settings = gateway.config.settings.ollama
        if built[0] is not settings:
            built[:] = [settings, site_guard.SitePolicy.of(settings.host, settings.allowed_hosts,
                                                           settings.allowed_origins)]
        return built[1]

    site_guard.install(app, policy, error_response)  # first: a refused request gets no further

    @app.before_request
    async def preflight() -> Response | None:
        decision = cors.decide(request.method, request.headers.get("origin"),
                               request.headers.get("access-control-request-method"),
                               request.headers.get("access-control-request-headers"),
                               origin_allowed=policy().origin_allowed)
        if decision.preflight:
            return Response(b"", status=decision.status, headers=decision.headers)
        return None

    @app.after_request
    async def add_cors(response: Response) -> Response:
        decision = cors.decide(request.method, request.headers.get("origin"), origin_allowed=policy().origin_allowed)
        for name, value in decision.headers:
            response.headers[name] = value
        return response

    @app.route("/", methods=["GET", "HEAD"])
    async def root() -> Response:
        return Response("Ollama is running", content_type="text/plain; charset=utf-8")

    @app.get("/api/version")
    async def version() -> Response:
        return json_response({"version": gateway.config.settings.ollama.version})

    for register in gateway.ollama_route_registrars:
        register(app, gateway)
    return app
