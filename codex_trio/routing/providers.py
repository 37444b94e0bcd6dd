"""Which API-key provider, if any, serves a requested model name. Pure: no I/O, no settings object.

Order (docs/providers.md):
1. an explicit prefix `<label>/<model>` or `<label>:<model>` (also the vendor kind, `anthropic:claude-...`);
2. `model.aliases`, followed hop by hop (each hop checked as in 1 and 3);
3. a model the subscription accounts serve stays with them (the Codex catalog wins);
4. the providers' model lists, the lowest `priority` first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from ..providers.model import Provider

MAX_ALIAS_HOPS = 20


@dataclass(frozen=True)
class ProviderTarget:
    provider: Provider
    model: str  # the model id as the provider knows it

    @property
    def qualified_name(self) -> str:
        """How clients, model lists and client-key allow-lists name it."""
        return f"{self.provider.label}/{self.model}"


def _by_priority(providers: Iterable[Provider]) -> list[Provider]:
    return sorted((p for p in providers if p.enabled), key=lambda p: (p.priority, p.created_at))


def _explicit(name: str, providers: list[Provider]) -> ProviderTarget | None:
    for separator in ("/", ":"):
        head, sep, rest = name.partition(separator)
        if not sep or not rest:
            continue
        by_label = next((p for p in providers if p.label == head), None)
        by_kind = next((p for p in providers if p.kind == head), None)
        chosen = by_label or by_kind
        if chosen is not None:
            return ProviderTarget(chosen, rest)
    return None


def _listed(name: str, providers: list[Provider]) -> ProviderTarget | None:
    chosen = next((p for p in providers if name in p.models), None)
    return ProviderTarget(chosen, name) if chosen is not None else None


def resolve_provider(name: str, providers: Iterable[Provider], *, aliases: Mapping[str, str],
                     codex_models: frozenset[str] | set[str]) -> ProviderTarget | None:
    """The provider target of `name`, or None when the subscription accounts serve it (or nobody does: the
    model router then says so)."""
    enabled = _by_priority(providers)
    if not enabled:
        return None
    seen: set[str] = set()
    current = (name or "").strip()
    for _ in range(MAX_ALIAS_HOPS):
        if not current or current in seen:
            return None  # an alias cycle: the model router reports it
        seen.add(current)
        target = _explicit(current, enabled)
        if target is not None:
            return target
        if current in aliases:
            current = aliases[current]
            continue
        if current in codex_models:
            return None
        return _listed(current, enabled)
    return None


def provider_models(providers: Iterable[Provider]) -> list[str]:
    """Every model the enabled providers offer, prefixed with their label (for model lists)."""
    return [f"{p.label}/{m}" for p in _by_priority(providers) for m in p.models]
