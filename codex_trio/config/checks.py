"""Settings that name something outside the process — a CA file, an egress proxy — checked for being there.

The schema checks their form when the file is loaded; whether the file exists or the proxy answers can change
after that, so `config check`, `doctor` and the commands that talk upstream ask here first and stop with one
line that says what to fix instead of a traceback from the TLS stack.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .loader import LoadedConfig

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


@dataclass(frozen=True)
class Problem:
    setting: str  # "tls.ca_file"
    what: str  # what is wrong, naming the value and where it was set
    fix: str

    def __str__(self) -> str:
        return f"{self.what}; {self.fix}"


def _ca_file_problem(loaded: LoadedConfig) -> Problem | None:
    value = loaded.settings.tls.ca_file
    if not value:
        return None
    where = loaded.source_of(("tls", "ca_file"))
    fix = "fix the path or remove tls.ca_file (it is only needed for a private upstream such as the simulator)"
    path = Path(value).expanduser()
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return Problem("tls.ca_file", f"tls.ca_file {path} does not exist (set in {where})", fix)
    except OSError as exc:
        return Problem("tls.ca_file", f"tls.ca_file {path} cannot be read: {exc.strerror} (set in {where})", fix)
    if "-----BEGIN CERTIFICATE-----" not in text:
        return Problem("tls.ca_file", f"tls.ca_file {path} holds no PEM certificate (set in {where})", fix)
    try:
        ssl.create_default_context(cadata=text)
    except ssl.SSLError as exc:
        return Problem("tls.ca_file", f"tls.ca_file {path} is not a valid PEM certificate: {exc.reason} "
                                      f"(set in {where})", fix)
    return None


def proxy_problem(proxy_url: str | None, where: str) -> Problem | None:
    """The form of an egress proxy URL."""
    if not proxy_url:
        return None
    parts = urlsplit(proxy_url)
    fix = f"use {'://, '.join(PROXY_SCHEMES)}:// with a host and port, e.g. http://127.0.0.1:3128"
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return Problem("tls.proxy_url", f"the egress proxy {proxy_url!r} has an invalid port (set in {where})", fix)
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
        return Problem("tls.proxy_url", f"the egress proxy {proxy_url!r} is not a proxy URL (set in {where})", fix)
    return None


def upstream_problems(loaded: LoadedConfig) -> list[Problem]:
    """What would keep every upstream call from starting: a CA file that is gone, a malformed proxy URL."""
    problems = [_ca_file_problem(loaded),
                proxy_problem(loaded.settings.tls.proxy_url, loaded.source_of(("tls", "proxy_url")))]
    return [p for p in problems if p is not None]


def proxy_reachable(proxy_url: str, *, timeout: float = 3.0) -> str | None:
    """None when a TCP connection to the proxy opens, else why not (for `doctor`)."""
    parts = urlsplit(proxy_url)
    default_port = {"http": 80, "https": 443}.get(parts.scheme, 1080)
    try:
        with socket.create_connection((parts.hostname, parts.port or default_port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)
