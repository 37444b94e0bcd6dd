"""Model resolution (pure logic; the catalog is handed in, never fetched here).

A client name is `<base>[-<effort>][-<tier>]`: effort ∈ EFFORTS, tier ∈ TIERS. An exact alias or catalog id wins
over suffix parsing (so a catalog id that happens to end in `-high` stays whole). Aliases may chain and may carry
their own suffixes; the client's suffixes win over the alias target's. Unknown bases are a 404 unless the caller
asks for the default-model fallback (Messages/Gemini/Responses clients often send foreign model names).

Precedence for effort and tier: the protocol's own field (Turn) > name suffix > configured default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from codex_trio.errors import GatewayError, not_found
from codex_trio.turn import Turn

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")  # weakest → strongest
TIERS = ("fast", "flex")
_MAX_ALIAS_HOPS = 20


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    model_id: str  # what goes upstream as `model`
    effort: str | None  # suffix effort, else the configured default
    service_tier: str | None  # suffix tier, else the configured default (client-facing: fast/flex/...)
    display_name: str  # id + "-<effort>" + "-<tier>" from the name's suffixes; echoed to Chat/Anthropic clients
    known: bool = True  # False when the name fell back to the default model


def _split_suffixes(name: str) -> tuple[str, str | None, str | None]:
    """Strip at most one tier suffix from the end, then at most one effort suffix."""
    base, effort, tier = name, None, None
    for candidate in TIERS:
        if base.endswith("-" + candidate) and len(base) > len(candidate) + 1:
            base, tier = base[: -len(candidate) - 1], candidate
            break
    for candidate in EFFORTS:
        if base.endswith("-" + candidate) and len(base) > len(candidate) + 1:
            base, effort = base[: -len(candidate) - 1], candidate
            break
    return base, effort, tier


class ModelRouter:
    def __init__(
        self,
        default_model: str,
        default_effort: str | None = None,
        default_service_tier: str | None = None,
        aliases: Mapping[str, str] | None = None,
        catalog: Iterable[str] | Callable[[], Iterable[str]] = (),
        custom_models: Iterable[str | Mapping[str, Any]] = (),
        efforts_for: Callable[[str], Iterable[str] | None] | None = None,
    ) -> None:
        """`catalog`: the model ids (or a function returning the current ones, for a live catalog).
        `efforts_for`: the reasoning efforts a catalog model supports (None when unknown), used to fit a
        requested effort to the model; custom models declare theirs in `supported_reasoning_efforts`."""
        self.default_model = default_model
        self.default_effort = default_effort
        self.default_service_tier = default_service_tier
        self.aliases = dict(aliases or {})
        self._catalog = catalog if callable(catalog) else frozenset(catalog)
        self._efforts_for = efforts_for
        self._custom_ids: set[str] = set()
        self._custom_efforts: dict[str, tuple[str, ...]] = {}
        for entry in custom_models:
            if isinstance(entry, str):
                self._custom_ids.add(entry)
            elif isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
                self._custom_ids.add(entry["id"])
                efforts = entry.get("supported_reasoning_efforts")
                if isinstance(efforts, list):
                    self._custom_efforts[entry["id"]] = tuple(e for e in efforts if e in EFFORTS)
        # A fixed catalog's ids are united with the custom ones once, not on every resolution.
        self._fixed_ids = None if callable(self._catalog) else self._catalog | self._custom_ids

    # -- catalog -------------------------------------------------------------------------------------------

    def catalog_ids(self) -> frozenset[str]:
        if self._fixed_ids is not None:
            return self._fixed_ids
        return frozenset(self._catalog()) | self._custom_ids

    def supported_efforts(self, model_id: str) -> tuple[str, ...] | None:
        """Efforts a model takes, when known; None = unknown, send as asked."""
        if model_id in self._custom_efforts:
            return self._custom_efforts[model_id]
        known = self._efforts_for(model_id) if self._efforts_for is not None else None
        return tuple(e for e in known if e in EFFORTS) if known is not None else None

    # -- resolution ----------------------------------------------------------------------------------------

    def resolve(self, name: str, *, fallback_to_default: bool = False) -> ResolvedModel:
        """Resolve a client model name. Unknown names raise a 404 GatewayError unless `fallback_to_default`."""
        name = (name or "").strip()
        if not name:
            return ResolvedModel(self.default_model, self.default_effort, self.default_service_tier,
                                 self.default_model)
        catalog = self.catalog_ids()
        found = self._lookup(name, catalog, [])
        if found is None:
            if not fallback_to_default:
                raise _model_error(f"The model '{name}' does not exist or you do not have access to it.",
                                   "model_not_found")
            base, effort, tier = _split_suffixes(name)
            found = (self.default_model, effort, tier)
            known = False
        else:
            known = True
        model_id, effort, tier = found
        display = model_id + (f"-{effort}" if effort else "") + (f"-{tier}" if tier else "")
        return ResolvedModel(model_id, effort or self.default_effort, tier or self.default_service_tier, display,
                             known)

    def _lookup(self, name: str, catalog: frozenset[str], chain: list[str]) -> tuple[str, str | None, str | None] | None:
        """(model id, suffix effort, suffix tier) or None when unknown. Follows aliases (cycle → 404)."""
        if name in chain:
            raise _model_error(f"Model alias cycle: {' -> '.join(chain + [name])}. Fix model.aliases in the config.",
                               "model_alias_cycle")
        if len(chain) >= _MAX_ALIAS_HOPS:
            raise _model_error(f"Model alias chain for '{chain[0]}' is longer than {_MAX_ALIAS_HOPS} hops.",
                               "model_alias_cycle")
        if name in self.aliases:
            target = self._lookup(self.aliases[name], catalog, chain + [name])
            # A resolved alias is used even if its target is not (yet) in the catalog.
            return target if target is not None else (self.aliases[name], None, None)
        if name in catalog:
            return name, None, None
        base, effort, tier = _split_suffixes(name)
        if base == name:
            return None
        inner = self._lookup(base, catalog, chain + [name]) if base in self.aliases else (
            (base, None, None) if base in catalog else None)
        if inner is None:
            return None
        model_id, inner_effort, inner_tier = inner
        return model_id, effort or inner_effort, tier or inner_tier

    # -- applying to a Turn -----------------------------------------------------------------------------------

    def apply(self, turn: Turn, resolved: ResolvedModel) -> Turn:
        """Set request.model, reasoning and service_tier on `turn` (in place; returned for chaining)."""
        request = turn.request
        request["model"] = resolved.model_id
        effort = turn.reasoning_effort or resolved.effort
        if effort:
            effort = self._fit_effort(resolved.model_id, effort)
            reasoning = dict(request.get("reasoning") or {})
            reasoning["effort"] = effort
            reasoning.setdefault("summary", "auto")
            request["reasoning"] = reasoning
        tier = turn.service_tier or resolved.service_tier
        if tier in ("auto", "default"):
            tier = None
        if tier:
            request["service_tier"] = "priority" if tier == "fast" else tier
        else:
            request.pop("service_tier", None)
        return turn

    def _fit_effort(self, model_id: str, effort: str) -> str:
        """The nearest effort the model supports (preferring the stronger one on a tie); as asked when unknown."""
        supported = self.supported_efforts(model_id)
        if not supported or effort in supported:
            return effort
        wanted = EFFORTS.index(effort)
        return min(supported, key=lambda e: (abs(EFFORTS.index(e) - wanted), -EFFORTS.index(e)))



def _model_error(message: str, code: str) -> GatewayError:
    err = not_found(message, code=code)
    err.param = "model"
    return err
