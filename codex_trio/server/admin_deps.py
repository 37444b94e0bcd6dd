"""What the admin-side routes use (settings, accounts and logins, proxies, providers, usage and logs, the
dashboard), instead of the whole gateway: `AdminDeps`, built once per app by `admin_deps`.

The account store, pool and proxy pool are opened by a background job (`services.run_accounts`), so the routes
read them through accessors: None until then, and the routes answer 503."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ErrorKind, GatewayError
from ..store.health import store_report
from .dashboard_sessions import SessionBook

if TYPE_CHECKING:
    from ..accounts.pool import AccountPool
    from ..accounts.proxy_service import ProxyService
    from ..accounts.service import AccountService
    from ..config.store import ConfigStore
    from ..dispatch.connector import UpstreamConnector
    from ..providers.service import ProviderService
    from ..telemetry.service import Telemetry
    from .accounts_api import LoginSessions
    from .host import GatewayHost
    from .ollama_listener import OllamaController
    from .shutdown import ShutdownCoordinator


@dataclass
class AdminDeps:
    config: "ConfigStore"  # read `.settings` at use: edits apply at once
    shutdown: "ShutdownCoordinator"
    ollama: "OllamaController"
    connector: "UpstreamConnector"  # the presented identity and the issuer, for logins and the release watch
    current_pool: Callable[[], "AccountPool | None"]
    current_accounts: Callable[[], "AccountService | None"]
    current_proxies: Callable[[], "ProxyService | None"]
    sessions: SessionBook  # the dashboard's log-in sessions
    logins: "LoginSessions"  # the OAuth logins in progress
    telemetry: "Telemetry | None" = None
    providers: "ProviderService | None" = None
    store_report: Callable[[], dict[str, Any]] = dict  # the store's health (store/health.py), for the overview

    def accounts(self) -> "AccountService":
        service = self.current_accounts()
        if service is None:
            raise GatewayError(503, "the account store is not open yet; try again in a moment", ErrorKind.OVERLOADED)
        return service


def sessions_of(gateway: "GatewayHost") -> SessionBook:
    """The gateway's one session book (it outlives the app, which is rebuilt when the listener restarts)."""
    services = gateway.services
    if services.dashboard_sessions is None:
        services.dashboard_sessions = SessionBook(
            clock=time.time, ttl_seconds=lambda: gateway.config.settings.session.ttl_minutes * 60)
    return services.dashboard_sessions


def logins_of(gateway: "GatewayHost") -> "LoginSessions":
    """The gateway's one table of logins in progress (it outlives the app too)."""
    from ..accounts.login import OAuthClient
    from .accounts_api import LoginSessions

    services = gateway.services
    if services.logins is None:
        connector = services.connector
        services.logins = LoginSessions(
            oauth_client=lambda: OAuthClient(services.oauth_http, identity=connector.identity,
                                             issuer=connector.endpoint.auth_url),
            accounts=lambda: services.accounts, nursery=lambda: gateway.nursery)
    return services.logins


def admin_deps(gateway: "GatewayHost") -> AdminDeps:
    """The admin routes' dependencies, taken from the composition root once per app."""
    services = gateway.services
    return AdminDeps(config=gateway.config, shutdown=gateway.shutdown, ollama=gateway.ollama,
                     connector=services.connector, current_pool=lambda: services.pool,
                     current_accounts=lambda: services.accounts, current_proxies=lambda: services.proxy_admin,
                     sessions=sessions_of(gateway), logins=logins_of(gateway), telemetry=services.telemetry,
                     providers=services.providers, store_report=lambda: store_report(services))
