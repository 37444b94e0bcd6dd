"""The upstream connector: everything needed to speak to the backend as one account.

One object answers, for an account: which native clients (its egress route, the presented release's
decompression), which identity and endpoint, which clock, which Cloudflare cookies, and which `AccountAuth` — the
one place that builds it. The dispatcher, the catalog refresh, transcription and the quota check all reach the
backend through it; the composition root builds it (`services.build_services_for`) and hands it over.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import trio

from ..upstream.context import AccountAuth
from ..upstream.identity import Identity, Platform, load_fingerprint, presented_release
from ..upstream.transport import Clients, Endpoint

if TYPE_CHECKING:
    from ..accounts.cookies_store import AccountCookies
    from ..accounts.model import Account
    from ..accounts.proxies import ProxyPool
    from ..config.schema import Settings
    from ..cookies import CookieJar
    from ..native import Client

log = logging.getLogger(__name__)

SAVE_COOKIES_DEADLINE_SECONDS = 10.0  # a store write; past this the jar is dropped, never the caller held


def build_identity(settings: "Settings") -> Identity:
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


def build_endpoint(settings: "Settings") -> Endpoint:
    return Endpoint(settings.api.base_url.rstrip("/"), settings.api.auth_base_url.rstrip("/"))


def auth_for(account: "Account") -> AccountAuth:
    """What authenticates a call as `account`: its current access token and its ChatGPT account id."""
    return AccountAuth(account.tokens.access_token, account.account_id or "")


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
        from ..native import Client

        key = (profile, proxy, decompress)
        if key not in self._clients:
            self._clients[key] = Client(profile=profile, proxy=proxy, ca_file=self._ca_file, resolve=self._resolve,
                                        connect_timeout=self._connect_timeout, decompress=decompress)
        return self._clients[key]

    def for_checks(self, proxy: str | None, *, read_timeout: float, decompress: bool = False) -> "Client":
        """A client for proxy health checks, kept apart from the accounts' pooled connections (its own read
        timeout makes it a separate native pool): with `connection: close` on each check, every check connects
        and handshakes through the proxy instead of reusing a tunnel opened before the proxy died."""
        from ..native import Client

        return Client(profile="openssl", proxy=proxy, ca_file=self._ca_file, resolve=self._resolve,
                      connect_timeout=self._connect_timeout, read_timeout=read_timeout, decompress=decompress)

    def for_proxy(self, proxy: str | None, *, decompress: bool = False) -> Clients:
        # The real client's HTTPS goes through OpenSSL; its Responses WebSocket through rustls.
        return Clients(http=self.get("openssl", proxy, decompress=decompress),
                       websocket=self.get("rustls", proxy, decompress=decompress))


@dataclass
class UpstreamConnector:
    settings_source: Any  # ConfigStore: `.settings` read at use, so hot reloads apply
    identity: Identity  # replaced when `client.*` changes (new requests present the new release)
    endpoint: Endpoint
    clients: ClientCache
    clock: Callable[[], float] = time.time  # the gateway's clock (tests use the simulator's)
    # Set once the account store is open (`services.open_accounts`).
    proxies: "ProxyPool | None" = None
    cookies: "AccountCookies | None" = None

    @classmethod
    def of(cls, config: Any, *, clock: Callable[[], float] = time.time) -> "UpstreamConnector":
        settings = config.settings
        return cls(config, build_identity(settings), build_endpoint(settings),
                   ClientCache(ca_file=settings.tls.ca_file, resolve=settings.tls.resolve), clock)

    auth_for = staticmethod(auth_for)

    def proxy_for(self, account: "Account") -> str | None:
        """The proxy URL every upstream call of this account goes through (None: direct); raises
        `proxies.NoRoute` when its pool route has no usable proxy (never falls back to direct)."""
        if self.proxies is not None:
            return self.proxies.route_for(account)
        from ..accounts.proxies import DIRECT, NoRoute

        if account.proxy is None:
            return self.settings_source.settings.tls.proxy_url
        if account.proxy == DIRECT or "://" in account.proxy:
            return None if account.proxy == DIRECT else account.proxy
        raise NoRoute(account.id, "the proxy pool is not open")

    def clients_for(self, account: "Account") -> Clients:
        return self.clients.for_proxy(self.proxy_for(account), decompress=self.identity.decompress)

    def lazy_cookie_jar_for(self, account: "Account") -> "LazyCookieJar":
        """`cookie_jar_for`, built at its first use: a turn on a kept WebSocket makes no HTTPS call, and then
        neither builds nor saves a jar (both per turn); one that falls back to HTTPS still sends the cookies."""
        return LazyCookieJar(lambda: self.cookie_jar_for(account))

    def cookie_jar_for(self, account: "Account") -> "CookieJar | None":
        """The account's Cloudflare cookies as a jar (send `jar.header_for(url)`, feed `jar.capture(url,
        response_headers)`, then `save_cookies`); None before the accounts are open."""
        return self.cookies.jar_for(account) if self.cookies is not None else None

    async def save_cookies(self, account: "Account", jar: "CookieJar | None") -> None:
        """Persist the jar in the account record when it changed. Shielded (a challenge's cookies are what
        lets the next call through, even when this one was cancelled), with a deadline."""
        if jar is None or self.cookies is None:
            return
        with trio.CancelScope(shield=True, deadline=trio.current_time() + SAVE_COOKIES_DEADLINE_SECONDS):
            await self.cookies.save(account, jar)


class LazyCookieJar:
    """A `CookieJarLike` whose jar is built by its first `header_for` or `capture` (`built`: None until then)."""

    __slots__ = ("_build", "built")

    def __init__(self, build: Callable[[], "CookieJar | None"]) -> None:
        self._build = build
        self.built: "CookieJar | None" = None

    def _jar(self) -> "CookieJar | None":
        if self.built is None:
            self.built = self._build()
        return self.built

    def header_for(self, url: str) -> str | None:
        jar = self._jar()
        return jar.header_for(url) if jar is not None else None

    def capture(self, url: str, headers: Any) -> int:
        jar = self._jar()
        return jar.capture(url, headers) if jar is not None else 0
