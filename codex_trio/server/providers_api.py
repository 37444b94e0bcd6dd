"""Admin API of the API-key providers, under the reference gateway's `/auth/api-keys*` paths (its scripts keep
working), plus the routing / fallback settings, and `POST /v1/embeddings` (served by providers only). Routes
map HTTP onto `ProviderService`; the endpoint table is in docs/providers.md. The app's before_request requires
the admin key on every path here (client keys may use /v1/embeddings like any model API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from quart import Response, request

from ..errors import ErrorKind, GatewayError, invalid_request
from ..providers.hooks import target_for
from ..providers.model import Provider, provider_from_body
from ..providers.passthrough import PROVIDER_HEADER, outgoing_body
from ..providers.relay import ProviderRefused, account_of, send
from ..providers.service import ProviderService, catalog
from ..providers.wire import embeddings_url, offers_embeddings
from ..telemetry.recorder import current_recorder
from ..telemetry.trace import ALLOW_LIST_MODEL
from ..turn import Turn
from ..upstream.events import Usage
from .admin import apply_changes, read_json_object
from .admin_deps import admin_deps
from .api import json_response
from .turns import protocol_deps

if TYPE_CHECKING:
    from .host import GatewayHost

NO_EMBEDDINGS_PROVIDER = ("Embeddings need an OpenAI-compatible API-key provider: the ChatGPT subscription backend "
                          "has none. Add one (`codex-trio providers add --provider openai --key sk-...` or POST "
                          "/auth/api-keys) and ask for one of its embedding models.")


def _ids(body: dict[str, Any]) -> list[str]:
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise invalid_request("send `ids`: a non-empty list of provider ids", param="ids")
    return ids


def _enabled(body: dict[str, Any]) -> bool:
    if isinstance(body.get("enabled"), bool):
        return body["enabled"]
    if body.get("status") in ("active", "enabled", "disabled", "inactive"):
        return body["status"] in ("active", "enabled")
    raise invalid_request("send `status`: \"active\" or \"disabled\" (or `enabled`: true / false)", param="status")


def register_providers_api(app: Any, gateway: "GatewayHost") -> None:
    deps, protocol = admin_deps(gateway), protocol_deps(gateway)
    config = deps.config

    def service() -> ProviderService:
        providers = deps.providers
        if providers is None:
            raise GatewayError(503, "the provider store is not open yet; try again in a moment", ErrorKind.OVERLOADED)
        return providers

    def one(provider: Provider) -> Response:
        return json_response({"provider": provider.public()})

    @app.get("/auth/api-keys/catalog")
    async def api_keys_provider_catalog() -> Response:
        return json_response({"providers": catalog()})

    @app.get("/auth/api-keys")
    async def api_keys_list_providers() -> Response:
        return json_response({"keys": service().status()})

    @app.post("/auth/api-keys")
    async def api_keys_add_provider() -> Response:
        return json_response({"provider": (await service().add(await read_json_object())).public()}, 201)

    @app.post("/auth/api-keys/models")
    async def api_keys_fetch_models() -> Response:
        """An existing provider's list refreshed (`id`), or a candidate's listed before adding it."""
        body = await read_json_object()
        providers = service()
        if isinstance(body.get("id"), str):
            provider = await providers.refresh_models(body["id"])
            return json_response({"id": provider.id, "models": list(provider.models)})
        candidate = provider_from_body(body, provider_id="candidate", now=providers.clock())
        return json_response({"models": await providers.fetch_models(candidate)})

    @app.get("/auth/api-keys/export")
    async def api_keys_export_providers() -> Response:
        reveal = request.args.get("reveal", "").lower() in ("1", "true", "yes")
        return Response(orjson.dumps(service().export(reveal=reveal), option=orjson.OPT_INDENT_2),
                        content_type="application/json",
                        headers={"content-disposition": 'attachment; filename="codex-trio-providers.json"',
                                 "cache-control": "no-store"})

    @app.post("/auth/api-keys/import")
    async def api_keys_import_providers() -> Response:
        try:
            body = orjson.loads(await request.get_data())
        except orjson.JSONDecodeError as exc:
            raise invalid_request(f"The request body is not valid JSON: {exc}") from None
        return json_response(await service().import_entries(body))

    @app.post("/auth/api-keys/batch-delete")
    async def api_keys_batch_delete() -> Response:
        return json_response({"deleted": await service().remove(_ids(await read_json_object()))})

    @app.get("/auth/api-keys/settings")
    async def api_keys_routing_settings() -> Response:
        return json_response(config.settings.providers.model_dump(mode="json"))

    @app.route("/auth/api-keys/settings", methods=["PATCH", "POST"])
    async def api_keys_change_routing_settings() -> Response:
        apply_changes(config, {"providers": await read_json_object()})
        return json_response(config.settings.providers.model_dump(mode="json"))

    @app.get("/auth/api-keys/<provider_id>")
    async def api_keys_get_provider(provider_id: str) -> Response:
        return one(service().get(provider_id))

    @app.route("/auth/api-keys/<provider_id>", methods=["PATCH", "PUT"])
    async def api_keys_update_provider(provider_id: str) -> Response:
        return one(await service().update(provider_id, await read_json_object()))

    @app.delete("/auth/api-keys/<provider_id>")
    async def api_keys_delete_provider(provider_id: str) -> Response:
        return json_response({"deleted": await service().remove([provider_id])})

    @app.patch("/auth/api-keys/<provider_id>/label")
    async def api_keys_label_provider(provider_id: str) -> Response:
        body = await read_json_object()
        if not isinstance(body.get("label"), str):
            raise invalid_request("send `label`", param="label")
        return one(await service().update(provider_id, {"label": body["label"]}))

    @app.patch("/auth/api-keys/<provider_id>/status")
    async def api_keys_provider_status(provider_id: str) -> Response:
        return one(await service().set_enabled(provider_id, _enabled(await read_json_object())))

    @app.post("/v1/embeddings")
    async def embeddings() -> Response:
        raw = await request.get_data()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise invalid_request(f"The request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or "input" not in body:
            raise invalid_request("send `model` and `input`", param="model")
        providers = deps.providers
        if providers is None or not any(offers_embeddings(p) and p.enabled for p in providers.providers()):
            raise invalid_request(NO_EMBEDDINGS_PROVIDER, param="model", code="no_embeddings_provider")
        target = target_for(protocol, body["model"], codex_first=False)
        if target is None or not offers_embeddings(target.provider):
            raise invalid_request(f"No OpenAI-compatible provider offers the embedding model {body['model']!r}: add "
                                  "it to a provider's models, or name it as <provider label>/<model>.",
                                  param="model", code="model_not_found")
        recorder = current_recorder()
        recorder.admit(Turn(request={"model": target.model}, requested_model=body["model"], stream=False,
                            options={ALLOW_LIST_MODEL: target.qualified_name}))
        try:
            opened = await send(providers, target.provider, embeddings_url(target.provider),
                                outgoing_body("chat", raw, target.model), {}, recorder)
        except ProviderRefused as exc:
            return Response(exc.body, status=exc.status, content_type=exc.content_type)
        recorder.opened(account_of(target.provider), target.model, "provider")
        try:
            answer = await opened.response.aread()
        finally:
            await opened.response.aclose()
        try:
            usage = orjson.loads(answer).get("usage") or {}
        except (orjson.JSONDecodeError, AttributeError):
            usage = {}
        recorder.closed(Usage(input_tokens=usage.get("prompt_tokens") or 0, reported=bool(usage)), None)
        return Response(answer, content_type=opened.response.headers.get("content-type", "application/json"),
                        headers={PROVIDER_HEADER: target.provider.label})
