"""The model catalog: fetched from the backend once per plan (the catalog is per plan), cached, refreshed
in the background, plus `model.custom_models` from the settings."""

from __future__ import annotations

import logging
import random
import time
from typing import TYPE_CHECKING, Any, Iterable, Protocol

import trio

from ..upstream.context import ModelTraits
from ..upstream.transport import UpstreamFailed, fetch_models

if TYPE_CHECKING:
    from ..accounts.model import Account
    from ..accounts.pool import AccountPool
    from ..accounts.store import AccountStore
    from .connector import UpstreamConnector

log = logging.getLogger(__name__)

REFRESH_SECONDS = 3600.0
RETRY_SECONDS = 10.0
HIDDEN_SLUGS = frozenset({"auto"})  # ChatGPT-only pseudo model


def _entries(payload: Any) -> list[dict[str, Any]]:
    """The list of model entries in the shapes the backend has used (`models`, `data`, nested categories)."""
    if isinstance(payload, list):
        return [e for e in payload if isinstance(e, dict)]
    if not isinstance(payload, dict):
        return []
    for key in ("models", "data"):
        if isinstance(payload.get(key), list):
            out: list[dict[str, Any]] = []
            for entry in payload[key]:
                if isinstance(entry, dict) and isinstance(entry.get("models"), list):
                    out.extend(_entries(entry["models"]))
                elif isinstance(entry, dict):
                    out.append(entry)
            return out
    return []


def slug_of(entry: dict[str, Any]) -> str | None:
    for key in ("slug", "id", "name"):
        if isinstance(entry.get(key), str):
            return entry[key]
    return None


class Catalog:
    def __init__(self) -> None:
        self.by_plan: dict[str, dict[str, dict[str, Any]]] = {}  # plan -> slug -> entry
        self.fetched_at: float | None = None
        self.custom: list[Any] = []  # model.custom_models from the settings (replaced, never edited in place)
        self.revision = 0  # counts fetched updates: what was derived from an older revision is stale

    def update(self, plan: str, payload: Any) -> list[str]:
        entries = {slug: e for e in _entries(payload) if (slug := slug_of(e)) and slug not in HIDDEN_SLUGS}
        self.by_plan[plan] = entries
        self.fetched_at = time.time()
        self.revision += 1
        return list(entries)

    def entry(self, model: str) -> dict[str, Any] | None:
        for entries in self.by_plan.values():
            if model in entries:
                return entries[model]
        return None

    def traits(self, model: str) -> ModelTraits:
        entry = self.entry(model)
        return ModelTraits.from_catalog(entry) if entry else ModelTraits()

    def model_ids(self) -> list[str]:
        """Every upstream model id any plan offers, in catalog priority order, then custom models."""
        seen: dict[str, tuple[int, str]] = {}
        for entries in self.by_plan.values():
            for slug, entry in entries.items():
                priority = entry.get("priority") if isinstance(entry.get("priority"), int) else 1000
                seen[slug] = min(seen.get(slug, (priority, slug)), (priority, slug))
        ids = [slug for slug, _ in sorted(seen.items(), key=lambda kv: kv[1])]
        for custom in self.custom:
            model_id = custom if isinstance(custom, str) else custom.id
            if model_id not in seen:
                ids.append(model_id)
        return ids

    def entries(self) -> list[dict[str, Any]]:
        merged: dict[str, dict[str, Any]] = {}
        for plan, entries in self.by_plan.items():
            for slug, entry in entries.items():
                info = merged.setdefault(slug, {**entry, "available_in_plans": []})
                info["available_in_plans"].append(plan)
        for custom in self.custom:
            info = {"slug": custom} if isinstance(custom, str) else {"slug": custom.id, **custom.model_dump(
                exclude={"id"}, exclude_none=True)}
            merged.setdefault(info["slug"], {**info, "custom": True})
        return [merged[slug] for slug in self.model_ids() if slug in merged]


def with_model_defaults(request: dict[str, Any], entry: dict[str, Any] | None) -> dict[str, Any]:
    """The request with what codex adds from the model's catalog entry (spec/chatgpt-mode.md §4):
    `text.verbosity` = `default_verbosity` when the model supports verbosity and the client chose none, and
    `reasoning.context: "all_turns"` on responses-lite models."""
    if not entry:
        return request
    default = entry.get("default_verbosity") if entry.get("support_verbosity") is True else None
    text = request.get("text") if isinstance(request.get("text"), dict) else {}
    if isinstance(default, str) and not text.get("verbosity"):
        request = {**request, "text": {"verbosity": default, **text}}
    reasoning = request.get("reasoning")
    if entry.get("use_responses_lite") is True and isinstance(reasoning, dict) and "context" not in reasoning:
        request = {**request, "reasoning": {**reasoning, "context": "all_turns"}}
    return request


def one_account_per_plan(accounts: Iterable["Account"]) -> dict[str, "Account"]:
    chosen: dict[str, "Account"] = {}
    for account in accounts:
        if account.enabled and account.status == "active" and account.plan and account.plan not in chosen:
            chosen[account.plan] = account
    return chosen


class CatalogSources(Protocol):
    """Where the catalog is fetched from (`services.Services` has these)."""

    store: "AccountStore | None"
    pool: "AccountPool | None"
    connector: "UpstreamConnector"


async def refresh_catalog(services: CatalogSources, catalog: Catalog) -> int:
    """Fetch each plan's catalog through one of its accounts (the pool's, which follow the store; read from the
    store only without a pool). Returns how many plans were fetched."""
    pool, connector = services.pool, services.connector
    if pool is not None:
        accounts = pool.accounts()
    else:
        accounts = await services.store.list() if services.store is not None else []
    fetched = 0
    for plan, account in one_account_per_plan(accounts).items():
        try:
            payload = await fetch_models(connector.clients_for(account).http, connector.identity, connector.endpoint,
                                         connector.auth_for(account))
        except (UpstreamFailed, OSError, Exception) as exc:  # noqa: BLE001 - a failed fetch keeps the old catalog
            log.warning("model catalog for plan %s not fetched: %s", plan, exc)
            continue
        models = catalog.update(plan, payload)
        if pool is not None:
            pool.set_plan_models(plan, models)
        fetched += 1
    return fetched


async def run_catalog(services: CatalogSources, catalog: Catalog, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Background job: fetch once before serving (best effort), then hourly (±15 %), sooner while empty."""
    await refresh_catalog(services, catalog)
    task_status.started()
    while True:
        delay = REFRESH_SECONDS * random.uniform(0.85, 1.15) if catalog.by_plan else RETRY_SECONDS
        await trio.sleep(delay)
        await refresh_catalog(services, catalog)
