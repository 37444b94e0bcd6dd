"""Building the long-lived components behind the routes — the upstream connector, the account store, pool and
refresher, the dispatcher — and running them as background jobs of the root nursery (ready before the first
request). `app.Gateway` stays the composition root; `surfaces.install_surfaces` calls in here."""

from __future__ import annotations

import logging
import time
from functools import partial
from urllib.parse import urlsplit
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

import trio

from .config.schema import Settings
from .routing.catalog import Catalog
from .dispatch.connector import UpstreamConnector, build_identity

if TYPE_CHECKING:
    from .accounts.pool import PoolConfig
    from .config.store import Change
    from .dispatch.dispatcher import Dispatcher
    from .accounts.model import Account
    from .accounts.pool import AccountPool
    from .accounts.proxies import ProxyPool
    from .accounts.proxy_health import ProxyChecker
    from .accounts.proxy_service import ProxyService
    from .accounts.quota_poller import QuotaWarnings
    from .accounts.refresh import TokenRefresher
    from .accounts.service import AccountService
    from .accounts.store import AccountStore
    from .server.host import GatewayHost
    from .providers.service import ProviderService
    from .server.dashboard_sessions import SessionBook
    from .native import Client
    from .server.accounts_api import LoginSessions
    from .telemetry.service import Telemetry

log = logging.getLogger(__name__)

ACCOUNTS_DB = "accounts.sqlite3"
# Shielded clean-ups at shutdown, each with a deadline: a store that cannot close, or sockets that do not answer
# their close, must not keep the process from stopping.
CLOSE_STORE_SECONDS = 10.0
CLOSE_SOCKETS_SECONDS = 5.0


def _shielded_for(seconds: float) -> trio.CancelScope:
    return trio.CancelScope(shield=True, deadline=trio.current_time() + seconds)


def pool_config(settings: Settings) -> "PoolConfig":
    """The pool's part of the settings (rebuilt on every change, so they apply without restart)."""
    from .accounts.pool import PoolConfig, Strategy

    return PoolConfig(strategy=Strategy(settings.auth.rotation_strategy),
                      max_concurrent_per_account=settings.auth.max_concurrent_per_account,
                      affinity_ttl_seconds=settings.auth.affinity_ttl_minutes * 60,
                      skip_exhausted=settings.quota.skip_exhausted,
                      warning_thresholds=tuple(settings.quota.warning_thresholds),
                      default_cooldown_seconds=settings.auth.rate_limit_backoff_seconds)


@dataclass
class Services:
    """What the composition root builds for the feature surfaces, each a typed component of its own: the
    upstream connector (identity, endpoint, clients, clock, cookies: how to reach the backend as an account), the
    account components opened by `open_accounts`, the model catalog and the dispatcher built from (pool,
    connector, catalog) by `run_dispatch`. Components receive the pieces they use, never this object; the routes
    get theirs through `server.turns.protocol_deps` / `server.admin_deps.admin_deps` (typed against
    `server.host.Components`). The connector's identity, endpoint and clock are read where they live:
    `services.connector.identity`."""

    settings_source: Any  # ConfigStore: read `.settings` at use time so hot reloads apply
    connector: UpstreamConnector
    store: "AccountStore | None" = None
    refresher: "TokenRefresher | None" = None
    pool: "AccountPool | None" = None
    accounts: "AccountService | None" = None
    oauth_http: Any = None  # the issuer client (OAuthHttp) logins use
    quota_warnings: "QuotaWarnings | None" = None  # threshold crossings, for /auth/quota/warnings
    proxy_admin: "ProxyService | None" = None  # what the admin API and CLI do with the egress proxy pool
    catalog: Catalog = field(default_factory=Catalog)
    dispatcher: "Dispatcher | None" = None
    telemetry: "Telemetry | None" = None  # usage, request log, metrics, client keys (telemetry.install)
    logins: "LoginSessions | None" = None  # the admin API's OAuth logins in progress (server/accounts_api.py)
    providers: "ProviderService | None" = None  # the API-key providers (providers.hooks.install_providers)
    dashboard_sessions: "SessionBook | None" = None  # the dashboard's log-in sessions (server/dashboard.py)


def build_services(gateway: "GatewayHost") -> Services:
    return build_services_for(gateway.config, clock=gateway.clock)


def build_services_for(config: Any, *, clock: Callable[[], float] = time.time) -> Services:
    """The services of one ConfigStore, without a gateway (the CLI's `login` / `accounts` use this)."""
    return Services(settings_source=config, connector=UpstreamConnector.of(config, clock=clock))


