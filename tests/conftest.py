"""Shared test helpers: a real gateway on 127.0.0.1:0 inside the test's nursery."""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Mapping

import pytest
import trio

from codex_trio.app import Gateway
from codex_trio.config.store import ConfigStore
from codex_trio.config.writer import update_local_file

# Captured real-client traffic, copied into the repository (tests/fixtures/README.md says from where).
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_path(*parts: str) -> Path:
    """A captured fixture file; a missing one fails the test (fixtures are part of the repository)."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing from tests/fixtures/")
    return path


@asynccontextmanager
async def running_gateway(data_dir: Path, *, local: Mapping[str, Any] | None = None,
                          environ: Mapping[str, str] | None = None, registrars=(), ollama_registrars=(),
                          install: bool = False, clock=None) -> AsyncIterator[tuple[Gateway, str]]:
    """Start a gateway on port 0; yields (gateway, base_url). `local` is written to local.yaml first;
    `clock` is the gateway's clock (tests run it on the simulator's)."""
    if local:
        update_local_file(data_dir / "local.yaml", local)
    store = ConfigStore(data_dir, environ=environ or {})
    store.ensure_first_start()
    gateway = Gateway(config=store, clock=clock or time.time)
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


def sim_settings(sim, *, real_hosts: bool = False) -> dict[str, Any]:
    """Local settings that point a gateway at a running simulator (backend, issuer, its CA). With
    `real_hosts` the gateway uses the real host names, pinned to the simulator by `tls.resolve`: the real
    SNI and Host go out, and the cookie jar sees the backend's own domain."""
    if real_hosts:
        return {"api": {"base_url": sim.urls.real_backend_base, "auth_base_url": sim.urls.real_auth_base},
                "tls": {"ca_file": str(sim.ca_file), "resolve": sim.urls.resolve}}
    return {"api": {"base_url": sim.urls.backend_base, "auth_base_url": sim.urls.auth_base},
            "tls": {"ca_file": str(sim.ca_file)}}


@asynccontextmanager
async def gateway_on_sim(data_dir: Path, sim, *, local: Mapping[str, Any] | None = None,
                         accounts: int | None = None, clock=None, real_hosts: bool = False
                         ) -> AsyncIterator[tuple[Gateway, str]]:
    """The whole gateway (every surface) on the simulator, with the sim's accounts logged in (by their
    tokens, as `POST /auth/accounts` would) and the model catalog fetched."""
    from codex_trio.config.writer import update_local_file as write_local
    from codex_trio.routing.catalog import refresh_catalog

    settings = sim_settings(sim, real_hosts=real_hosts)
    for section, values in (local or {}).items():
        settings[section] = {**settings.get(section, {}), **values}
    write_local(data_dir / "local.yaml", settings)
    async with running_gateway(data_dir, install=True, clock=clock) as (gateway, url):
        services = gateway.services
        for account in sim.accounts[:accounts]:
            await services.accounts.add_tokens(access_token=account.access_token,
                                               refresh_token=account.refresh_token, id_token=account.id_token)
        await refresh_catalog(services, services.catalog)
        yield gateway, url
