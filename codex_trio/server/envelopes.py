"""Which protocol's error envelope a path answers with, for errors raised outside a protocol adapter
(authentication, unknown routes, dispatch failures). Each protocol's own `encode_error` does the work."""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import GatewayError
from ..protocols import anthropic, gemini, ollama, openai_chat


def protocol_for_path(path: str) -> str:
    if path.startswith("/v1/messages"):
        return "anthropic"
    if path.startswith("/v1beta"):
        return "gemini"
    if path.startswith("/api/") and not path.startswith("/api/proxies"):  # the proxy pool's admin paths speak JSON
        return "ollama"                                                      # like the rest of the admin API
    return "openai"


ENCODERS = {"anthropic": anthropic.encode_error, "gemini": gemini.encode_error, "ollama": ollama.encode_error,
            "openai": openai_chat.encode_error}


def error_body(path: str, error: GatewayError) -> tuple[int, dict[str, Any]]:
    return ENCODERS[protocol_for_path(path)](error)


def error_headers(path: str, status: int) -> dict[str, str]:
    """Headers a protocol's error answers carry. Anthropic's API tells its clients whether retrying can help
    (`x-should-retry`), and its SDKs and Claude Code obey that before their own status rules: without it,
    Claude Code retries a wrong key about ten times over three minutes. Only a timeout, a conflict, a rate
    limit or a server-side failure can be cured by asking again."""
    if protocol_for_path(path) != "anthropic":
        return {}
    curable = status in (408, 409, 429) or status >= 500
    return {"x-should-retry": "true" if curable else "false"}


def closing_error_answer(path: str, error: GatewayError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """An error answered below the app (the body cap, shutdown), ending the connection: status, headers and
    body, in the envelope and with the headers the path's protocol answers errors with."""
    status, body = error_body(path, error)
    payload = orjson.dumps(body)
    headers = [(b"content-type", b"application/json"), (b"connection", b"close"),
               (b"content-length", str(len(payload)).encode())]
    headers += [(name.encode(), value.encode()) for name, value in error_headers(path, status).items()]
    return status, headers, payload
