"""Gateway API keys: which routes need one, where a client may put it, and whether it is valid."""

from __future__ import annotations

import hmac
from typing import Mapping

PROTECTED_PREFIXES = ("/v1/", "/v1beta/", "/admin/", "/auth/")
PROTECTED_EXACT = frozenset({"/v1", "/v1beta", "/admin", "/auth"})


def is_protected(path: str) -> bool:
    return path in PROTECTED_EXACT or path.startswith(PROTECTED_PREFIXES)


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
