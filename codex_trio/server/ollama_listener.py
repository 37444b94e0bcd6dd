"""The Ollama listener's lifecycle: follows the `ollama` settings at runtime, without a gateway restart."""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING, Any

import trio

from ..config.schema import OllamaSettings
from .listener import ConnectionLimits, Listener, ListenerError

if TYPE_CHECKING:
    from .host import GatewayHost

log = logging.getLogger(__name__)


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def advertised_url(url: str) -> str:
    """The URL to show for a listener: one bound to every address (0.0.0.0, ::) is reached on loopback."""
    scheme, _, rest = url.partition("://")
    host, _, port = rest.rpartition(":")
    if host.strip("[]") in ("0.0.0.0", "::"):
        host = "[::1]" if ":" in host else "127.0.0.1"
    return f"{scheme}://{host}:{port}"


class OllamaController:
    def __init__(self, gateway: "GatewayHost", app_factory):
        self._gateway = gateway
        self.listener = Listener("ollama", app_factory, on_exhausted=gateway.on_descriptors_exhausted)
        self._applied: OllamaSettings | None = None
        # The settings object whose start failed. A settings change is applied twice (the config change
        # callback and the admin handler both call `apply`); the second call must not retry the same failed
        # start, which would blank the recorded error while it runs. New settings (any admin POST or file
        # edit makes a new object) do retry.
        self._failed_for: OllamaSettings | None = None
        self._lock = trio.Lock()

    def status(self) -> dict[str, Any]:
        settings = self._gateway.config.settings.ollama
        return {"enabled": settings.enabled, "host": settings.host, "port": settings.port,
                **self.listener.status.as_dict()}

    async def apply(self, settings: OllamaSettings | None = None) -> dict[str, Any]:
        """Make the listener match the settings: start, stop or restart it. Errors end up in the status."""
        settings = settings or self._gateway.config.settings.ollama
        async with self._lock:
            listen_changed = self._applied is None or (
                (self._applied.host, self._applied.port) != (settings.host, settings.port))
            if self.listener.running and (not settings.enabled or listen_changed):
                await self.listener.stop(graceful=False)
            if settings.enabled and not self.listener.running and settings is not self._failed_for:
                await self._start(settings)
            elif not settings.enabled:
                self.listener.status.error = None
            self._applied = settings
        return self.status()

    async def _start(self, settings: OllamaSettings) -> None:
        if not is_loopback_host(settings.host) and not settings.allow_non_loopback:
            reason = (f"refusing to bind the Ollama listener to {settings.host}: the Ollama API has no "
                      f"authentication and passes /v1 through with the gateway key. Set "
                      f"ollama.allow_non_loopback: true if you really want that.")
            self.listener.status.state, self.listener.status.error = "error", reason
            self._failed_for = settings
            log.error(reason)
            return
        server = self._gateway.config.settings.server
        try:
            url = await self.listener.start(self._gateway.nursery, settings.host, settings.port,
                                            limits=ConnectionLimits.of(server),
                                            graceful_timeout=self._gateway.listener_grace())
            self.listener.status.url = advertised_url(url)
            self._failed_for = None
        except ListenerError as exc:
            self._failed_for = settings
            log.error("Ollama listener not started: %s", exc)