def usage_fetcher(refresher: "TokenRefresher", connector: UpstreamConnector):
    """`GET /wham/usage` for one account (tokens made fresh first): the pool's verify_quota and the
    AccountService's quota probe. A refusal or a transport failure becomes a 502 GatewayError that names
    the account."""
    from .errors import ErrorKind, GatewayError
    from .native import UpstreamError
    from .upstream.transport import UpstreamFailed, fetch_usage

    async def fetch(account: "Account"):
        account = await refresher.ensure_fresh(account)
        try:
            return await fetch_usage(connector.clients_for(account).http, connector.identity, connector.endpoint,
                                     connector.auth_for(account), clock=connector.clock)
        except (UpstreamFailed, UpstreamError) as exc:
            raise GatewayError(502, f"the usage check of account {account.id} failed: {exc}", ErrorKind.UPSTREAM,
                               code="quota_check_failed") from None

    return fetch


def _account_client(connector: UpstreamConnector, account: "Account") -> Callable[[], "Client"]:
    """The HTTPS client of the account's egress route, asked at each call. No usable route is a ProxyError:
    nothing was sent (a refresh token is never spent on a guess), and the account is never sent direct."""
    from .accounts.proxies import NoRoute
    from .native import ProxyError

    def client() -> "Client":
        try:
            return connector.clients_for(account).http
        except NoRoute as exc:
            raise ProxyError(exc.message) from None

    return client


def proxy_check_url(settings: Settings) -> str:
    """Where proxy checks read the exit IP: `proxies.check_url`, else /cdn-cgi/trace on the backend's host."""
    if settings.proxies.check_url:
        return settings.proxies.check_url
    parts = urlsplit(settings.api.base_url)
    return f"{parts.scheme}://{parts.netloc}/cdn-cgi/trace"


def proxy_checker(connector: UpstreamConnector, config: Any, proxies: "ProxyPool", on_change) -> "ProxyChecker":
    """The pool's health checker; every setting is read at use, so changes apply to the next check."""
    from .accounts.proxy_health import ProxyChecker

    def settings():
        return config.settings.proxies

    return ProxyChecker(proxies, lambda url: connector.clients.for_checks(url, read_timeout=settings().check_timeout_seconds,
                                                                         decompress=connector.identity.decompress),
                        check_url=lambda: proxy_check_url(config.settings),
                        failure_threshold=lambda: settings().failure_threshold,
                        interval=lambda: settings().check_interval_seconds,
                        max_backoff=lambda: settings().max_backoff_seconds,
                        timeout=lambda: settings().check_timeout_seconds, on_change=on_change, clock=connector.clock)


@asynccontextmanager
async def open_accounts(services: Services, config: Any) -> AsyncIterator["AccountService"]:
    """Open the account store of `config.data_dir` and build refresher, pool and service onto `services`;
    the store is closed on exit. Shared by the gateway's `run_accounts` and the CLI."""
    from .accounts.cookies_store import AccountCookies
    from .accounts.native_http import NativeOAuthHttp
    from .accounts.oauth import token_url
    from .accounts.pool import AccountPool
    from .accounts.proxies import ProxyPool, ProxyStore
    from .accounts.proxy_service import ProxyService
    from .accounts.quota_poller import QuotaWarnings
    from .accounts.refresh import TokenRefresher
    from .accounts.service import AccountService
    from .accounts.store import AccountStore
    from .store.location import StoreLocation

    settings = config.settings
    connector = services.connector
    clock = connector.clock
    store = await AccountStore.open_at(StoreLocation.of(config), clock=clock)
    try:
        proxies = ProxyPool(ProxyStore.of(store, config.data_dir), default_proxy=lambda: config.settings.tls.proxy_url,
                            clock=clock)
        await proxies.load()
        connector.proxies = proxies
        # Asked at every call: the issuer client follows the presented release (what it accepts) and the egress
        # proxy setting as they change.
        http = NativeOAuthHttp(lambda: connector.clients.get("openssl", config.settings.tls.proxy_url,
                                                             decompress=connector.identity.decompress))
        refresher = TokenRefresher(store, http, identity=connector.identity,
                                   token_url=token_url(connector.endpoint.auth_url),
                                   margin_seconds=settings.auth.refresh_margin_seconds, clock=clock,
                                   max_in_flight=lambda: config.settings.auth.max_refreshes_in_flight,
                                   http_for=lambda account: NativeOAuthHttp(_account_client(connector, account)))
        fetch_quota = usage_fetcher(refresher, connector)
        warnings = QuotaWarnings(clock)
        pool = AccountPool(store, refresher, pool_config(settings), clock=clock, verify_quota=fetch_quota,
                           on_warning=warnings)
        refresher.known_accounts = pool.accounts
        services.store, services.refresher, services.pool, services.oauth_http = store, refresher, pool, http
        services.quota_warnings, connector.cookies = warnings, AccountCookies(store, pool)
        services.accounts = AccountService(store, pool, refresher, http, token_url=token_url(connector.endpoint.auth_url),
                                           fetch_quota=fetch_quota, clock=clock)
        services.proxy_admin = ProxyService(proxies, services.accounts)
        services.proxy_admin.checker = proxy_checker(connector, config, proxies, services.proxy_admin.rebalance)

        def follow_settings(change: "Change") -> None:
            if {"auth", "quota"} & change.sections():
                pool.reconfigure(pool_config(change.new))
                refresher.margin_seconds = change.new.auth.refresh_margin_seconds

        stop_following = config.subscribe(follow_settings)
        try:
            yield services.accounts
        finally:
            stop_following()
    finally:
        with _shielded_for(CLOSE_STORE_SECONDS):  # the last writes land even when shutdown cancels the job
            await store.close()


