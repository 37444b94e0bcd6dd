"""The long-lived services behind the routes: upstream identity and native clients, the account store and
pool. Built from the settings; started as background jobs of the root nursery (ready before the first
request)."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

import trio

from .config.schema import Settings
from .upstream.identity import Identity, Platform, load_fingerprint, presented_release
from .upstream.transport import Clients, Endpoint

if TYPE_CHECKING:
    from .accounts.pool import PoolConfig
    from .config.store import Change
    from .dispatch.catalog import Catalog
    from .dispatch.dispatcher import Dispatcher
    from .accounts.cookies_store import AccountCookies
    from .accounts.model import Account
    from .accounts.pool import AccountPool
    from .accounts.proxies import ProxyPool
    from .accounts.proxy_health import ProxyChecker
    from .accounts.proxy_service import ProxyService
    from .accounts.quota_poller import QuotaWarnings
    from .accounts.refresh import TokenRefresher
    from .accounts.service import AccountService
    from .accounts.store import AccountStore
    from .app import Gateway
    from .cookies import CookieJar
    from .native import Client
    from .telemetry.service import Telemetry

log = logging.getLogger(__name__)

ACCOUNTS_DB = "accounts.sqlite3"


def build_identity(settings: Settings) -> Identity:
    """The fingerprint profile of the release `client.version` names, with the settings' platform / arch /
    client name applied. A version without a verified profile is never presented: the newest verified
    release is (and `presented_release` says why)."""
    fingerprint = load_fingerprint()
    platform = fingerprint.platform.model_copy(update={
        key: value for key, value in (("os_name", settings.client.platform), ("arch", settings.client.arch))
        if value})
    fingerprint = fingerprint.model_copy(update={"platform": platform})
    release, problem = presented_release(fingerprint, settings.client.version)
    if problem:
        log.warning("%s", problem)
    client_name = settings.client.app_server_client_name if settings.client.identity == "app-server" else None
    return Identity.from_config(fingerprint, settings.client.identity, release=release, client_name=client_name,
                                platform=Platform.resolve(platform))


def pool_config(settings: Settings) -> "PoolConfig":
    """The pool's part of the settings (rebuilt on every change, so they apply without restart)."""
    from .accounts.pool import PoolConfig, Strategy

    return PoolConfig(strategy=Strategy(settings.auth.rotation_strategy),
                      max_concurrent_per_account=settings.auth.max_concurrent_per_account,
                      affinity_ttl_seconds=settings.auth.affinity_ttl_minutes * 60,
                      skip_exhausted=settings.quota.skip_exhausted,
                      warning_thresholds=tuple(settings.quota.warning_thresholds),
                      default_cooldown_seconds=settings.auth.rate_limit_backoff_seconds)


def build_endpoint(settings: Settings) -> Endpoint:
    return Endpoint(settings.api.base_url.rstrip("/"), settings.api.auth_base_url.rstrip("/"))


class ClientCache:
    """One pooled native client per (TLS profile, egress proxy, decompression), shared by every account that
    uses it. `decompress` follows the presented release (Codex 0.171.0 accepts zstd/gzip, 0.169.0 nothing)."""

    def __init__(self, *, ca_file: str | None, resolve: dict[str, str] | None = None,
                 connect_timeout: float = 10.0) -> None:
        self._ca_file = ca_file
        self._resolve = dict(resolve or {})
        self._connect_timeout = connect_timeout
        self._clients: dict[tuple[str, str | None, bool], "Client"] = {}

    def get(self, profile: str, proxy: str | None, *, decompress: bool = False) -> "Client":
        from .native import Client

        key = (profile, proxy, decompress)
        if key not in self._clients:
            self._clients[key] = Client(profile=profile, proxy=proxy, ca_file=self._ca_file, resolve=self._resolve,
                                        connect_timeout=self._connect_timeout, decompress=decompress)
        return self._clients[key]

    def for_checks(self, proxy: str | None, *, read_timeout: float, decompress: bool = False) -> "Client":
        """A client for proxy health checks, kept apart from the accounts' pooled connections (its own read
        timeout makes it a separate native pool): with `connection: close` on each check, every check connects
        and handshakes through the proxy instead of reusing a tunnel opened before the proxy died."""
        from .native import Client

        return Client(profile="openssl", proxy=proxy, ca_file=self._ca_file, resolve=self._resolve,
                      connect_timeout=self._connect_timeout, read_timeout=read_timeout, decompress=decompress)

    def for_proxy(self, proxy: str | None, *, decompress: bool = False) -> Clients:
        # The real client's HTTPS goes through OpenSSL; its Responses WebSocket through rustls.
        return Clients(http=self.get("openssl", proxy, decompress=decompress),
                       websocket=self.get("rustls", proxy, decompress=decompress))


