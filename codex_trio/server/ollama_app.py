"""The Ollama listener's own small app (a second app, so the main app's lifespan runs once)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from quart import Response
from quart_trio import QuartTrio

from .api import configure, json_response

if TYPE_CHECKING:
    from ..app import Gateway


def create_ollama_app(gateway: "Gateway") -> QuartTrio:
    app = configure(QuartTrio("codex_trio.ollama", static_folder=None))  # no ./static (see create_api_app)
    app.extensions["gateway"] = gateway

    @app.route("/", methods=["GET", "HEAD"])
    async def root() -> Response:
        return Response("Ollama is running", content_type="text/plain; charset=utf-8")

    @app.get("/api/version")
    async def version() -> Response:
        return json_response({"version": gateway.config.settings.ollama.version})

    for register in gateway.ollama_route_registrars:
        register(app, gateway)
    return app
