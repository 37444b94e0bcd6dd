"""The Ollama API on its own listener: /api/* translated here, /v1/* served by the same OpenAI routes as
the main listener (in process, so no gateway key is needed — the Ollama API has none). Host, Origin and CORS
checks are the app's (`ollama_app`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from quart import Response

from ..errors import GatewayError
from ..protocols import ollama
from ..protocols.stops import early_stops
from ..routing.models import ResolvedModel
from ..turn import Turn
from ..upstream.body import reasoning_effort_of
from ..upstream.events import Completed, NormalizedEvent, TextDelta
from .api import json_response
from .openai_routes import register_openai
from .turns import ProtocolDeps, body_bytes, json_reply, meta_for, model_router, protocol_deps, resolve

if TYPE_CHECKING:
    from .host import GatewayHost

KEEP_LOADED_SECONDS = 24 * 3600
DEFAULT_THINK_EFFORT = "medium"
WEAKEST_EFFORT = "none"
LATEST_TAG = ":latest"


class TimedEncoder:
    """Ollama's done line reports durations; this measures them around the sans-IO encoder."""

    def __init__(self, encoder: ollama.StreamEncoder, started: float) -> None:
        self._encoder = encoder
        self._started = started
        self._accepted: float | None = None  # the turn had started upstream: its first event reaches us
        self._first_token: float | None = None

    def _timings(self) -> ollama.Timings:
        now = time.monotonic()
        return ollama.Timings.from_marks(self._started, self._accepted or now, self._first_token, now)

    def feed(self, event: NormalizedEvent) -> bytes:
        if self._accepted is None:
            self._accepted = time.monotonic()
        if self._first_token is None and isinstance(event, TextDelta):
            self._first_token = time.monotonic()
        timings = self._timings() if isinstance(event, Completed) else None
        return self._encoder.feed(event, now_iso=ollama.iso_timestamp(time.time()), timings=timings)

    @property
    def stopped(self) -> bool:
        return self._encoder.stopped

    def heartbeat(self) -> bytes:
        return self._encoder.heartbeat()

    def fail(self, error: GatewayError) -> bytes:
        return self._encoder.fail(error)

    def finish(self) -> bytes:
        return self._encoder.finish(now_iso=ollama.iso_timestamp(time.time()), timings=self._timings())


def ollama_models(deps: ProtocolDeps) -> list[ollama.OllamaModel]:
    catalog = deps.catalog
    router = model_router(deps)
    names = [m for m in catalog.model_ids()] + sorted(router.catalog_ids() - set(catalog.model_ids()))
    names += [alias for alias in deps.settings.model.aliases if alias not in names]
    models = []
    for name in names:
        try:
            resolved = router.resolve(name, fallback_to_default=True)
        except GatewayError:  # a broken alias (a cycle) is left out; using it by name gives the reason
            continue
        entry = catalog.entry(resolved.model_id) or {}
        levels = entry.get("supported_reasoning_levels") or []
        efforts = tuple(level.get("effort") if isinstance(level, dict) else level for level in levels
                        if isinstance(level, (dict, str)))
        modalities = entry.get("input_modalities")
        models.append(ollama.OllamaModel(
            name=name, context_length=entry.get("context_window") or 131072,
            vision=not isinstance(modalities, list) or "image" in modalities,
            reasoning_efforts=efforts, default_effort=entry.get("default_reasoning_level"),
            display_name=entry.get("display_name")))
    return models


def register_ollama(app: Any, gateway: "GatewayHost") -> None:
    deps = protocol_deps(gateway)
    started_iso = ollama.iso_timestamp(deps.started_at)

    @app.get("/api/tags")
    async def tags() -> Response:
        return json_response(ollama.tags_body(ollama_models(deps), modified_at=started_iso))

    @app.post("/api/show")
    async def show() -> Response:
        return json_response(ollama.show_body(await body_bytes(), ollama_models(deps), modified_at=started_iso,
                                              disable_vision=deps.settings.ollama.disable_vision))

    @app.get("/api/ps")
    async def ps() -> Response:
        expires = ollama.iso_timestamp(time.time() + KEEP_LOADED_SECONDS)
        return json_response(ollama.ps_body(ollama_models(deps), expires_at=expires))

    @app.post("/api/pull")
    async def pull() -> Response:
        content_type, body = ollama.pull_reply(await body_bytes(), ollama_models(deps))
        return Response(body, content_type=content_type)

    def resolve_tagged(turn: Turn) -> ResolvedModel:
        """Resolve the model; Ollama's implicit `:latest` tag ("gpt-5.5:latest", as /api/show and /api/tags
        accept it) is dropped when the full name is unknown."""
        try:
            return resolve(deps, turn, fallback_to_default=False)
        except GatewayError as error:
            if error.status != 404 or not turn.requested_model.endswith(LATEST_TAG):
                raise
        turn.requested_model = turn.requested_model[: -len(LATEST_TAG)]
        return resolve(deps, turn, fallback_to_default=False)

    def apply_think(turn: Turn, resolved: ResolvedModel) -> None:
        """`think` true / false without a level, unless the model name or the config already chose an effort."""
        think = turn.options.get("think")
        if think is None or reasoning_effort_of(turn.request) is not None:
            return
        router = model_router(deps)
        if think:
            # The model's default effort, with its reasoning summary requested (without `reasoning` the
            # backend sends no summary and the client would see no thinking).
            entry = deps.catalog.entry(resolved.model_id) or {}
            turn.reasoning_effort = entry.get("default_reasoning_level") or DEFAULT_THINK_EFFORT
        elif router.supported_efforts(resolved.model_id):
            turn.reasoning_effort = WEAKEST_EFFORT  # fitted by the router to the weakest the model supports
        else:
            return  # unknown efforts: leave the backend's default rather than guess a level it may refuse
        router.apply(turn, resolved)

    async def serve(endpoint: str) -> Response:
        started = time.monotonic()
        turn = ollama.parse_request(await body_bytes(), endpoint=endpoint)
        asked_for = turn.requested_model
        resolved = resolve_tagged(turn)
        apply_think(turn, resolved)
        meta = meta_for("", asked_for)  # Ollama answers with the name as the client wrote it
        if turn.options.get("load_only"):
            return json_response(ollama.load_reply(turn, meta, now_iso=ollama.iso_timestamp(time.time())))
        if turn.stream:
            encoder = TimedEncoder(ollama.StreamEncoder(turn, meta), started)
            return await deps.stream(turn, encoder, content_type=ollama.NDJSON_CONTENT_TYPE)
        collected = await deps.collect(turn, early_stops(turn))
        timings = ollama.Timings.from_marks(started, collected.opened_at, None, time.monotonic())
        return json_reply(ollama.encode_response(turn, collected.events, meta,
                                                 now_iso=ollama.iso_timestamp(time.time()), timings=timings),
                          collected)

    @app.post("/api/chat")
    async def chat() -> Response:
        return await serve("chat")

    @app.post("/api/generate")
    async def generate() -> Response:
        return await serve("generate")

    register_openai(app, gateway)
