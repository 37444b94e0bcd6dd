"""Where providers plug into a request's path, each called from one clearly named line elsewhere:

* `install_providers` (surfaces): the service, its background job, its routes;
* `resolve_for_provider` (server/turns.resolve): a model a provider serves skips the Codex model router;
* `open_turn_with_providers` (server/turns.open_turn): a provider's model opens a provider turn; with fallback
  on, a turn no account could start goes to the fallback provider model;
* `provider_reply` (the protocol routes): the same protocol on both sides passes through untranslated;
* `listed_provider_models` (GET /v1/models): the providers' models, prefixed with their label.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import trio
from quart import Response, request

from ..errors import ErrorKind, GatewayError
from ..routing.models import ResolvedModel
from ..routing.providers import ProviderTarget, provider_models, resolve_provider
from ..telemetry.recorder import current_recorder
from ..telemetry.trace import ALLOW_LIST_MODEL
from ..turn import Turn

if TYPE_CHECKING:
    from ..server.host import GatewayHost
    from ..server.turns import ProtocolDeps
    from .service import ProviderService

log = logging.getLogger(__name__)

TARGET_OPTION = "provider_target"  # Turn.options key: the provider that serves this turn
# Turn.options key: the request as the client's adapter built it, before the Codex model router and the
# dispatcher added what only the backend takes (suffix efforts, `reasoning.summary` / `.context`, a default
# `text.verbosity`, default hosted tools, `client_metadata`); a fallback provider is sent this instead.
CLIENT_REQUEST_OPTION = "client_request"
FALLBACK_HEADER = "x-codex-trio-fallback"
# Failures that say "no account could serve it now", not "the request is wrong": these may fall back.
FALLBACK_KINDS = frozenset({ErrorKind.RATE_LIMIT, ErrorKind.OVERLOADED, ErrorKind.UPSTREAM, ErrorKind.TIMEOUT})
# The client protocols that have a provider wire of their own.
CLIENT_WIRES = {"openai_chat": "chat", "responses": "responses", "anthropic": "anthropic", "gemini": "gemini"}


def providers_of(gateway: "GatewayHost") -> "ProviderService | None":
    return gateway.services.providers


def install_providers(gateway: "GatewayHost") -> None:
    from ..server.providers_api import register_providers_api
    from ..store.location import StoreLocation
    from .service import ProviderService

    settings = lambda: gateway.config.settings.providers  # noqa: E731 - read at use: changes apply at once
    service = ProviderService(gateway.config.data_dir, StoreLocation.of(gateway.config),
                              clock=lambda: gateway.services.connector.clock(),
                              timeout=lambda: settings().timeout_seconds,
                              key_cooldown=lambda: settings().key_cooldown_seconds)
    gateway.services.providers = service
    gateway.background_jobs.append(run_providers)
    gateway.route_registrars.append(register_providers_api)


async def run_providers(gateway: "GatewayHost", *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    service = providers_of(gateway)
    assert service is not None
    await trio.to_thread.run_sync(service.open)
    try:
        task_status.started()
        await service.follow()
    finally:
        await service.aclose()


def _codex_models(deps: "ProtocolDeps") -> frozenset[str]:
    from ..server.turns import model_router

    return model_router(deps).catalog_ids() | {deps.settings.model.default}


def target_for(deps: "ProtocolDeps", name: str, *, codex_first: bool = True) -> ProviderTarget | None:
    service = deps.providers
    providers = service.providers() if service is not None else []
    if not providers:  # the common case costs one lookup
        return None
    return resolve_provider(name, providers, aliases=deps.settings.model.aliases,
                            codex_models=_codex_models(deps) if codex_first else frozenset())


def listed_provider_models(deps: "ProtocolDeps") -> list[str]:
    """`<label>/<model>` of every enabled provider's models, for the model lists clients pick from."""
    return provider_models(deps.providers.providers()) if deps.providers is not None else []


