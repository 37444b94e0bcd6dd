"""Per-account cookie jar that keeps only Cloudflare cookies for the ChatGPT backend's hosts.

Mirrors the real client (spec/upstream.md §7.6): it accepts and replays only Cloudflare cookies
(`__cf_bm`, `__cflb`, `__cfruid`, `__cfseq`, `__cfwaitingroom`, `_cfuvid`, `cf_clearance`, `cf_ob_info`,
`cf_use_ob`, `cf_chl_*`) and only for https URLs on chatgpt.com, chat.openai.com, chatgpt-staging.com and
their subdomains. Account or session cookies are refused. Max-Age beats Expires; expired cookies are
neither replayed nor exported. Pure data structure: the clock is injectable and nothing does I/O.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from typing import Callable, Iterable
from urllib.parse import urlsplit

CLOUDFLARE_NAMES = frozenset(
    {"__cf_bm", "__cflb", "__cfruid", "__cfseq", "__cfwaitingroom", "_cfuvid", "cf_clearance", "cf_ob_info", "cf_use_ob"}
)
CLOUDFLARE_PREFIX = "cf_chl_"
BACKEND_DOMAINS = ("chatgpt.com", "chat.openai.com", "chatgpt-staging.com")


def is_cloudflare_cookie(name: str) -> bool:
    return name in CLOUDFLARE_NAMES or name.startswith(CLOUDFLARE_PREFIX)


def _domain_match(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def is_backend_url(url: str) -> bool:
    """https only (the real client excludes wss), on a backend domain or a subdomain of one."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and any(_domain_match(host, d) for d in BACKEND_DOMAINS)


@dataclass
class StoredCookie:
    name: str
    value: str
    domain: str
    host_only: bool
    path: str
    expires: float | None  # epoch seconds; None = session cookie
    created: float

    def matches(self, host: str, path: str) -> bool:
        if self.host_only and host != self.domain:
            return False
        if not self.host_only and not _domain_match(host, self.domain):
            return False
        return path == self.path or path.startswith(self.path.rstrip("/") + "/") or self.path == "/"


def _parse_expires(value: str) -> float | None:
    try:
        return parsedate_to_datetime(value.replace("-", " ")).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _default_path(request_path: str) -> str:
    if not request_path.startswith("/") or request_path.count("/") == 1:
        return "/"
    return request_path[: request_path.rindex("/")]


class CookieJar:
    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._cookies: dict[tuple[str, str, str], StoredCookie] = {}

    def capture(self, url: str, headers: Iterable[tuple[str, str]]) -> int:
        """Store the Cloudflare cookies from a response's `set-cookie` headers; returns how many changed."""
        if not is_backend_url(url):
            return 0
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        changed = 0
        for name, value in headers:
            if name.lower() == "set-cookie" and self._set(host, parts.path or "/", value):
                changed += 1
        return changed

    def _set(self, host: str, request_path: str, header: str) -> bool:
        pair, *attributes = header.split(";")
        if "=" not in pair:
            return False
        name, value = (part.strip() for part in pair.split("=", 1))
        if not is_cloudflare_cookie(name):
            return False
        domain, path, max_age, expires = None, None, None, None
        for attribute in attributes:
            key, _, arg = attribute.strip().partition("=")
            key, arg = key.strip().lower(), arg.strip()
            if key == "domain" and arg:
                domain = arg.lstrip(".").lower()
            elif key == "path" and arg.startswith("/"):
                path = arg
            elif key == "max-age":
                try:
                    max_age = int(arg)
                except ValueError:
                    pass
            elif key == "expires":
                expires = _parse_expires(arg)
        if domain is not None and not (_domain_match(host, domain) and is_backend_url(f"https://{domain}/")):
            return False  # a cookie for a domain outside the request's (or the backend's) is refused
        now = self._now()
        if max_age is not None:
            expires = now + max_age  # Max-Age beats Expires
        cookie = StoredCookie(
            name=name,
            value=value,
            domain=domain or host,
            host_only=domain is None,
            path=path or _default_path(request_path),
            expires=expires,
            created=now,
        )
        key = (cookie.domain, cookie.path, cookie.name)
        if expires is not None and expires <= now:
            return self._cookies.pop(key, None) is not None
        previous = self._cookies.get(key)
        if previous is not None:
            cookie.created = previous.created
        self._cookies[key] = cookie
        return True

    def header_for(self, url: str) -> str | None:
        """The `cookie` header value for a request to `url`, or None when nothing applies."""
        if not is_backend_url(url):
            return None
        parts = urlsplit(url)
        host, path = (parts.hostname or "").lower(), parts.path or "/"
        self._purge()
        chosen = [c for c in self._cookies.values() if c.matches(host, path)]
        if not chosen:
            return None
        chosen.sort(key=lambda c: (-len(c.path), c.created))
        return "; ".join(f"{c.name}={c.value}" for c in chosen)

    def clear(self) -> None:
        self._cookies.clear()

    def _purge(self) -> None:
        now = self._now()
        for key in [k for k, c in self._cookies.items() if c.expires is not None and c.expires <= now]:
            del self._cookies[key]

    def export(self) -> list[dict]:
        """Live cookies as plain dicts (JSON-ready)."""
        self._purge()
        return [asdict(c) for c in self._cookies.values()]

    @classmethod
    def from_export(cls, data: list[dict], now: Callable[[], float] = time.time) -> "CookieJar":
        """Rebuild a jar from `export()`; expired and non-Cloudflare entries are dropped."""
        jar = cls(now)
        for entry in data:
            cookie = StoredCookie(**{field: entry[field] for field in StoredCookie.__dataclass_fields__})
            if is_cloudflare_cookie(cookie.name) and is_backend_url(f"https://{cookie.domain}/"):
                jar._cookies[(cookie.domain, cookie.path, cookie.name)] = cookie
        jar._purge()
        return jar

    def __len__(self) -> int:
        self._purge()
        return len(self._cookies)
