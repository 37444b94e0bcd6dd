"""What the listeners' apps and the route registrars see of the composition root (`app.Gateway`) and of the
components it builds (`services.Services`), typed without importing either: `app.py` and `services.py` import
`server/`, never the other way round. Routes get their typed dependencies from here once per app
(`turns.protocol_deps`, `admin_deps.admin_deps`), never the whole gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    import trio

    from ..accounts.pool import AccountPool
    from ..accounts.proxy_service import ProxyService
    from ..accounts.service import AccountService
    from ..accounts.store import AccountStore
    from ..config.store import ConfigStore
    from ..dispatch.connector import UpstreamConnector
    from ..dispatch.dispatcher import Dispatcher
    from ..providers.service import ProviderService
    from ..routing.catalog import Catalog
    from ..telemetry.service import Telemetry
    from .accounts_api import LoginSessions
    from .dashboard_sessions import SessionBook
    from .ollama_listener import OllamaController
    from .shutdown import ShutdownCoordinator


class Components(Protocol):
    """What the dependency builders read of the built components (`services.Services` is one). The account
    components and the dispatcher are None until their background jobs have opened them."""

    connector: "UpstreamConnector"
    catalog: "Catalog"
    store: "AccountStore | None"
    pool: "AccountPool | None"
    accounts: "AccountService | None"
    proxy_admin: "ProxyService | None"
    oauth_http: Any
    dispatcher: "Dispatcher | None"
    telemetry: "Telemetry | None"
    providers: "ProviderService | None"
    logins: "LoginSessions | None"
    dashboard_sessions: "SessionBook | None"


class GatewayHost(Protocol):
    config: "ConfigStore"
    shutdown: "ShutdownCoordinator"
    services: Components  # built by `surfaces.install_surfaces`
    ollama: "OllamaController"
    started_at: float
    serving: "trio.Event"  # set once the main listener accepts
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