def resolve_for_provider(deps: "ProtocolDeps", turn: Turn) -> ResolvedModel | None:
    """When a provider serves the requested model: point the turn at it and return what the routes echo."""
    target = target_for(deps, turn.requested_model)
    if target is None:
        if deps.settings.providers.fallback:
            # shallow is enough: the router and the dispatcher replace nested values, never edit them
            turn.options[CLIENT_REQUEST_OPTION] = dict(turn.request)
        return None
    turn.request["model"] = target.model
    turn.options[TARGET_OPTION] = target
    turn.options[ALLOW_LIST_MODEL] = target.qualified_name
    return ResolvedModel(target.model, None, None, turn.requested_model or target.model)


def refuse_provider_compaction(turn: Turn) -> None:
    """Compaction (`/v1/responses/compact`) is the backend's own feature: a provider model cannot do it."""
    target: ProviderTarget | None = turn.options.get(TARGET_OPTION)
    if target is not None:
        raise GatewayError(400, f"{turn.requested_model} is served by API-key provider {target.provider.label}, which "
                           "has no compaction; compact with a subscription model (e.g. model.default).",
                           ErrorKind.INVALID_REQUEST, code="compaction_unsupported", param="model")


def provider_request(turn: Turn) -> dict[str, Any]:
    """What a provider is sent for `turn`: the client's request (see CLIENT_REQUEST_OPTION) with the effort the
    client asked for in its protocol's own field, and nothing the Codex backend path added."""
    request = dict(turn.options.get(CLIENT_REQUEST_OPTION) or turn.request)
    request["model"] = turn.request.get("model")
    if turn.reasoning_effort:
        request["reasoning"] = {**(request.get("reasoning") or {}), "effort": turn.reasoning_effort}
    return request


def _fallback_target(deps: "ProtocolDeps", turn: Turn) -> ProviderTarget | None:
    settings = deps.settings.providers
    if not settings.fallback:
        return None
    name = (settings.fallback_models.get(turn.requested_model) or settings.fallback_models.get(turn.request.get("model"))
            or settings.fallback_model)
    return target_for(deps, name, codex_first=False) if name else None


async def open_turn_with_providers(deps: "ProtocolDeps", turn: Turn, open_on_accounts: Callable[[Turn], Awaitable[Any]]):
    """The turn's upstream: its provider, else the accounts; with fallback on, a turn no account could start
    goes to the fallback provider model (the original error stands when there is none, or it is misnamed)."""
    from .relay import open_provider_turn

    service = deps.providers
    target: ProviderTarget | None = turn.options.get(TARGET_OPTION)
    if target is not None and service is not None:
        recorder = current_recorder()
        recorder.admit(turn)
        return await open_provider_turn(service, target.provider, provider_request(turn), target.model, recorder)
    try:
        return await open_on_accounts(turn)
    except GatewayError as exc:
        fallback = _fallback_target(deps, turn) if exc.kind in FALLBACK_KINDS else None
        if fallback is None or service is None:
            if exc.kind in FALLBACK_KINDS and deps.settings.providers.fallback:
                log.warning("provider fallback is on but no enabled provider serves its model for %s; fix "
                            "providers.fallback_model / fallback_models", turn.requested_model)
            raise
        label = fallback.qualified_name
        log.info("no account could serve %s (%s): falling back to %s", turn.requested_model, exc.code or exc.kind,
                 label)
        return await open_provider_turn(service, fallback.provider, provider_request(turn), fallback.model,
                                        current_recorder(),
                                        [(FALLBACK_HEADER, label)])


async def provider_reply(deps: "ProtocolDeps", turn: Turn, protocol: str, raw_body: bytes,
                         encoder: Any) -> Response | None:
    """The passthrough answer when the client's protocol is the provider's; None otherwise (the route goes on,
    and `open_turn` translates). `encoder` gives the terminal error frame and the heartbeat of the protocol."""
    from .passthrough import passthrough

    target: ProviderTarget | None = turn.options.get(TARGET_OPTION)
    service = deps.providers
    if target is None or service is None or CLIENT_WIRES.get(protocol) != target.provider.wire:
        return None
    return await passthrough(deps, service, target, turn, raw_body, request.headers,
                             terminate=encoder.fail, heartbeat=encoder.heartbeat(),
                             gemini_sse=request.args.get("alt") == "sse")
