"""Anthropic Messages (+ count_tokens) and Gemini surfaces."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quart import Response, request

from ..protocols import anthropic, gemini
from ..protocols.stops import early_stops
from .api import json_response
from ..providers.hooks import provider_reply
from .turns import ProtocolDeps, body_bytes, json_reply, meta_for, model_router, protocol_deps, resolve

if TYPE_CHECKING:
    from .host import GatewayHost


def count_tokens(text: str) -> int:
    from .. import _native  # o200k_base with the ranks embedded in the native module

    return _native.count_tokens(text)


def gemini_model_infos(deps: ProtocolDeps) -> list[dict[str, Any]]:
    catalog = deps.catalog
    ids = model_router(deps).catalog_ids()
    ordered = [m for m in catalog.model_ids() if m in ids] + sorted(ids - set(catalog.model_ids()))
    infos = []
    for model_id in ordered:
        entry = catalog.entry(model_id) or {}
        infos.append({"id": model_id, "display_name": entry.get("display_name"),
                      "description": entry.get("description"), "context_window": entry.get("context_window"),
                      "max_output_tokens": entry.get("max_output_tokens")})
    return infos


def register_anthropic(app: Any, gateway: "GatewayHost") -> None:
    deps = protocol_deps(gateway)

    @app.route("/", methods=["GET", "HEAD"])
    async def anthropic_root() -> Response:
        # Claude Code probes HEAD / before its first request.
        return json_response({"name": "codex-trio", "status": "ok"})

    @app.post("/v1/messages")
    async def messages() -> Response:
        body = await body_bytes()
        turn = anthropic.parse_request(body, session_id=request.headers.get("x-claude-code-session-id"))
        turn.inline_images = deps.settings.model.images_as_markdown
        resolved = resolve(deps, turn, fallback_to_default=True)
        meta = meta_for("msg_", resolved.display_name)
        reply = await provider_reply(deps, turn, "anthropic", body, anthropic.StreamEncoder(turn, meta))
        if reply is not None:
            return reply
        if turn.stream:
            return await deps.stream(turn, anthropic.StreamEncoder(turn, meta))
        collected = await deps.collect(turn, early_stops(turn))
        return json_reply(anthropic.encode_response(turn, collected.events, meta), collected)

    @app.post("/v1/messages/count_tokens")
    async def messages_count_tokens() -> Response:
        return json_response(anthropic.count_tokens(await body_bytes(), count_tokens))


def register_gemini(app: Any, gateway: "GatewayHost") -> None:
    deps = protocol_deps(gateway)

    @app.get("/v1beta/models")
    async def gemini_models() -> Response:
        return json_response(gemini.list_models(gemini_model_infos(deps)))

    @app.get("/v1beta/models/<path:name>")
    async def gemini_model(name: str) -> Response:
        model_router(deps).resolve(name)  # unknown → 404 in Google's envelope
        info = next((i for i in gemini_model_infos(deps) if i["id"] == name), {"id": name})
        return json_response(gemini.model_resource(info))

    @app.post("/v1beta/models/<path:tail>")
    async def gemini_generate(tail: str) -> Response:
        model_name, action = gemini.split_model_action(tail)
        body = await body_bytes()
        if action == "countTokens":
            return json_response(gemini.count_tokens(model_name, body, count_tokens))
        conversation = request.headers.get("x-conversation-id") or request.headers.get("x-session-id")
        turn = gemini.parse_request(model_name, body, action == "streamGenerateContent", conversation_id=conversation)
        resolved = resolve(deps, turn, fallback_to_default=True)
        meta = meta_for("", resolved.model_id)
        if (reply := await provider_reply(deps, turn, "gemini", body, gemini.StreamEncoder(
                turn, meta, sse=request.args.get("alt") == "sse"))) is not None:
            return reply
        if turn.stream:
            sse = request.args.get("alt") == "sse"
            encoder = gemini.StreamEncoder(turn, meta, sse=sse)
            return await deps.stream(turn, encoder, content_type="text/event-stream" if sse else "application/json")
        collected = await deps.collect(turn, early_stops(turn))
        return json_reply(gemini.encode_response(turn, collected.events, meta), collected)
