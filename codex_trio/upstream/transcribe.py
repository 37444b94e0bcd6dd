"""`POST /backend-api/transcribe`: the Desktop app's dictation endpoint (the only transcription a ChatGPT
subscription offers).

Read from two public clients of the endpoint, not captured (the transcription spec): a multipart form with the
audio as `file` (filename and content type) and an optional ISO-639-1 `language`, no `model`; the bearer token and
`ChatGPT-Account-Id` like every backend call; the Desktop app's `originator` and a `Codex Desktop/<version> (...)`
User-Agent (the CLI's identity is not what calls this endpoint). Cloudflare lets only an OpenSSL ClientHello
through here, so the call goes on the account's `openssl` client, with its Cloudflare cookies. The order of the
headers and the boundary's shape are not known; they are written the way the other unary calls are.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from codex_trio.native import Client
from codex_trio.upstream.context import AccountAuth
from codex_trio.upstream.headers import Headers
from codex_trio.upstream.identity import Identity
from codex_trio.upstream.transport import Clock, CookieJarLike, Endpoint, _json_call, with_cookies

DESKTOP_ORIGINATOR = "codex_desktop"
DESKTOP_VERSION = "26.611.62324"  # the newer of the two Desktop versions the public clients send


def desktop_user_agent(identity: Identity) -> str:
    p = identity.platform
    return f"Codex Desktop/{DESKTOP_VERSION} ({p.os_name} {p.os_version}; {p.arch})"


def transcribe_headers(identity: Identity, auth: AccountAuth, content_type: str) -> Headers:
    return [("authorization", f"Bearer {auth.access_token}"),
            *([("chatgpt-account-id", auth.account_id)] if auth.account_id else []),
            ("originator", DESKTOP_ORIGINATOR), ("user-agent", desktop_user_agent(identity)),
            ("content-type", content_type), ("accept", "application/json")]


def _quoted(value: str) -> str:
    """A filename as a form-data parameter: quotes, backslashes and line breaks cannot break out of it."""
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def multipart_body(audio: bytes, filename: str, content_type: str, language: str | None) -> tuple[bytes, str]:
    """(body, content type) of the form: `file`, then `language` when one is given."""
    boundary = secrets.token_hex(16)
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{_quoted(filename)}"\r\n'
             f"Content-Type: {content_type}\r\n\r\n".encode(), audio, b"\r\n"]
    if language:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="language"\r\n\r\n{language}\r\n'.encode())
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


async def transcribe(client: Client, identity: Identity, endpoint: Endpoint, auth: AccountAuth, *, audio: bytes,
                     filename: str, content_type: str, language: str | None, clock: Clock = time.time,
                     cookies: CookieJarLike | None = None) -> Any:
    """The backend's JSON answer (`{"text": ...}`); `UpstreamFailed` for a non-2xx answer (a Cloudflare page, a
    401, a 429, ...), which the caller acts on like any other refused call."""
    body, form_type = multipart_body(audio, filename, content_type, language)
    url = f"{endpoint.base_url}/transcribe"
    headers = with_cookies(transcribe_headers(identity, auth, form_type), url, cookies,
                           accept_encoding=identity.accept_encoding)
    return await _json_call(client, "POST", url, headers, body, clock=clock, cookies=cookies)
