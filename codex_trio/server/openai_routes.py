"""OpenAI surfaces: Chat Completions, Responses (+ compact, + WebSocket), models, images, image analysis."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from quart import Response, request, websocket

from ..protocols import anthropic, images, openai_chat, responses
from ..protocols.stops import early_stops
from .api import json_response
from .responses_socket import serve_responses_socket
from ..providers.hooks import listed_provider_models, provider_reply, refuse_provider_compaction
from .turns import ProtocolDeps, body_bytes, json_reply, meta_for, model_router, protocol_deps, resolve
from .uploads import is_multipart, read_upload_form

if TYPE_CHECKING:
    from .host import GatewayHost

OPENAI_OWNER = "openai"
ANTHROPIC_VERSION = "anthropic-version"  # the header every Anthropic client sends


def model_list(deps: ProtocolDeps) -> list[dict[str, Any]]:
    """Catalog models, then aliases (clients pick from this list), as OpenAI model objects."""
    created = int(deps.started_at)
    ids = model_router(deps).catalog_ids()
    ordered = [m for m in deps.catalog.model_ids() if m in ids]
    ordered += sorted(ids - set(ordered))
    ordered += [alias for alias in deps.settings.model.aliases if alias not in ids]
    ordered += listed_provider_models(deps)  # `<label>/<model>` of the API-key providers
    return [{"id": model_id, "object": "model", "created": created, "owned_by": OPENAI_OWNER} for model_id in ordered]


def started_iso(deps: ProtocolDeps) -> str:
    return datetime.fromtimestamp(int(deps.started_at), timezone.utc).isoformat().replace("+00:00", "Z")


def anthropic_model_infos(deps: ProtocolDeps) -> list[dict[str, Any]]:
    """The same models as `model_list`, as Anthropic `ModelInfo`s (catalog display names)."""
    catalog = deps.catalog
    created = started_iso(deps)
    return [anthropic.model_info(m["id"], (catalog.entry(m["id"]) or {}).get("display_name"), created)
            for m in model_list(deps)]


def model_info(deps: ProtocolDeps, model_id: str) -> dict[str, Any]:
    resolved = model_router(deps).resolve(model_id)
    entry = deps.catalog.entry(resolved.model_id) or {"slug": resolved.model_id}
    return {"id": model_id, "object": "model", "resolved_model": resolved.model_id,
            "reasoning_effort": resolved.effort, "service_tier": resolved.service_tier, "info": entry}


def register_openai(app: Any, gateway: "GatewayHost") -> None:
    deps = protocol_deps(gateway)

    @app.post("/v1/chat/completions")
    async def chat_completions() -> Response:
        user_agent = request.headers.get("user-agent", "").lower()
        body = await body_bytes()
        turn = openai_chat.parse_request(body, custom_as_function=user_agent.startswith("cursor/"))
        turn.inline_images = deps.settings.model.images_as_markdown
        resolved = resolve(deps, turn, fallback_to_default=False)
        meta = meta_for("chatcmpl-", resolved.display_name)
        reply = await provider_reply(deps, turn, "openai_chat", body, openai_chat.StreamEncoder(turn, meta))
        if reply is not None:
            return reply
        if turn.stream:
            encoder = openai_chat.StreamEncoder(turn, meta)
            return await deps.stream(turn, encoder, prefix=encoder.start())
        collected = await deps.collect(turn, early_stops(turn))
        return json_reply(openai_chat.encode_response(turn, collected.events, meta), collected)

    async def serve_responses(subagent: str | None) -> Response:
        body = await body_bytes()
        turn = responses.parse_request(body, subagent=subagent or request.headers.get("x-openai-subagent"))
        resolved = resolve(deps, turn, fallback_to_default=True, passthrough=True)
        meta = meta_for("resp_", resolved.model_id)
        reply = await provider_reply(deps, turn, "responses", body, responses.StreamEncoder(turn, meta))
        if reply is not None:
            return reply
        if turn.stream:
            encoder = responses.StreamEncoder(turn, meta)
            return await deps.stream(turn, encoder, raw=encoder.feed_raw)
        collected = await deps.collect(turn)
        return json_reply(responses.encode_response(turn, collected.raw, meta), collected)

    def responses_view(subagent: str | None):
        async def view() -> Response:
            return await serve_responses(subagent)
        return view

    for path in ("/v1/responses", "/responses"):
        app.add_url_rule(path, f"responses{path}", responses_view(None), methods=["POST"])
    for path in ("/v1/responses/review", "/responses/review"):
        app.add_url_rule(path, f"review{path}", responses_view("review"), methods=["POST"])

    @app.post("/v1/responses/compact")
    async def responses_compact() -> Response:
        turn = responses.parse_compact_request(await body_bytes())
        resolve(deps, turn, fallback_to_default=True, passthrough=True)
        refuse_provider_compaction(turn)  # a provider model cannot compact (docs/providers.md)
        return json_response(await deps.dispatcher().compact(turn))

    @app.websocket("/v1/responses")
    async def responses_websocket() -> None:
        await responses_socket(deps)

    @app.get("/v1/models")
    async def models() -> Response:
        if ANTHROPIC_VERSION in request.headers:  # an Anthropic client: its own model-list shape
            return json_response(anthropic.model_page(anthropic_model_infos(deps), limit=request.args.get("limit"),
                                                      after_id=request.args.get("after_id"),
                                                      before_id=request.args.get("before_id")))
        return json_response({"object": "list", "data": model_list(deps)})

    @app.get("/v1/models/catalog")
    async def models_catalog() -> Response:
        return json_response({"object": "list", "data": deps.catalog.entries(),
                              "aliases": deps.settings.model.aliases})

    @app.get("/v1/models/<path:model_id>/info")
    async def model_details(model_id: str) -> Response:
        return json_response(model_info(deps, model_id))

    @app.get("/v1/models/<path:model_id>")
    async def model_object(model_id: str) -> Response:
        resolve_check = model_router(deps).resolve(model_id)
        if ANTHROPIC_VERSION in request.headers:
            entry = deps.catalog.entry(resolve_check.model_id) or {}
            return json_response(anthropic.model_info(model_id, entry.get("display_name"), started_iso(deps)))
        return json_response({"id": model_id, "object": "model", "created": int(deps.started_at),
                              "owned_by": OPENAI_OWNER, "root": resolve_check.model_id})

    async def collected_image_turn(turn, encode, prefix: str) -> Response:
        """Image generation and analysis: one collected turn on the image-capable default model."""
        resolve(deps, turn, fallback_to_default=True)
        collected = await deps.collect(turn)
        return json_reply(encode(turn, collected.events, meta_for(prefix, turn.request["model"])), collected)

    @app.post("/v1/images/generations")
    async def image_generations() -> Response:
        turn = images.parse_generations_request(await body_bytes(), host_model=deps.settings.model.default)
        return await collected_image_turn(turn, images.encode_generations_response, "img_")

    @app.post("/v1/images/edits")
    async def image_edits() -> Response:
        host_model = deps.settings.model.default
        if is_multipart():  # what the official SDKs send
            form = await read_upload_form(deps.config, max_files=images.MAX_EDIT_IMAGES + 1)  # the images and a mask
            turn = images.parse_edits_form(form, host_model=host_model)
        else:
            turn = images.parse_edits_request(await body_bytes(), host_model=host_model)
        return await collected_image_turn(turn, images.encode_generations_response, "img_")

    @app.post("/v1/codex/image-analysis")
    async def image_analysis() -> Response:
        turn = images.parse_analysis_request(await body_bytes(), default_model=deps.settings.model.default)
        return await collected_image_turn(turn, images.encode_analysis_response, "ia_")


async def responses_socket(deps: ProtocolDeps) -> None:
    """The Responses API over a WebSocket (what the Codex CLI's built-in provider tries first); the session
    itself is `responses_socket.serve_responses_socket`. The key is checked by the app before the upgrade (none on
    the Ollama listener, like its HTTP routes)."""
    await websocket.accept()
    await serve_responses_socket(deps)
