"""One HTTP listener that can be started, stopped and restarted inside the root nursery.

Each listener serves its own Quart-Trio app (serving one app twice would run its lifespan twice).
A port that is already taken is reported as a status, never as a crash of the gateway.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable

import trio
from hypercorn.config import Sockets

from .http_server import ServingConfig, serve

log = logging.getLogger(__name__)

# Linux: abort a connection whose unacknowledged data has not moved for this long. Without it a client that
# stops reading keeps hypercorn's shielded write blocked and the process can never shut down.
TCP_USER_TIMEOUT = getattr(socket, "TCP_USER_TIMEOUT", 18)


class GatewayHypercornConfig(ServingConfig):
    tcp_user_timeout_ms: int = 30000

    def create_sockets(self) -> Sockets:
        sockets = super().create_sockets()
        for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT, self.tcp_user_timeout_ms)
                except OSError:  # not Linux: the option does not exist; nothing better to do
                    pass
        return sockets


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a client connection may take or sit idle (the `server.` settings of the same names)."""

    tcp_user_timeout_ms: int = 30000
    keep_alive_timeout_seconds: float = 75.0
    header_timeout_seconds: float = 10.0
    websocket_ping_seconds: float | None = 15.0  # `server.heartbeat_seconds`: WebSockets get a ping frame this often

    @classmethod
    def of(cls, server: Any) -> "ConnectionLimits":
        return cls(server.tcp_user_timeout_ms, server.keep_alive_timeout_seconds, server.header_timeout_seconds,
                   server.heartbeat_seconds)


def hypercorn_config(host: str, port: int, *, limits: ConnectionLimits, graceful_timeout: float) -> GatewayHypercornConfig:
    config = GatewayHypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.tcp_user_timeout_ms = limits.tcp_user_timeout_ms
    config.keep_alive_timeout = limits.keep_alive_timeout_seconds
    config.header_timeout = limits.header_timeout_seconds
    config.websocket_ping_interval = limits.websocket_ping_seconds
    config.graceful_timeout = graceful_timeout
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


class ListenerError(Exception):
    pass


@dataclass
class ListenerStatus:
    state: str = "stopped"  # stopped | starting | running | error
    url: str | None = None
    error: str | None = None
    started_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "running": self.state == "running", "url": self.url, "error": self.error,
                "started_at": self.started_at}


class Listener:
    def __init__(self, name: str, app_factory: Callable[[], Any], *,
                 on_exhausted: Callable[[], None] | None = None):
        self.name = name
        self._app_factory = app_factory
        self._on_exhausted = on_exhausted  # called when accept fails for want of descriptors
        self.status = ListenerStatus()
        self._shutdown: trio.Event | None = None
        self._stopped: trio.Event | None = None
        self._scope: trio.CancelScope | None = None

    @property
    def running(self) -> bool:
        return self.status.state == "running"

    async def start(self, nursery: trio.Nursery, host: str, port: int, *, limits: ConnectionLimits = ConnectionLimits(),
                    graceful_timeout: float = 3.0) -> str:
        """Bind and serve. Returns the URL. A bind failure is recorded in `status` and raised as ListenerError."""
        if self.running:
            raise ListenerError(f"{self.name} listener is already running at {self.status.url}")
        self.status = ListenerStatus(state="starting")
        config = hypercorn_config(host, port, limits=limits, graceful_timeout=graceful_timeout)
        try:
            binds = await nursery.start(self._serve, self._app_factory(), config)
        except* OSError as group:
            reason = _bind_error_text(_first_leaf(group), host, port)
            self.status = ListenerStatus(state="error", error=reason)
            raise ListenerError(reason) from None
        self.status = ListenerStatus(state="running", url=binds[0], started_at=time.time())
        log.info("%s listener on %s", self.name, binds[0])
        return binds[0]

    async def _serve(self, app: Any, config: GatewayHypercornConfig, task_status=trio.TASK_STATUS_IGNORED) -> None:
        shutdown, stopped = trio.Event(), trio.Event()
        self._shutdown, self._stopped = shutdown, stopped
        try:
            with trio.CancelScope() as scope:
                self._scope = scope
                await serve(app, config, name=self.name, shutdown_trigger=shutdown.wait,
                            on_exhausted=self._on_exhausted, task_status=task_status)
        finally:
            stopped.set()
            if self.status.state == "running":
                self.status = ListenerStatus(state="stopped")

    async def stop(self, *, graceful: bool = True) -> None:
        """Stop accepting; with `graceful`, let open requests finish (up to hypercorn's graceful timeout)."""
        if self._stopped is None or self._stopped.is_set():
            self.status = ListenerStatus(state="stopped") if self.status.state != "error" else self.status
            return
        if graceful and self._shutdown is not None:
            self._shutdown.set()
        elif self._scope is not None:
            self._scope.cancel()
        await self._stopped.wait()
        self.status = ListenerStatus(state="stopped")


def _first_leaf(group: BaseException) -> BaseException:
    while isinstance(group, BaseExceptionGroup):
        group = group.exceptions[0]
    return group


def _bind_error_text(exc: BaseException, host: str, port: int) -> str:
    if isinstance(exc, OSError) and exc.errno in (98, 48):  # EADDRINUSE on Linux / macOS
        return f"port {port} on {host} is already in use (is another server, e.g. a real Ollama, running?)"
    if isinstance(exc, OSError) and exc.errno in (99, 49):  # EADDRNOTAVAIL
        return f"cannot bind {host}:{port}: no such local address"
    if isinstance(exc, OSError) and exc.errno == 13:
        return f"cannot bind {host}:{port}: permission denied (ports below 1024 need privileges)"
    return f"cannot bind {host}:{port}: {exc}"
