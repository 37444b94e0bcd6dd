"""Admin API for settings: read the effective settings, change them (validated, written to local.yaml)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from quart import Response, request

from ..config.loader import ConfigError, OverriddenByEnvironment
from ..config.schema import SECRET_KEYS
from ..errors import ErrorKind, GatewayError, invalid_request
from ..upstream.versions import release_watch_report
from .api import json_response

if TYPE_CHECKING:
    from .host import GatewayHost

OLLAMA_FIELDS = ("enabled", "host", "port", "version", "disable_vision", "allow_non_loopback", "allowed_origins",
                 "allowed_hosts")


async def read_json_object() -> dict[str, Any]:
    raw = await request.get_data()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid_request(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    return body


def masked_settings(gateway: "GatewayHost") -> dict[str, Any]:
    settings = gateway.config.settings.model_dump(mode="json")
    for section, key in SECRET_KEYS:
        if settings[section][key]:
            settings[section][key] = "********"
    return settings


def apply_changes(gateway: "GatewayHost", changes: dict[str, Any]) -> dict[str, Any]:
    try:
        change = gateway.config.update(changes)
    except OverriddenByEnvironment as exc:
        # written, the value would be hidden by the variable: refuse rather than answer 200 and not apply it
        raise GatewayError(409, str(exc), ErrorKind.INVALID_REQUEST, code="overridden_by_environment") from None
    except ConfigError as exc:
        raise invalid_request(str(exc).replace(str(gateway.config.local_file), "the request")) from None
    return {"settings": masked_settings(gateway), "restart_required": change.needs_restart()}


def register_admin(app: Any, gateway: "GatewayHost") -> None:
    @app.get("/admin/settings")
    async def get_settings() -> Response:
        return json_response(masked_settings(gateway))

    @app.route("/admin/settings", methods=["PATCH", "POST"])
    async def patch_settings() -> Response:
        return json_response(apply_changes(gateway, await read_json_object()))

    @app.get("/admin/release-watch")
    async def release_watch() -> Response:
        return json_response(release_watch_report(gateway.config.data_dir, gateway.config.settings.client.version,
                                                  gateway.services.identity.version))

    @app.get("/admin/ollama-settings")
    async def get_ollama_settings() -> Response:
        return json_response(gateway.config.settings.ollama.model_dump(mode="json"))

    @app.post("/admin/ollama-settings")
    async def post_ollama_settings() -> Response:
        body = await read_json_object()
        unknown = sorted(set(body) - set(OLLAMA_FIELDS))
        if unknown:
            raise invalid_request(f"Unknown Ollama setting(s): {', '.join(unknown)}. Known: {', '.join(OLLAMA_FIELDS)}.")
        apply_changes(gateway, {"ollama": body})
        # apply now (the config listener would too, but the caller wants the resulting status)
        status = await gateway.ollama.apply()
        return json_response({"settings": gateway.config.settings.ollama.model_dump(mode="json"), "status": status})

    @app.get("/admin/ollama-status")
    async def ollama_status() -> Response:
        return json_response(gateway.ollama.status())
