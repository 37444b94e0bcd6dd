"""The value types of the settings schema: what makes a setting usable, not merely well-typed.

Values are checked here, where a bad one is still a clear 400 (admin API) or a start-up error naming the file
and line, rather than accepted and failing every request later (an empty default model, a CR/LF in a header
value, a proxy the transport cannot use, a CA file that is not there).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_VERSION = re.compile(r"\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?")
_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::[0-9]{1,5})?")
_HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*")
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
# TCP_USER_TIMEOUT is a C int of milliseconds; a larger value makes setsockopt raise when a listener starts.
MAX_SOCKET_TIMEOUT_MS = 2**31 - 1


def _text(value: str) -> str:
    """Text that ends up in a header or a model name: not empty, no surrounding spaces, no control characters."""
    if not value.strip():
        raise ValueError("must not be empty")
    if value != value.strip():
        raise ValueError("must not start or end with spaces")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (line breaks, tabs, ...)")
    return value


def _version(value: str) -> str:
    if not _VERSION.fullmatch(value):
        raise ValueError("must be a version like 1.2.3")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(_text(value))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


def _proxy_url(value: str) -> str:
    try:
        parts = urlsplit(_text(value))
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a usable proxy URL ({exc})") from None
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
        raise ValueError(f"{value!r} must look like http://host:port (schemes: {', '.join(PROXY_SCHEMES)})")
    return value


def _api_key(value: str) -> str:
    # Clients send it in a header or a query string, and the check strips surrounding spaces: a key with
    # spaces or non-ASCII characters could never match.
    if not value or not all("!" <= char <= "~" for char in value):
        raise ValueError("must be printable ASCII without spaces")
    return value


def _host(value: str) -> str:
    """A DNS name or an IP address (IPv6 with or without brackets), without scheme or port."""
    name = _text(value).removeprefix("[").removesuffix("]").rstrip(".")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        if not _HOSTNAME.fullmatch(name):
            raise ValueError(f"{value!r} is not an IP address or a host name (no scheme, no port)") from None
    return value


def _web_origin(value: str) -> str:
    # What browsers send as Origin: scheme://host[:port] and nothing more (no path, no user, no wildcard).
    if not _ORIGIN.fullmatch(_text(value)):
        raise ValueError(f"{value!r} is not an origin like https://ui.example.com:8443 or chrome-extension://<id>")
    return value


def _existing_file(value: str) -> str:
    path = Path(_text(value)).expanduser()
    if not path.exists():
        raise ValueError(f"{value} does not exist (a PEM certificate is expected)")
    if not path.is_file():
        raise ValueError(f"{value} is not a file (a PEM certificate is expected)")
    return value


def comma_separated(value: object) -> object:
    """A list can also come from an environment variable, as `a,b` (use as a `mode="before"` validator)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


Text = Annotated[str, AfterValidator(_text)]
ModelName = Text
Version = Annotated[str, AfterValidator(_text), AfterValidator(_version)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
ProxyUrl = Annotated[str, AfterValidator(_proxy_url)]
CaFile = Annotated[str, AfterValidator(_existing_file)]
Host = Annotated[str, AfterValidator(_host)]
ApiKey = Annotated[str, AfterValidator(_api_key)]
WebOrigin = Annotated[str, AfterValidator(_web_origin)]
