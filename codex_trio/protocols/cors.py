"""CORS for the Ollama listener: only pages served from this machine (or configured origins) may read its replies.

The Ollama routes are unauthenticated (that is the Ollama API), so a permissive CORS policy would let any web
page the user visits drive the gateway. Only allowed origins get `Access-Control-Allow-Origin` (the origin
echoed, never `*`); requests from other origins are refused before this runs (`server/site_guard.py`).
Origins are parsed strictly: `http://localhost.evil.com`, `http://127.0.0.1.evil.com`, `http://user@localhost`,
a path, or `null` are not loopback.

Sans-IO: the route passes the method and the relevant request headers and applies the decision.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Callable

ALLOWED_METHODS = "GET, POST, HEAD, OPTIONS"
DEFAULT_ALLOWED_HEADERS = "Authorization, Content-Type"
PREFLIGHT_MAX_AGE = "600"

# scheme://host[:port] and nothing else. The host part is checked separately below.
_ORIGIN = re.compile(r"(?P<scheme>https?)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(?::(?P<port>[0-9]{1,5}))?",
                     re.ASCII | re.IGNORECASE)
# A comma-separated list of header names (RFC 9110 tokens), as Access-Control-Request-Headers carries.
_HEADER_LIST = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*,[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*", re.ASCII)


@dataclass(frozen=True, slots=True)
class CorsDecision:
    # True when the request is a CORS preflight: the route answers it right away with `status`, `headers` and
    # an empty body, and does not run the route.
    preflight: bool
    # For a preflight: 204 (loopback origin) or 403 (any other origin). For other requests: 0 (unused).
    status: int
    # Headers to add to the response (preflight or normal).
    headers: list[tuple[str, str]] = field(default_factory=list)


def is_loopback_origin(origin: str) -> bool:
    """Whether `origin` is exactly http(s)://localhost, 127.x.x.x or [::1], with an optional valid port."""
    match = _ORIGIN.fullmatch(origin)
    if match is None:
        return False
    port = match.group("port")
    if port is not None and not 0 < int(port) <= 65535:
        return False
    host = match.group("host").lower()
    if host == "localhost":
        return True
    if host.startswith("["):
        try:
            return ipaddress.IPv6Address(host[1:-1]) == ipaddress.IPv6Address("::1")
        except ValueError:
            return False
    try:  # a dotted quad; ipaddress rejects leading zeros, short forms and out-of-range octets
        return ipaddress.IPv4Address(host) in ipaddress.IPv4Network("127.0.0.0/8")
    except ValueError:
        return False


def decide(method: str, origin: str | None, request_method: str | None = None,
           request_headers: str | None = None, *,
           origin_allowed: Callable[[str], bool] = is_loopback_origin) -> CorsDecision:
    """CORS handling for one request.

    `origin`, `request_method` and `request_headers` are the values of the `Origin`,
    `Access-Control-Request-Method` and `Access-Control-Request-Headers` request headers (None when absent).
    `origin_allowed` says which origins may read replies: loopback ones unless the caller's policy adds more.
    """
    is_preflight = method.upper() == "OPTIONS" and origin is not None and request_method is not None
    if origin is None:
        return CorsDecision(False, 0)
    # The answer depends on Origin, so shared caches must key on it whatever the verdict.
    vary = ("Vary", "Origin")
    if not origin_allowed(origin):
        return CorsDecision(is_preflight, 403 if is_preflight else 0, [vary])
    headers = [("Access-Control-Allow-Origin", origin), vary]
    if not is_preflight:
        return CorsDecision(False, 0, headers)
    allowed_headers = DEFAULT_ALLOWED_HEADERS
    if request_headers and _HEADER_LIST.fullmatch(request_headers.strip()):
        # Loopback pages may send whatever headers they need (e.g. the OpenAI SDK's x-stainless-* on /v1/*).
        allowed_headers = request_headers.strip()
    headers += [
        ("Access-Control-Allow-Methods", ALLOWED_METHODS),
        ("Access-Control-Allow-Headers", allowed_headers),
        ("Access-Control-Max-Age", PREFLIGHT_MAX_AGE),
    ]
    return CorsDecision(True, 204, headers)
