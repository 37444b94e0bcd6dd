"""Which web pages and which Host names may use a surface a browser can reach without a key: the Ollama
listener today, the dashboard's cookie-authenticated routes when they come.

Two attacks, two checks, both before any work is done:

* Cross-site requests. A page on any site can make the user's browser send requests to 127.0.0.1; CORS only
  stops it from *reading* the answer, the turn still runs on the user's accounts. A request whose `Origin` is
  not allowed is therefore refused outright (Ollama does the same): loopback origins, plus the ones configured.
* DNS rebinding. A page on `evil.example` re-points its own name at 127.0.0.1 and is then same-origin with the
  listener, so it can read the answers too. Its requests still say `Host: evil.example`, so only the host names
  this machine answers to are accepted: `localhost`, loopback addresses, the address the listener is bound to,
  and the configured extras. When it is bound to every address (0.0.0.0, ::), any IP address is accepted too:
  a rebinding page always arrives with a DNS name, never with an IP literal.

Sans-IO: `SitePolicy.refusal` takes header values and returns a reason; `install` wires it into a Quart app.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from quart import Response, request, websocket

from ..errors import ErrorKind, GatewayError
from ..protocols.cors import is_loopback_origin

UNSPECIFIED = ("0.0.0.0", "::")


def host_name(host_header: str) -> str:
    """The name in a Host header, without the port, brackets or a trailing dot, lower-cased."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    name, _, port = host.rpartition(":")
    if name and port.isdigit() and ":" not in name:
        host = name
    return host.rstrip(".")


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None


def normalized_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


@dataclass(frozen=True, slots=True)
class SitePolicy:
    bind_host: str  # the address the listener is bound to, as configured
    extra_hosts: frozenset[str] = frozenset()  # host names (lower-case, no port) accepted besides loopback
    extra_origins: frozenset[str] = frozenset()  # normalized origins accepted besides loopback ones

    @classmethod
    def of(cls, bind_host: str, extra_hosts: Iterable[str] = (), extra_origins: Iterable[str] = ()) -> "SitePolicy":
        return cls(host_name(bind_host), frozenset(host_name(h) for h in extra_hosts),
                   frozenset(normalized_origin(o) for o in extra_origins))

    def origin_allowed(self, origin: str) -> bool:
        return is_loopback_origin(origin) or normalized_origin(origin) in self.extra_origins

    def host_allowed(self, host_header: str) -> bool:
        name = host_name(host_header)
        if not name or name == "localhost" or name == self.bind_host or name in self.extra_hosts:
            return True
        address = _ip(name)
        if address is None:
            return False
        return address.is_loopback or self.bind_host in UNSPECIFIED

    def refusal(self, host: str | None, origin: str | None) -> str | None:
        """Why a request with these `Host` and `Origin` header values is refused, or None to serve it."""
        if host is not None and not self.host_allowed(host):
            return (f"Host {host!r} is not allowed here (DNS rebinding protection). Reach this server as localhost "
                    f"or 127.0.0.1, or add the name to ollama.allowed_hosts.")
        if origin is not None and not self.origin_allowed(origin):
            return (f"Origin {origin!r} is not allowed to use this server. Pages served from this machine are; add "
                    f"others to ollama.allowed_origins.")
        return None


def install(app: Any, policy: Callable[[], SitePolicy], error_response: Callable[[GatewayError, str], Response]) -> None:
    """Refuse disallowed Host / Origin with 403 before anything else runs, for HTTP requests and WebSocket
    upgrades alike (browsers open cross-site WebSockets without any CORS check). `policy` is read per request so
    setting changes apply at once. Register this before any other before-request hook."""

    def check(path: str, headers: Any) -> Response | None:
        reason = policy().refusal(headers.get("host"), headers.get("origin"))
        if reason is None:
            return None
        return error_response(GatewayError(403, reason, ErrorKind.PERMISSION, code="forbidden_origin"), path)

    @app.before_request
    async def _guard_request() -> Response | None:
        return check(request.path, request.headers)

    @app.before_websocket
    async def _guard_websocket() -> Response | None:
        return check(websocket.path, websocket.headers)
