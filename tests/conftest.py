"""Shared test helpers: a real gateway on 127.0.0.1:0 inside the test's nursery."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Mapping

import pytest
import trio

from codex_trio.app import Gateway
from codex_trio.config.store import ConfigStore
from codex_trio.config.writer import update_local_file

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_path(*parts: str) -> Path:
    """A file of the read-only shared/ folder beside the checkout (fixtures, specs, tools)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: the shared/ folder must sit beside the checkout")
    return path


@asynccontextmanager
async def running_gateway(data_dir: Path, *, local: Mapping[str, Any] | None = None,
                          environ: Mapping[str, str] | None = None, registrars=(), ollama_registrars=(),
                          install: bool = False) -> AsyncIterator[tuple[Gateway, str]]:
    """Start a gateway on port 0; yields (gateway, base_url). `local` is written to local.yaml first."""
    if local:
        update_local_file(data_dir / "local.yaml", local)
    store = ConfigStore(data_dir, environ=environ or {})
    store.ensure_first_start()
    gateway = Gateway(config=store)
    if install:
        from codex_trio.surfaces import install_surfaces

        install_surfaces(gateway)
    gateway.route_registrars.extend(registrars)
    gateway.ollama_route_registrars.extend(ollama_registrars)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(lambda task_status: gateway.run(port=0, task_status=task_status))
        try:
            yield gateway, url
        finally:
            gateway.stop_requested.set()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir(mode=0o700)
    return path


def api_key(gateway: Gateway) -> str:
    key = gateway.config.settings.server.proxy_api_key
    assert key
    return key
