"""OpenAI surfaces: Chat Completions, Responses (+ compact, + WebSocket), models, images, image analysis."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from quart import Response, request, websocket

from ..protocols import anthropic, images, openai_chat, responses
from ..protocols.stops import early_stops
from .api import json_response
from .pipeline import collect, stream_response
from .responses_socket import serve_responses_socket
from ..providers.hooks import listed_provider_models, provider_reply, refuse_provider_compaction
from .turns import body_bytes, json_reply, meta_for, model_router, open_turn, resolve
from .uploads import is_multipart, read_upload_form

if TYPE_CHECKING:
    from ..app import Gateway

OPENAI_OWNER = "openai"
ANTHROPIC_VERSION = "anthropic-version"  # the header every Anthropic client sends


def model_list(gateway: "Gateway") -> list[dict[str, Any]]:
    """Catalog models, then aliases (clients pick from this list), as OpenAI model objects."""
    created = int(gateway.started_at)
    ids = model_router(gateway).catalog_ids()
    ordered = [m for m in gateway.services.catalog.model_ids() if m in ids]
    ordered += sorted(ids - set(ordered))
    ordered += [alias for alias in gateway.config.settings.model.aliases if alias not in ids]
    ordered += listed_provider_models(gateway)  # `<label>/<model>` of the API-key providers
    return [{"id": model_id, "object": "model", "created": created, "owned_by": OPENAI_OWNER} for model_id in ordered]


def started_iso(gateway: "Gateway") -> str:
    return datetime.fromtimestamp(int(gateway.started_at), timezone.utc).isoformat().replace("+00:00", "Z")


def anthropic_model_infos(gateway: "Gateway") -> list[dict[str, Any]]:
    """The same models as `model_list`, as Anthropic `ModelInfo`s (catalog display names)."""
    catalog = gateway.services.catalog
    created = started_iso(gateway)
    return [anthropic.model_info(m["id"], (catalog.entry(m["id"]) or {}).get("display_name"), created)
            for m in model_list(gateway)]


def model_info(gateway: "Gateway", model_id: str) -> dict[str, Any]:
    resolved = model_router(gateway).resolve(model_id)
    entry = gateway.services.catalog.entry(resolved.model_id) or {"slug": resolved.model_id}
    return {"id": model_id, "object": "model", "resolved_model": resolved.model_id,
            "reasoning_effort": resolved.effort, "service_tier": resolved.service_tier, "info": entry}


def register_openai(app: Any, gateway: "Gateway") -> None:
    @app.post("/v1/chat/completions")
    async def chat_completions() -> Response:
        user_agent = request.headers.get("user-agent", "").lower()
        body = await body_bytes()
        turn = openai_chat.parse_request(body, custom_as_function=user_agent.startswith("cursor/"))
        turn.inline_images = gateway.config.settings.model.images_as_markdown
        resolved = resolve(gateway, turn, fallback_to_default=False)
        meta = meta_for("chatcmpl-", resolved.display_name)
        if (reply := await provider_reply(gateway, app.nursery, turn, "openai_chat", body,
                                          openai_chat.StreamEncoder(turn, meta))) is not None:
            return reply
        upstream = await open_turn(gateway, turn)
        if turn.stream:
            encoder = openai_chat.StreamEncoder(turn, meta)
            return stream_response(gateway, app.nursery, upstream, encoder, prefix=encoder.start())
        events, _ = await collect(upstream, early_stops(turn))
        return json_reply(openai_chat.encode_response(turn, events, meta), upstream)

    async def serve_responses(subagent: str | None) -> Response:
        body = await body_bytes()
        turn = responses.parse_request(body, subagent=subagent or request.headers.get("x-openai-subagent"))
        resolved = resolve(gateway, turn, fallback_to_default=True, passthrough=True)
        meta = meta_for("resp_", resolved.model_id)
        if (reply := await provider_reply(gateway, app.nursery, turn, "responses", body,
                                          responses.StreamEncoder(turn, meta))) is not None:
            return reply
        upstream = await open_turn(gateway, turn)
        if turn.stream:
            encoder = responses.StreamEncoder(turn, meta)
            return stream_response(gateway, app.nursery, upstream, encoder, raw=encoder.feed_raw)
        _, raw = await collect(upstream)
        return json_reply(responses.encode_response(turn, raw, meta), upstream)

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
        resolve(gateway, turn, fallback_to_default=True, passthrough=True)
        refuse_provider_compaction(turn)  # a provider model cannot compact (docs/providers.md)
        return json_response(await gateway.services.dispatcher.compact(turn))

    @app.websocket("/v1/responses")
    async def responses_websocket() -> None:
        await responses_socket(gateway)

    @app.get("/v1/models")
    async def models() -> Response:
        if ANTHROPIC_VERSION in request.headers:  # an Anthropic client: its own model-list shape
            return json_response(anthropic.model_page(anthropic_model_infos(gateway), limit=request.args.get("limit"),
                                                      after_id=request.args.get("after_id"),
                                                      before_id=request.args.get("before_id")))
        return json_response({"object": "list", "data": model_list(gateway)})

    @app.get("/v1/models/catalog")
    async def models_catalog() -> Response:
        return json_response({"object": "list", "data": gateway.services.catalog.entries(),
                              "aliases": gateway.config.settings.model.aliases})

    @app.get("/v1/models/<path:model_id>/info")
    async def model_details(model_id: str) -> Response:
        return json_response(model_info(gateway, model_id))

    @app.get("/v1/models/<path:model_id>")
    async def model_object(model_id: str) -> Response:
        resolve_check = model_router(gateway).resolve(model_id)
        if ANTHROPIC_VERSION in request.headers:
            entry = gateway.services.catalog.entry(resolve_check.model_id) or {}
            return json_response(anthropic.model_info(model_id, entry.get("display_name"), started_iso(gateway)))
        return json_response({"id": model_id, "object": "model", "created": int(gateway.started_at),
                              "owned_by": OPENAI_OWNER, "root": resolve_check.model_id})

    async def collected_image_turn(turn, encode, prefix: str) -> Response:
        """Image generation and analysis: one collected turn on the image-capable default model."""
        resolve(gateway, turn, fallback_to_default=True)
        upstream = await open_turn(gateway, turn)
        events, _ = await collect(upstream)
        return json_reply(encode(turn, events, meta_for(prefix, turn.request["model"])), upstream)

    @app.post("/v1/images/generations")
    async def image_generations() -> Response:
        turn = images.parse_generations_request(await body_bytes(), host_model=gateway.config.settings.model.default)
        return await collected_image_turn(turn, images.encode_generations_response, "img_")

    @app.post("/v1/images/edits")
    async def image_edits() -> Response:
        host_model = gateway.config.settings.model.default
        if is_multipart():  # what the official SDKs send
            form = await read_upload_form(gateway, max_files=images.MAX_EDIT_IMAGES + 1)  # the images and a mask
            turn = images.parse_edits_form(form, host_model=host_model)
        else:
            turn = images.parse_edits_request(await body_bytes(), host_model=host_model)
        return await collected_image_turn(turn, images.encode_generations_response, "img_")

    @app.post("/v1/codex/image-analysis")
    async def image_analysis() -> Response:
        turn = images.parse_analysis_request(await body_bytes(), default_model=gateway.config.settings.model.default)
        return await collected_image_turn(turn, images.encode_analysis_response, "ia_")


async def responses_socket(gateway: "Gateway") -> None:
    """The Responses API over a WebSocket (what the Codex CLI's built-in provider tries first); the session
    itself is `responses_socket.serve_responses_socket`. The key is checked by the app before the upgrade (none on
    the Ollama listener, like its HTTP routes)."""
    await websocket.accept()
    await serve_responses_socket(gateway)
