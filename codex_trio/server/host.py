"""What the listeners' apps and the route registrars see of the composition root (`app.Gateway`), typed without
importing it: `app.py` imports `server/`, never the other way round."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    import trio

    from ..config.store import ConfigStore
    from .shutdown import ShutdownCoordinator


class GatewayHost(Protocol):
    config: "ConfigStore"
    shutdown: "ShutdownCoordinator"
    services: Any  # the feature components built by `surfaces.install_surfaces` (`services.Services`)
    started_at: float
    nursery: "trio.Nursery | None"
    route_registrars: list[Callable[[Any, "GatewayHost"], None]]
    ollama_route_registrars: list[Callable[[Any, "GatewayHost"], None]]
    drain_hooks: list[Any]
    clock: Callable[[], float]  # the one clock of accounts, cooldowns and quota
    descriptors: Any  # the DescriptorBudget (server/descriptors.py)

    def health(self) -> dict[str, Any]: ...
    def listener_grace(self) -> float: ...
    def on_descriptors_exhausted(self) -> None: ...
    def descriptor_stats(self) -> dict[str, Any]: ...