async def run_accounts(gateway: "GatewayHost", *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Background job: open the account store, build refresher, pool and service, keep them running with
    the quota poller (every `quota.refresh_interval_minutes`, and when a cooldown ends)."""
    from .accounts.quota_poller import QuotaPoller

    services: Services = gateway.services
    async with open_accounts(services, gateway.config):
        gateway.drain_hooks.append(services.refresher.drain)  # SIGTERM waits for refreshes in flight
        poller = QuotaPoller(services.pool, interval=lambda: gateway.config.settings.quota.refresh_interval_minutes * 60)
        checker = services.proxy_admin.checker

        def on_change(change: "Change") -> None:
            if "quota" in change.sections():
                poller.reschedule()
            if "proxies" in change.sections():
                checker.reschedule()

        stop_following = gateway.config.subscribe(on_change)
        try:
            async with trio.open_nursery() as nursery:
                # One read of every account, shared by the rebalance and the pool: each read builds every
                # Account (5,000 accounts: 0.3 s, and memory that stays with the process once freed).
                accounts = await services.store.list()
                await services.proxy_admin.rebalance(accounts)  # auto accounts imported since the last run get a proxy
                await nursery.start(checker.run)
                await nursery.start(services.connector.proxies.run)
                await nursery.start(partial(services.pool.run, accounts=accounts))
                del accounts  # the pool holds them now
                await nursery.start(services.refresher.run)
                await nursery.start(partial(poller.run, first_round_after=gateway.serving))
                task_status.started()
        finally:
            stop_following()


async def run_dispatch(gateway: "GatewayHost", *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Background job (after the accounts job): the model catalog, then the dispatcher; idle upstream
    sockets are closed as conversations go quiet."""
    from .routing.catalog import run_catalog
    from .dispatch.dispatcher import Dispatcher

    services: Services = gateway.services
    assert services.pool is not None, "run_dispatch starts after run_accounts"
    services.catalog.custom = list(gateway.config.settings.model.custom_models)
    services.dispatcher = Dispatcher(services.pool, services.connector, services.catalog,
                                     settings_source=gateway.config)
    services.dispatcher.conversations.limit = gateway.descriptors.upstream_sockets
    if services.proxy_admin is not None:  # an account moved to another egress route: retire its open sockets
        services.proxy_admin.route_listeners.append(
            lambda account_ids: [services.dispatcher.conversations.forget_account(i) for i in account_ids])
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(services.dispatcher.conversations.run_closer)
            def on_change(change) -> None:
                services.catalog.custom = list(change.new.model.custom_models)
                if "client" in change.sections():
                    # A new version or profile: new requests present the new identity; open upstream
                    # sockets were opened under the old one, so they are retired.
                    services.connector.identity = build_identity(change.new)
                    if services.refresher is not None:
                        services.refresher.identity = services.connector.identity
                    nursery.start_soon(services.dispatcher.conversations.close_all)

            stop_following = gateway.config.subscribe(on_change)
            try:
                await nursery.start(run_catalog, services, services.catalog)
                task_status.started()
                while True:
                    await trio.sleep(60)
                    await services.dispatcher.conversations.close_idle(max_idle=15 * 60)
            finally:
                stop_following()
    finally:
        with _shielded_for(CLOSE_SOCKETS_SECONDS):  # close handshakes, each bounded, all at once
            await services.dispatcher.close()
