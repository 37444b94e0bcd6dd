"""Gateway API keys: every route of the main listener needs one except an explicit allow-list; where a client
may put the key; whether it is valid.

Authentication is decided by method and path alone, before any route runs, so an unknown path, a typo'd alias
or a route added later is refused the same way as a known one: nobody learns which routes exist without the key.
"""

from __future__ import annotations

import hmac
from typing import Mapping

# The only (method, path) pairs the main listener answers without the key: the health probe and the probe
# Claude Code sends before its first request. Widening this list is a security decision; the route-table test
# (tests/foundation/test_route_auth.py) pins it.
OPEN_ROUTES = frozenset({("GET", "/health"), ("HEAD", "/health"), ("HEAD", "/")})

MISSING_KEY = "Missing API key: send it as Authorization: Bearer <key>, x-api-key, x-goog-api-key or ?key=."
INVALID_KEY = "Invalid API key."


def needs_key(method: str, path: str) -> bool:
    # CORS preflights (OPTIONS) are open: browsers never attach credentials to them, and the automatic answer
    # lists the allowed methods and nothing else.
    method = method.upper()
    return method != "OPTIONS" and (method, path) not in OPEN_ROUTES


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The key in the first place a client of any protocol puts it: ?key= (Gemini), x-goog-api-key (Gemini),
    x-api-key (Anthropic), then Authorization (OpenAI; `Bearer ` stripped)."""
    for value in (query.get("key"), headers.get("x-goog-api-key"), headers.get("x-api-key")):
        if value:
            return value.strip()
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token else authorization.strip()
    return None


def key_matches(presented: str | None, expected: str | None) -> bool:
    if not expected or not presented:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


def key_problem(presented: str | None, expected: str | None) -> str | None:
    """Why the key a request presented (`presented_key`) is refused (a message for the client), or None when it is
    the right key."""
    if key_matches(presented, expected):
        return None
    return MISSING_KEY if presented is None else INVALID_KEY
