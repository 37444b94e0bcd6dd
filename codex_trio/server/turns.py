"""What every protocol route does around its adapter: read the body, resolve the model, and serve the turn
streamed or collected (`pipeline.py`). Protocol differences stay in the adapters.

The routes receive `ProtocolDeps`, the few collaborators they use, instead of the whole gateway."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from quart import Response, request

from ..dispatch.pump import TurnPump
from ..errors import ErrorKind, GatewayError
from ..protocols.meta import ResponseMeta
from ..providers.hooks import open_turn_with_providers, resolve_for_provider
from ..routing.models import ModelRouter, ResolvedModel
from ..telemetry import stage_timing
from ..turn import Turn
from .api import json_response
from .pipeline import CollectedTurn, StreamEncoder, collect_turn, stream_turn

if TYPE_CHECKING:
    from .host import GatewayHost
    from ..config.schema import ModelSettings, Settings
    from ..routing.catalog import Catalog
    from ..dispatch.dispatcher import Dispatcher
    from ..dispatch.upstream_turn import UpstreamTurn
    from ..providers.service import ProviderService
    from .shutdown import ShutdownCoordinator


class SettingsSource(Protocol):
    """Anything with the live `settings` (the ConfigStore): read at use, so edits apply at once."""

    @property
    def settings(self) -> "Settings": ...


@dataclass
class ProtocolDeps:
    """What the protocol routes (OpenAI, Anthropic, Gemini, Ollama, the Responses WebSocket) use."""

    config: SettingsSource
    catalog: "Catalog"
    shutdown: "ShutdownCoordinator"
    # The dispatcher, once the dispatch job runs (None before: requests get a 503).
    current_dispatcher: Callable[[], "Dispatcher | None"]
    started_at: float
    providers: "ProviderService | None" = None  # the API-key providers (providers/), when installed
    pump: TurnPump = field(init=False)  # serves every turn of these routes (dispatch/pump.py)
    # The model router of the current settings and catalog, with what it was built from (`model_router`).
    _router: "tuple[tuple[Any, ...], ModelRouter] | None" = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.pump = TurnPump(self.open_turn, self.shutdown)

    @property
    def settings(self) -> "Settings":
        return self.config.settings

    def dispatcher(self) -> "Dispatcher":
        dispatcher = self.current_dispatcher()
        if dispatcher is None:
            raise GatewayError(503, "The gateway is still starting; retry in a moment.", ErrorKind.OVERLOADED)
        return dispatcher

    async def open_turn(self, turn: Turn) -> "UpstreamTurn":
        """The turn's upstream: an API-key provider's when its model is one, else an account's (with fallback
        to a provider when configured; docs/providers.md)."""
        return await open_turn_with_providers(self, turn, lambda turn: self.dispatcher().open(turn))

    async def stream(self, turn: Turn, encoder: StreamEncoder, **options: Any) -> Response:
        """Answer with the turn's stream (`pipeline.stream_turn`); GatewayError when it cannot open."""
        options.setdefault("heartbeat_seconds", self.settings.server.heartbeat_seconds)
        return await stream_turn(self.pump, turn, encoder, **options)

    async def collect(self, turn: Turn, stop_sequences: list[str] | None = None) -> CollectedTurn:
        return await collect_turn(self.pump, turn, stop_sequences)


def protocol_deps(gateway: "GatewayHost") -> ProtocolDeps:
    """The routes' dependencies, taken from the composition root once per app."""
    services = gateway.services
    return ProtocolDeps(config=gateway.config, catalog=services.catalog, shutdown=gateway.shutdown,
                        current_dispatcher=lambda: services.dispatcher, started_at=gateway.started_at,
                        providers=services.providers)

DEFAULT_TOOLS_OFF = frozenset({"off", "false", "0", "none", "disable", "disabled"})
WEB_SEARCH_TYPES = frozenset({"web_search", "web_search_preview", "web_search_20250305"})


def model_router(deps: ProtocolDeps) -> ModelRouter:
    """The router for the live settings and catalog, so config edits apply at once. Building one costs about
    0.1 ms (the catalog's ids sorted, custom models dumped), so it is kept until its sources change: a config
    change swaps in a new `settings.model` object, a catalog fetch bumps `catalog.revision`, and the catalog's
    custom models are replaced as a list."""
    settings = deps.settings.model
    catalog = deps.catalog
    cached = deps._router
    if cached is not None:
        (built_settings, built_revision, built_custom), router = cached
        if built_settings is settings and built_revision == catalog.revision and built_custom is catalog.custom:
            return router
    router = _build_router(settings, catalog)
    deps._router = ((settings, catalog.revision, catalog.custom), router)
    return router


def _build_router(settings: "ModelSettings", catalog: "Catalog") -> ModelRouter:
    # Before the first catalog fetch the configured default counts as known. Alias targets are not ids: they
    # may carry suffixes ("gpt-5.5-high"), which the router splits off; an alias whose target is unknown is
    # still used as written.
    known_ids = frozenset(catalog.model_ids()) | {settings.default}

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


def resolve(deps: ProtocolDeps, turn: Turn, *, fallback_to_default: bool,
            headers: Mapping[str, str] | None = None, passthrough: bool = False) -> ResolvedModel:
    """Resolve the client's model name and apply it (model, effort, tier) and the default tools to the turn.
    `passthrough` (Responses) keeps the client's own instructions placement."""
    provider = resolve_for_provider(deps, turn)  # a model an API-key provider serves (docs/providers.md)
    if provider is not None:
        return provider
    router = model_router(deps)
    resolved = router.resolve(turn.requested_model, fallback_to_default=fallback_to_default)
    router.apply(turn, resolved)
    add_default_tools(deps, turn, request.headers if headers is None else headers)
    if not passthrough:
        place_system_prompt(turn, deps.settings.model.system_prompt_strategy)
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


def add_default_tools(deps: ProtocolDeps, turn: Turn, headers: Mapping[str, str]) -> None:
    """`model.default_tools` (hosted tools such as web_search) unless the client opts out by header."""
    if (headers.get("x-codex-default-tools", "").lower() in DEFAULT_TOOLS_OFF
            or headers.get("x-codex-no-default-tools", "").lower() in ("1", "true", "yes")):
        return
    wanted = deps.settings.model.default_tools
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


def json_reply(body: dict[str, Any], collected: CollectedTurn) -> Response:
    return json_response(body, headers=dict(collected.forward_headers))
