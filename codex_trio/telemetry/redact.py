"""What the request log may keep of a body: secrets and images replaced, the rest capped in size.

Pure: bytes in, text out. Secrets are values under names that hold credentials; images are data URLs and
long base64 runs (every protocol has its own image field, so the content is recognised rather than the name).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

SECRET_NAMES = frozenset({"authorization", "api_key", "apikey", "x-api-key", "key", "token", "access_token",
                          "refresh_token", "id_token", "password", "secret", "client_secret", "proxy_api_key"})
BASE64_RUN = re.compile(r"^[A-Za-z0-9+/=_-]{512,}$")
TRUNCATED = "…[truncated]"


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("[redacted]" if isinstance(k, str) and k.lower() in SECRET_NAMES and value[k] else _clean(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, str):
        if value.startswith("data:") and ";base64," in value[:100]:
            return f"[image redacted: {len(value)} characters]"
        if len(value) >= 512 and BASE64_RUN.match(value):
            return f"[base64 redacted: {len(value)} characters]"
    return value


def redact_body(raw: bytes, limit: int) -> str:
    """The body as text with secrets and images removed, at most `limit` bytes (UTF-8) plus a marker."""
    try:
        text = orjson.dumps(_clean(orjson.loads(raw))).decode()
    except orjson.JSONDecodeError:
        text = raw.decode("utf-8", "replace")
        if BASE64_RUN.match(text.strip()):
            text = f"[base64 redacted: {len(text)} characters]"
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore") + TRUNCATED