@dataclass
class Services:
    settings_source: Any  # ConfigStore: read `.settings` at use time so hot reloads apply
    identity: Identity
    endpoint: Endpoint
    clients: ClientCache
    store: "AccountStore | None" = None
    refresher: "TokenRefresher | None" = None
    pool: "AccountPool | None" = None
    accounts: "AccountService | None" = None
    oauth_http: Any = None  # the issuer client (OAuthHttp) logins use
    quota_warnings: "QuotaWarnings | None" = None  # threshold crossings, for /auth/quota/warnings
    cookies: "AccountCookies | None" = None
    proxies: "ProxyPool | None" = None  # the egress proxy pool and each account's route through it
    proxy_admin: "ProxyService | None" = None  # what the admin API and CLI do with it
    clock: Callable[[], float] = time.time  # the gateway's clock (`Gateway.clock`; tests use the simulator's)
    catalog: "Catalog" = field(default_factory=lambda: _new_catalog())
    dispatcher: "Dispatcher | None" = None
    telemetry: "Telemetry | None" = None  # usage, request log, metrics, client keys (telemetry.install)
    extras: dict[str, Any] = field(default_factory=dict)

    def proxy_for(self, account: "Account") -> str | None:
        """The proxy URL every upstream call of this account goes through (None: direct); raises
        `proxies.NoRoute` when its pool route has no usable proxy (never falls back to direct)."""
        if self.proxies is not None:
            return self.proxies.route_for(account)
        from .accounts.proxies import DIRECT, NoRoute

        if account.proxy is None:
            return self.settings_source.settings.tls.proxy_url
        if account.proxy == DIRECT or "://" in account.proxy:
            return None if account.proxy == DIRECT else account.proxy
        raise NoRoute(account.id, "the proxy pool is not open")

    def clients_for(self, account: "Account") -> Clients:
        return self.clients.for_proxy(self.proxy_for(account), decompress=self.identity.decompress)

    def cookie_jar_for(self, account: "Account") -> "CookieJar":
        """The account's Cloudflare cookies as a jar (send `jar.header_for(url)`, feed `jar.capture(url,
        response_headers)`, then `save_cookies`)."""
        assert self.cookies is not None, "the accounts are not open"
        return self.cookies.jar_for(account)

    async def save_cookies(self, account: "Account", jar: "CookieJar") -> None:
        """Persist the jar in the account record when it changed."""
        assert self.cookies is not None, "the accounts are not open"
        await self.cookies.save(account, jar)


def _new_catalog() -> "Catalog":
    from .dispatch.catalog import Catalog

    return Catalog()


def build_services(gateway: "Gateway") -> Services:
    return build_services_for(gateway.config, clock=gateway.clock)


def build_services_for(config: Any, *, clock: Callable[[], float] = time.time) -> Services:
    """The services of one ConfigStore, without a gateway (the CLI's `login` / `accounts` use this)."""
    settings = config.settings
    return Services(settings_source=config, identity=build_identity(settings), endpoint=build_endpoint(settings),
                    clients=ClientCache(ca_file=settings.tls.ca_file, resolve=settings.tls.resolve), clock=clock)


def usage_fetcher(services: Services):
    """`GET /wham/usage` for one account (tokens made fresh first): the pool's verify_quota and the
    AccountService's quota probe. A refusal or a transport failure becomes a 502 GatewayError that names
    the account."""
    from .errors import ErrorKind, GatewayError
    from .native import UpstreamError
    from .upstream.context import AccountAuth
    from .upstream.transport import UpstreamFailed, fetch_usage

    async def fetch(account: "Account"):
        assert services.refresher is not None
        account = await services.refresher.ensure_fresh(account)
        try:
            return await fetch_usage(services.clients_for(account).http, services.identity, services.endpoint,
                                     AccountAuth(account.tokens.access_token, account.account_id or ""),
                                     clock=services.clock)
        except (UpstreamFailed, UpstreamError) as exc:
            raise GatewayError(502, f"the usage check of account {account.id} failed: {exc}", ErrorKind.UPSTREAM,
                               code="quota_check_failed") from None

    return fetch


