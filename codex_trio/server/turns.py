"""What every protocol route does around its adapter: read the body, resolve the model, open the upstream
turn, and answer streamed or collected. Protocol differences stay in the adapters."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any, Mapping

from quart import Response, request

from ..protocols.meta import ResponseMeta
from ..routing.models import ModelRouter, ResolvedModel
from ..telemetry import stage_timing
from ..turn import Turn
from .api import json_response

if TYPE_CHECKING:
    from ..app import Gateway
    from ..dispatch.dispatcher import OpenedTurn

DEFAULT_TOOLS_OFF = frozenset({"off", "false", "0", "none", "disable", "disabled"})
WEB_SEARCH_TYPES = frozenset({"web_search", "web_search_preview", "web_search_20250305"})


def model_router(gateway: "Gateway") -> ModelRouter:
    """Built per request from the live settings and catalog, so config edits apply at once."""
    settings = gateway.config.settings.model
    catalog = gateway.services.catalog

    def known_ids() -> set[str]:
        # Before the first catalog fetch the configured default counts as known. Alias targets are not ids:
        # they may carry suffixes ("gpt-5.5-high"), which the router splits off; an alias whose target is
        # unknown is still used as written.
        return set(catalog.model_ids()) | {settings.default}

    def efforts(model_id: str) -> list[str] | None:
        entry = catalog.entry(model_id)
        levels = (entry or {}).get("supported_reasoning_levels") or (entry or {}).get("supported_reasoning_efforts")
        if not isinstance(levels, list):
            return None
        return [level["effort"] if isinstance(level, dict) else level for level in levels
                if isinstance(level, (dict, str))]

    custom = [c if isinstance(c, str) else c.model_dump() for c in settings.custom_models]
    return ModelRouter(settings.default, settings.default_reasoning_effort, settings.default_service_tier,
                       settings.aliases, known_ids, custom, efforts)


def resolve(gateway: "Gateway", turn: Turn, *, fallback_to_default: bool,
            headers: Mapping[str, str] | None = None, passthrough: bool = False) -> ResolvedModel:
    """Resolve the client's model name and apply it (model, effort, tier) and the default tools to the turn.
    `passthrough` (Responses) keeps the client's own instructions placement."""
    router = model_router(gateway)
    resolved = router.resolve(turn.requested_model, fallback_to_default=fallback_to_default)
    router.apply(turn, resolved)
    add_default_tools(gateway, turn, request.headers if headers is None else headers)
    if not passthrough:
        place_system_prompt(turn, gateway.config.settings.model.system_prompt_strategy)
    stage_timing.mark("routed")
    return resolved


def place_system_prompt(turn: Turn, strategy: str) -> None:
    """`model.system_prompt_strategy`: keep the client's system text in `instructions`, or send it as the
    first input message with the developer / system role."""
    instructions = turn.request.get("instructions")
    if strategy == "instructions" or not isinstance(instructions, str) or not instructions:
        return
    role = "developer" if strategy == "developer_inline" else "system"
    message = {"type": "message", "role": role, "content": [{"type": "input_text", "text": instructions}]}
    turn.request["input"] = [message, *(turn.request.get("input") or [])]
    del turn.request["instructions"]


def add_default_tools(gateway: "Gateway", turn: Turn, headers: Mapping[str, str]) -> None:
    """`model.default_tools` (hosted tools such as web_search) unless the client opts out by header."""
    if (headers.get("x-codex-default-tools", "").lower() in DEFAULT_TOOLS_OFF
            or headers.get("x-codex-no-default-tools", "").lower() in ("1", "true", "yes")):
        return
    wanted = gateway.config.settings.model.default_tools
    if not wanted:
        return
    tools = list(turn.request.get("tools") or [])
    present = {t.get("type") for t in tools if isinstance(t, dict)}
    for name in wanted:
        same = WEB_SEARCH_TYPES if name in WEB_SEARCH_TYPES else {name}
        if not present & same:
            tools.append({"type": name})
    turn.request["tools"] = tools


def meta_for(prefix: str, model: str) -> ResponseMeta:
    return ResponseMeta(id=f"{prefix}{uuid.uuid4().hex[:24]}", model=model, created=int(time.time()))


async def body_bytes() -> bytes:
    body = await request.get_data(cache=False)
    stage_timing.mark("body")
    return body


async def open_turn(gateway: "Gateway", turn: Turn) -> "OpenedTurn":
    return await gateway.services.dispatcher.open(turn)


def json_reply(body: dict[str, Any], upstream: "OpenedTurn") -> Response:
    return json_response(body, headers=dict(upstream.forward_headers))
