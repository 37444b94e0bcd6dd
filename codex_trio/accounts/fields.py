"""Fields of accounts as users give them (admin request bodies, import entries): checked at the edge, so a
wrong type is a 400 that names the field — never a 500 later, and never a value stored that breaks the
account's requests afterwards."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from codex_trio.errors import invalid_request

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def checked_proxy(value: Any) -> str | None:
    """An account's egress route as given by a user (PATCH, an import, an assignment): None (or "default") for
    the global default, "direct", "auto" / "auto:<group>" (a pool proxy chosen once), a pool proxy id (`px-…`)
    or a proxy URL (see accounts/proxies.py). Anything else is a 400, before it can break the account's requests
    later."""
    if value is None or value == "" or value == "default":
        return None
    if not isinstance(value, str):
        raise invalid_request("`proxy` must be a string (default, direct, auto, auto:<group>, a pool proxy id or "
                              "a proxy URL) or null", param="proxy")
    value = value.strip()
    if value in ("direct", "auto") or (value.startswith("auto:") and value[5:].strip()) or value.startswith("px-"):
        return value
    parts = urlsplit(value)
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
        raise invalid_request(f"`proxy` must look like {PROXY_SCHEMES[0]}://host:port (schemes: "
                              f"{', '.join(PROXY_SCHEMES)}) or be default, direct, auto, auto:<group> or a pool proxy "
                              "id (px-…)", param="proxy")
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "a list" if isinstance(value, list) else "an object" if isinstance(value, dict) else "a string"


def text_field(body: dict[str, Any], name: str, *aliases: str) -> str | None:
    """A string field of a request body (absent, null or blank → None); anything else is a 400 naming it."""
    for key in (name, *aliases):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise invalid_request(f"`{key}` must be a string, not {_json_kind(value)}", param=key)
        if value.strip():
            return value.strip()
    return None