def _account_client(services: Services, account: "Account") -> Callable[[], "Client"]:
    """The HTTPS client of the account's egress route, asked at each call. No usable route is a ProxyError:
    nothing was sent (a refresh token is never spent on a guess), and the account is never sent direct."""
    from .accounts.proxies import NoRoute
    from .native import ProxyError

    def client() -> "Client":
        try:
            return services.clients_for(account).http
        except NoRoute as exc:
            raise ProxyError(exc.message) from None

    return client


def proxy_check_url(settings: Settings) -> str:
    """Where proxy checks read the exit IP: `proxies.check_url`, else /cdn-cgi/trace on the backend's host."""
    if settings.proxies.check_url:
        return settings.proxies.check_url
    parts = urlsplit(settings.api.base_url)
    return f"{parts.scheme}://{parts.netloc}/cdn-cgi/trace"


def proxy_checker(services: Services, config: Any, proxies: "ProxyPool", on_change) -> "ProxyChecker":
    """The pool's health checker; every setting is read at use, so changes apply to the next check."""
    from .accounts.proxy_health import ProxyChecker

    def settings():
        return config.settings.proxies

    return ProxyChecker(proxies, lambda url: services.clients.for_checks(url, read_timeout=settings().check_timeout_seconds,
                                                                        decompress=services.identity.decompress),
                        check_url=lambda: proxy_check_url(config.settings),
                        failure_threshold=lambda: settings().failure_threshold,
                        interval=lambda: settings().check_interval_seconds,
                        max_backoff=lambda: settings().max_backoff_seconds,
                        timeout=lambda: settings().check_timeout_seconds, on_change=on_change, clock=services.clock)


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
    clock = services.clock
    store = await AccountStore.open_at(StoreLocation.of(config), clock=clock)
    try:
        proxies = ProxyPool(ProxyStore.of(store, config.data_dir), default_proxy=lambda: config.settings.tls.proxy_url,
                            clock=clock)
        await proxies.load()
        services.proxies = proxies
        # Asked at every call: the issuer client follows the presented release (what it accepts) and the egress
        # proxy setting as they change.
        http = NativeOAuthHttp(lambda: services.clients.get("openssl", config.settings.tls.proxy_url,
                                                            decompress=services.identity.decompress))
        refresher = TokenRefresher(store, http, identity=services.identity,
                                   token_url=token_url(services.endpoint.auth_url),
                                   margin_seconds=settings.auth.refresh_margin_seconds, clock=clock,
                                   max_in_flight=lambda: config.settings.auth.max_refreshes_in_flight,
                                   http_for=lambda account: NativeOAuthHttp(_account_client(services, account)))
        fetch_quota = usage_fetcher(services)
        warnings = QuotaWarnings(clock)
        pool = AccountPool(store, refresher, pool_config(settings), clock=clock, verify_quota=fetch_quota,
                           on_warning=warnings)
        services.store, services.refresher, services.pool, services.oauth_http = store, refresher, pool, http
        services.quota_warnings, services.cookies = warnings, AccountCookies(store, pool)
        services.accounts = AccountService(store, pool, refresher, http, token_url=token_url(services.endpoint.auth_url),
                                           fetch_quota=fetch_quota, clock=clock)
        services.proxy_admin = ProxyService(proxies, services.accounts)
        services.proxy_admin.checker = proxy_checker(services, config, proxies, services.proxy_admin.rebalance)

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
        with trio.CancelScope(shield=True):
            await store.close()


async def run_accounts(gateway: "Gateway", *, task_status=trio.TASK_STATUS_IGNORED) -> None:
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
                await services.proxy_admin.rebalance()  # auto accounts imported since the last run get a proxy
                await nursery.start(checker.run)
                await nursery.start(services.proxies.run)
                await nursery.start(services.pool.run)
                await nursery.start(services.refresher.run)
                await nursery.start(poller.run)
                task_status.started()
        finally:
            stop_following()


async def run_dispatch(gateway: "Gateway", *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Background job (after the accounts job): the model catalog, then the dispatcher; idle upstream
    sockets are closed as conversations go quiet."""
    from .dispatch.catalog import run_catalog
    from .dispatch.dispatcher import Dispatcher

    services: Services = gateway.services
    services.catalog.custom = list(gateway.config.settings.model.custom_models)
    services.dispatcher = Dispatcher(services, services.catalog, settings_source=gateway.config)
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
                    services.identity = build_identity(change.new)
                    if services.refresher is not None:
                        services.refresher.identity = services.identity
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
        with trio.CancelScope(shield=True):
            await services.dispatcher.close()
