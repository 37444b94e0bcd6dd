"""OpenAI surfaces: Chat Completions, Responses (+ compact, + WebSocket), models, images, image analysis."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quart import Response, request, websocket

from ..protocols import images, openai_chat, responses
from .api import json_response
from .auth import key_matches, presented_key
from .pipeline import collect, stream_response
from .responses_socket import serve_responses_socket
from .turns import body_bytes, json_reply, meta_for, model_router, open_turn, resolve

if TYPE_CHECKING:
    from ..app import Gateway

OPENAI_OWNER = "openai"


def model_list(gateway: "Gateway") -> list[dict[str, Any]]:
    """Catalog models, then aliases (clients pick from this list), as OpenAI model objects."""
    created = int(gateway.started_at)
    ids = model_router(gateway).catalog_ids()
    ordered = [m for m in gateway.services.catalog.model_ids() if m in ids]
    ordered += sorted(ids - set(ordered))
    ordered += [alias for alias in gateway.config.settings.model.aliases if alias not in ids]
    return [{"id": model_id, "object": "model", "created": created, "owned_by": OPENAI_OWNER} for model_id in ordered]


def model_info(gateway: "Gateway", model_id: str) -> dict[str, Any]:
    resolved = model_router(gateway).resolve(model_id)
    entry = gateway.services.catalog.entry(resolved.model_id) or {"slug": resolved.model_id}
    return {"id": model_id, "object": "model", "resolved_model": resolved.model_id,
            "reasoning_effort": resolved.effort, "service_tier": resolved.service_tier, "info": entry}


def register_openai(app: Any, gateway: "Gateway") -> None:
    @app.post("/v1/chat/completions")
    async def chat_completions() -> Response:
        user_agent = request.headers.get("user-agent", "").lower()
        turn = openai_chat.parse_request(await body_bytes(), custom_as_function=user_agent.startswith("cursor/"))
        turn.inline_images = gateway.config.settings.model.images_as_markdown
        resolved = resolve(gateway, turn, fallback_to_default=False)
        meta = meta_for("chatcmpl-", resolved.display_name)
        upstream = await open_turn(gateway, turn)
        if turn.stream:
            encoder = openai_chat.StreamEncoder(turn, meta)
            return stream_response(gateway, app.nursery, upstream, encoder, prefix=encoder.start())
        events, _ = await collect(upstream)
        return json_reply(openai_chat.encode_response(turn, events, meta), upstream)

    async def serve_responses(subagent: str | None) -> Response:
        turn = responses.parse_request(await body_bytes(), subagent=subagent or request.headers.get("x-openai-subagent"))
        resolved = resolve(gateway, turn, fallback_to_default=True, passthrough=True)
        meta = meta_for("resp_", resolved.model_id)
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
        return json_response(await gateway.services.dispatcher.compact(turn))

    @app.websocket("/v1/responses")
    async def responses_websocket() -> None:
        await responses_socket(gateway)

    @app.get("/v1/models")
    async def models() -> Response:
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
        turn = images.parse_edits_request(await body_bytes(), host_model=gateway.config.settings.model.default)
        return await collected_image_turn(turn, images.encode_generations_response, "img_")

    @app.post("/v1/codex/image-analysis")
    async def image_analysis() -> Response:
        turn = images.parse_analysis_request(await body_bytes(), default_model=gateway.config.settings.model.default)
        return await collected_image_turn(turn, images.encode_analysis_response, "ia_")


async def responses_socket(gateway: "Gateway") -> None:
    """The Responses API over a WebSocket (what the Codex CLI's built-in provider tries first); the session
    itself is `responses_socket.serve_responses_socket`."""
    expected = gateway.config.settings.server.proxy_api_key
    if not key_matches(presented_key(websocket.headers, websocket.args), expected):
        await websocket.close(1008, "invalid or missing API key")
        return
    await websocket.accept()
    await serve_responses_socket(gateway)
