"""Anthropic Messages (+ count_tokens) and Gemini surfaces."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quart import Response, request

from ..protocols import anthropic, gemini
from ..protocols.stops import early_stops
from .api import json_response
from .pipeline import collect, stream_response
from ..providers.hooks import provider_reply
from .turns import body_bytes, json_reply, meta_for, model_router, open_turn, resolve

if TYPE_CHECKING:
    from ..app import Gateway


def count_tokens(text: str) -> int:
    from .. import _native  # o200k_base with the ranks embedded in the native module

    return _native.count_tokens(text)


def gemini_model_infos(gateway: "Gateway") -> list[dict[str, Any]]:
    catalog = gateway.services.catalog
    ids = model_router(gateway).catalog_ids()
    ordered = [m for m in catalog.model_ids() if m in ids] + sorted(ids - set(catalog.model_ids()))
    infos = []
    for model_id in ordered:
        entry = catalog.entry(model_id) or {}
        infos.append({"id": model_id, "display_name": entry.get("display_name"),
                      "description": entry.get("description"), "context_window": entry.get("context_window"),
                      "max_output_tokens": entry.get("max_output_tokens")})
    return infos


def register_anthropic(app: Any, gateway: "Gateway") -> None:
    @app.route("/", methods=["GET", "HEAD"])
    async def anthropic_root() -> Response:
        # Claude Code probes HEAD / before its first request.
        return json_response({"name": "codex-trio", "status": "ok"})

    @app.post("/v1/messages")
    async def messages() -> Response:
        body = await body_bytes()
        turn = anthropic.parse_request(body, session_id=request.headers.get("x-claude-code-session-id"))
        turn.inline_images = gateway.config.settings.model.images_as_markdown
        resolved = resolve(gateway, turn, fallback_to_default=True)
        meta = meta_for("msg_", resolved.display_name)
        if (reply := await provider_reply(gateway, app.nursery, turn, "anthropic", body,
                                          anthropic.StreamEncoder(turn, meta))) is not None:
            return reply
        upstream = await open_turn(gateway, turn)
        if turn.stream:
            return stream_response(gateway, app.nursery, upstream, anthropic.StreamEncoder(turn, meta))
        events, _ = await collect(upstream, early_stops(turn))
        return json_reply(anthropic.encode_response(turn, events, meta), upstream)

    @app.post("/v1/messages/count_tokens")
    async def messages_count_tokens() -> Response:
        return json_response(anthropic.count_tokens(await body_bytes(), count_tokens))


def register_gemini(app: Any, gateway: "Gateway") -> None:
    @app.get("/v1beta/models")
    async def gemini_models() -> Response:
        return json_response(gemini.list_models(gemini_model_infos(gateway)))

    @app.get("/v1beta/models/<path:name>")
    async def gemini_model(name: str) -> Response:
        model_router(gateway).resolve(name)  # unknown → 404 in Google's envelope
        info = next((i for i in gemini_model_infos(gateway) if i["id"] == name), {"id": name})
        return json_response(gemini.model_resource(info))

    @app.post("/v1beta/models/<path:tail>")
    async def gemini_generate(tail: str) -> Response:
        model_name, action = gemini.split_model_action(tail)
        body = await body_bytes()
        if action == "countTokens":
            return json_response(gemini.count_tokens(model_name, body, count_tokens))
        conversation = request.headers.get("x-conversation-id") or request.headers.get("x-session-id")
        turn = gemini.parse_request(model_name, body, action == "streamGenerateContent", conversation_id=conversation)
        resolved = resolve(gateway, turn, fallback_to_default=True)
        meta = meta_for("", resolved.model_id)
        if (reply := await provider_reply(gateway, app.nursery, turn, "gemini", body, gemini.StreamEncoder(
                turn, meta, sse=request.args.get("alt") == "sse"))) is not None:
            return reply
        upstream = await open_turn(gateway, turn)
        if turn.stream:
            sse = request.args.get("alt") == "sse"
            encoder = gemini.StreamEncoder(turn, meta, sse=sse)
            return stream_response(gateway, app.nursery, upstream, encoder,
                                   content_type="text/event-stream" if sse else "application/json")
        events, _ = await collect(upstream, early_stops(turn))
        return json_reply(gemini.encode_response(turn, events, meta), upstream)
