"""The one network seam of this package: an injected async HTTP client for the issuer and the backend.

Production backs it with the native transport (same TLS and headers as the real client); tests back it with
httpx against the simulator, or with an in-process issuer. The transport adds `accept`, `host` and
`content-length` itself; callers pass the headers that carry meaning (content-type, originator, user-agent).

Delivery matters for single-use refresh tokens, so a transport must say which way it failed:
`NotDelivered` when the request provably never reached the server (DNS, connect refused, TLS handshake),
`DeliveryUnknown` for everything after the first byte was written (reset, timeout, truncated answer).
Any other exception is treated as `DeliveryUnknown`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(slots=True)
class HttpResponse:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


class NotDelivered(Exception):
    """The request never reached the server: safe to send again."""


class DeliveryUnknown(Exception):
    """The request may have reached the server and the answer was lost."""


class OAuthHttp(Protocol):
    async def post(self, url: str, headers: list[tuple[str, str]], body: bytes) -> HttpResponse: ...

    async def get(self, url: str, headers: list[tuple[str, str]]) -> HttpResponse: ...
