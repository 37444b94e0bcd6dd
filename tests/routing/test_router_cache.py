"""The routes' model router is kept between requests (building one per request cost ~0.1 ms, issue #20) and
rebuilt as soon as what it was built from changes: the settings (a config update), a catalog fetch, the
catalog's custom models."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_trio.config.store import ConfigStore
from codex_trio.errors import GatewayError
from codex_trio.routing.catalog import Catalog
from codex_trio.server.shutdown import ShutdownCoordinator
from codex_trio.server.turns import ProtocolDeps, model_router


def deps_on(tmp_path: Path) -> tuple[ProtocolDeps, ConfigStore, Catalog]:
    store = ConfigStore(tmp_path, environ={})
    store.ensure_first_start()
    catalog = Catalog()
    catalog.update("plus", {"models": [{"slug": "gpt-5.5"}]})
    deps = ProtocolDeps(config=store, catalog=catalog, shutdown=ShutdownCoordinator(),
                        current_dispatcher=lambda: None, started_at=0.0)
    return deps, store, catalog


def test_the_router_is_reused_while_nothing_changes(tmp_path: Path):
    deps, _, _ = deps_on(tmp_path)
    assert model_router(deps) is model_router(deps)


def test_a_config_update_applies_to_the_next_request(tmp_path: Path):
    deps, store, _ = deps_on(tmp_path)
    with pytest.raises(GatewayError):
        model_router(deps).resolve("mine")
    store.update({"model": {"aliases": {"mine": "gpt-5.5-high"}}})
    resolved = model_router(deps).resolve("mine")
    assert (resolved.model_id, resolved.effort) == ("gpt-5.5", "high")


def test_a_catalog_fetch_and_custom_models_apply_to_the_next_request(tmp_path: Path):
    deps, _, catalog = deps_on(tmp_path)
    with pytest.raises(GatewayError):
        model_router(deps).resolve("gpt-6")
    catalog.update("pro", {"models": [{"slug": "gpt-6"}]})
    assert model_router(deps).resolve("gpt-6").model_id == "gpt-6"
    catalog.custom = ["house-model"]
    assert model_router(deps).resolve("house-model").model_id == "house-model"
