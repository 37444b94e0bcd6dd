"""`OAuthHttp` over the native transport: OAuth and backend calls with the real client's TLS hello.

Single-use refresh tokens make delivery matter: failures before the request could reach the issuer
(connect, TLS, proxy) are `NotDelivered`; anything later (timeout, reset, protocol) is `DeliveryUnknown`.
"""

from __future__ import annotations

from typing import Callable

from ..native import Client, ConnectError, ProxyError, TlsError, UpstreamError
from .http import DeliveryUnknown, HttpResponse, NotDelivered


class NativeOAuthHttp:
    def __init__(self, client: Client | Callable[[], Client], *, timeout: float = 60.0) -> None:
        # a callable is asked on every call, so a changed egress proxy applies to the next refresh
        self._client = client if callable(client) else (lambda: client)
        self._timeout = timeout

    async def post(self, url: str, headers: list[tuple[str, str]], body: bytes) -> HttpResponse:
        return await self._call("POST", url, headers, body)

    async def get(self, url: str, headers: list[tuple[str, str]]) -> HttpResponse:
        return await self._call("GET", url, headers, None)

    async def _call(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None) -> HttpResponse:
        try:
            response = await self._client().request(method, url, headers, body, timeout=self._timeout)
        except (ConnectError, TlsError, ProxyError) as exc:
            raise NotDelivered(str(exc)) from exc
        except UpstreamError as exc:
            raise DeliveryUnknown(str(exc)) from exc
        return HttpResponse(response.status, bytes(response.body), list(response.headers))
