"""Admin API for settings: read the effective settings, change them (validated, written to local.yaml)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from quart import Response, request

from ..config.loader import ConfigError, OverriddenByEnvironment
from ..config.schema import SECRET_KEYS
from ..errors import ErrorKind, GatewayError, invalid_request
from ..upstream.versions import release_watch_report
from .admin_deps import admin_deps
from .api import json_response

if TYPE_CHECKING:
    from ..config.store import ConfigStore
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


def masked_settings(config: "ConfigStore") -> dict[str, Any]:
    settings = config.settings.model_dump(mode="json")
    for section, key in SECRET_KEYS:
        if settings[section][key]:
            settings[section][key] = "********"
    return settings


def apply_changes(config: "ConfigStore", changes: dict[str, Any]) -> dict[str, Any]:
    try:
        change = config.update(changes)
    except OverriddenByEnvironment as exc:
        # written, the value would be hidden by the variable: refuse rather than answer 200 and not apply it
        raise GatewayError(409, str(exc), ErrorKind.INVALID_REQUEST, code="overridden_by_environment") from None
    except ConfigError as exc:
        raise invalid_request(str(exc).replace(str(config.local_file), "the request")) from None
    return {"settings": masked_settings(config), "restart_required": change.needs_restart()}


def register_admin(app: Any, gateway: "GatewayHost") -> None:
    deps = admin_deps(gateway)
    config = deps.config

    @app.get("/admin/settings")
    async def get_settings() -> Response:
        return json_response(masked_settings(config))

    @app.route("/admin/settings", methods=["PATCH", "POST"])
    async def patch_settings() -> Response:
        return json_response(apply_changes(config, await read_json_object()))

    @app.get("/admin/release-watch")
    async def release_watch() -> Response:
        return json_response(release_watch_report(config.data_dir, config.settings.client.version,
                                                  deps.connector.identity.version))

    @app.get("/admin/ollama-settings")
    async def get_ollama_settings() -> Response:
        return json_response(config.settings.ollama.model_dump(mode="json"))

    @app.post("/admin/ollama-settings")
    async def post_ollama_settings() -> Response:
        body = await read_json_object()
        unknown = sorted(set(body) - set(OLLAMA_FIELDS))
        if unknown:
            raise invalid_request(f"Unknown Ollama setting(s): {', '.join(unknown)}. Known: {', '.join(OLLAMA_FIELDS)}.")
        apply_changes(config, {"ollama": body})
        # apply now (the config listener would too, but the caller wants the resulting status)
        status = await deps.ollama.apply()
        return json_response({"settings": config.settings.ollama.model_dump(mode="json"), "status": status})

    @app.get("/admin/ollama-status")
    async def ollama_status() -> Response:
        return json_response(deps.ollama.status())
