"""Fixtures for the end-to-end tests: an OAuthHttp backed by httpx (test-only; production uses the native
transport), and the simulator's issuer when `codex_trio.sim` is merged."""

from __future__ import annotations

import ssl

import httpx
import pytest

from codex_trio.accounts.http import DeliveryUnknown, HttpResponse, NotDelivered


class HttpxOAuthHttp:
    """OAuthHttp over httpx. Connect-phase failures are NotDelivered; anything later DeliveryUnknown."""

    def __init__(self, verify: ssl.SSLContext | bool = True) -> None:
        self.client = httpx.AsyncClient(verify=verify, timeout=30.0,
                                        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))

    async def post(self, url: str, headers: list[tuple[str, str]], body: bytes) -> HttpResponse:
        return await self._send("POST", url, headers, body)

    async def get(self, url: str, headers: list[tuple[str, str]]) -> HttpResponse:
        return await self._send("GET", url, headers, None)

    async def _send(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None) -> HttpResponse:
        try:
            response = await self.client.request(method, url, headers=headers, content=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise NotDelivered(str(exc)) from exc
        except httpx.TransportError as exc:
            raise DeliveryUnknown(str(exc)) from exc
        return HttpResponse(response.status_code, response.content, list(response.headers.items()))

    async def aclose(self) -> None:
        await self.client.aclose()


@pytest.fixture
async def sim_issuer(request):
    """A running simulator (the project's OAuth issuer + backend). Parametrise with
    `@pytest.mark.parametrize("sim_issuer", [{...SimConfig fields...}], indirect=True)`."""
    from codex_trio.sim import running_sim

    options = getattr(request, "param", {}) or {}
    async with running_sim(**options) as sim:
        yield sim
