"""Plugging the telemetry into a gateway: the service on `services.telemetry`, its background job (started
with `nursery.start` in the root nursery, before the listeners) and its routes on both listeners."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from .service import Telemetry

if TYPE_CHECKING:
    from ..app import Gateway


def install_telemetry(gateway: "Gateway") -> Telemetry:
    from .routes import register_telemetry, register_telemetry_ollama

    services = gateway.services
    # the accounts' clock, read at use time (tests move it with the simulator's)
    telemetry = Telemetry(gateway.config, clock=lambda: services.connector.clock())
    telemetry.metrics.bind(accounts=lambda: services.pool.accounts() if services.pool is not None else (),
                           open_streams=lambda: gateway.shutdown.open_streams,
                           ollama_up=lambda: gateway.ollama.listener.status.state == "running",
                           store_available=lambda: services.store is None or services.store.health.available)
    services.telemetry = telemetry
    gateway.background_jobs.insert(0, run_telemetry)  # first: keys and budgets are loaded before any request
    gateway.route_registrars.append(register_telemetry)
    gateway.ollama_route_registrars.append(register_telemetry_ollama)
    return telemetry


async def run_telemetry(gateway: "Gateway", *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    await gateway.services.telemetry.run(task_status=task_status)
