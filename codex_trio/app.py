"""Composition root: builds the components and runs everything in one root nursery.

Order matters and is explicit: config watcher and background jobs first (started with `nursery.start`, so
they are ready before the first request), then the main listener, then the Ollama listener. Shutdown is the
reverse: stop accepting and drain streams, then cancel the nursery.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import trio

from . import __version__
from .collector import collect_young_less_often
from .config.store import Change, ConfigStore
from .server.api import MAX_REQUEST_BYTES, create_api_app
from .server.body_limit import limit_body
from .server.descriptors import DescriptorBudget
from .server.envelopes import closing_error_answer
from .server.listener import ConnectionLimits, Listener
from .server.ollama_app import create_ollama_app
from .server.ollama_listener import OllamaController
from .server.request_tasks import own_request_tasks
from .server.shutdown import ShutdownCoordinator, answer_when_cut

if TYPE_CHECKING:
    from .dispatch.conversations import ConversationRegistry
    from .services import Services

log = logging.getLogger(__name__)

RouteRegistrar = Callable[[Any, "Gateway"], None]
BackgroundJob = Callable[..., Any]  # async def job(gateway, *, task_status)
# After the grace period, how long cut streams have to write their terminal frames before the listeners close
# their connections.
CUT_MARGIN_SECONDS = 2.0


@dataclass
class Gateway:
    config: ConfigStore
    shutdown: ShutdownCoordinator = field(default_factory=ShutdownCoordinator)
    route_registrars: list[RouteRegistrar] = field(default_factory=list)
    ollama_route_registrars: list[RouteRegistrar] = field(default_factory=list)
    background_jobs: list[BackgroundJob] = field(default_factory=list)
    # awaited with the grace period while draining, beside the listeners (token refreshes in flight)
    drain_hooks: list[Callable[[float], Awaitable[Any]]] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    nursery: trio.Nursery | None = None
    stop_requested: trio.Event = field(default_factory=trio.Event)
    # Set once the main listener accepts: work that can wait for it (the quota poller's first round) does not
    # compete with the start-up for the one Python thread.
    serving: trio.Event = field(default_factory=trio.Event)
    # The open-file limit (raised to the hard limit when the gateway starts) and the upstream socket budget.
    descriptors: DescriptorBudget = field(default_factory=DescriptorBudget.current)
    # The feature components (upstream connector, accounts, catalog, dispatcher), built by
    # `surfaces.install_surfaces`; each component is handed the pieces it uses from here.
    services: "Services | None" = None
    # The one clock of accounts, cooldowns, quota and upstream timestamps. Tests hand in the simulator's
    # movable clock, so moving it moves the gateway's cooldowns and token expiry too.
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.main_listener = Listener("main", lambda: self._guarded(create_api_app(self)),
                                      on_exhausted=self.on_descriptors_exhausted)
        self.ollama = OllamaController(self, lambda: self._guarded(create_ollama_app(self)))
        self.config.subscribe(self._on_config_change)

    def _guarded(self, app: Any) -> Any:
        """Around each listener's app: the body cap before anything is buffered, a 503 in the protocol's
        envelope for requests still waiting for an answer when shutdown cuts them, and the tasks that work for a
        request (a streamed turn's pump) ended with it."""
        return answer_when_cut(limit_body(own_request_tasks(app), MAX_REQUEST_BYTES, closing_error_answer),
                               self.shutdown, closing_error_answer)

    def upstream_conversations(self) -> "ConversationRegistry | None":
        """The dispatcher's ConversationRegistry (the upstream sockets), once the dispatch job runs."""
        dispatcher = self.services.dispatcher if self.services is not None else None
        return dispatcher.conversations if dispatcher is not None else None

    def on_descriptors_exhausted(self) -> None:
        """A listener could not accept for want of descriptors: give back idle upstream sockets."""
        conversations = self.upstream_conversations()
        if conversations is not None:
            shed = conversations.shed()
            if shed:
                log.warning("out of file descriptors: closing %d idle upstream connection(s)", shed)

    def listener_grace(self) -> float:
        """How long a listener keeps connections after it stops accepting: our own grace period, then enough
        for cut streams to write their terminal frames."""
        return self.config.settings.server.graceful_shutdown_seconds + CUT_MARGIN_SECONDS

    def health(self) -> dict[str, Any]:
        return {
            "status": "draining" if self.shutdown.draining.is_set() else "ok",
            "version": __version__,
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "open_streams": self.shutdown.open_streams,
            "ollama": self.ollama.listener.status.state,
            "descriptors": self.descriptor_stats(),
        }

    def descriptor_stats(self) -> dict[str, Any]:
        """The descriptor limit, how many are open, and the upstream sockets against their budget."""
        conversations = self.upstream_conversations()
        return {**self.descriptors.as_dict(),
                "upstream_sockets_open": conversations.open_sockets() if conversations is not None else 0}

    def _on_config_change(self, change: Change) -> None:
        if "logs" in change.sections():
            logging.getLogger().setLevel(change.new.logs.level.upper())
        if "ollama" in change.sections() and self.nursery is not None:
            self.nursery.start_soon(self.ollama.apply)

    async def run(self, *, host: str | None = None, port: int | None = None,
                  task_status=trio.TASK_STATUS_IGNORED) -> None:
        settings = self.config.settings
        self.descriptors = DescriptorBudget.at_start()
        collect_young_less_often()  # per-event garbage would otherwise run a collection every few dozen events
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            await nursery.start(self.config.watch)
            for job in self.background_jobs:
                await nursery.start(job, self)
            url = await self.main_listener.start(
                nursery, host or settings.server.host, settings.server.port if port is None else port,
                limits=ConnectionLimits.of(settings.server), graceful_timeout=self.listener_grace())
            await self.ollama.apply()
            self.serving.set()
            task_status.started(url)
            await self.stop_requested.wait()
            await self._drain()
            nursery.cancel_scope.cancel()

    async def _drain(self) -> None:
        """Stop accepting on every listener and let open work finish for the grace period; what is left is
        then cut (each piece ends with its protocol's answer) and the listeners close right after."""
        grace = self.config.settings.server.graceful_shutdown_seconds
        log.info("shutting down: letting open requests and streams finish for up to %.0f s", grace)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.shutdown.drain, grace)
            nursery.start_soon(self.main_listener.stop)
            nursery.start_soon(self.ollama.listener.stop)
            for hook in self.drain_hooks:
                nursery.start_soon(hook, grace)


async def stop_on_signals(gateway: Gateway) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            if gateway.stop_requested.is_set():
                log.warning("second signal: stopping now")
                raise KeyboardInterrupt
            log.info("received %s", signal.Signals(signum).name)
            gateway.stop_requested.set()


async def serve_until_signalled(gateway: Gateway, *, host: str | None = None, port: int | None = None,
                                on_ready: Callable[[str], None] | None = None) -> None:
    """Run the gateway until SIGINT/SIGTERM, then drain and return."""
    async with trio.open_nursery() as nursery:
        async def run_then_stop_watching(task_status=trio.TASK_STATUS_IGNORED) -> None:
            await gateway.run(host=host, port=port, task_status=task_status)
            nursery.cancel_scope.cancel()  # the gateway has drained: the signal watcher is all that is left

        nursery.start_soon(stop_on_signals, gateway)
        url = await nursery.start(run_then_stop_watching)
        if on_ready is not None:
            on_ready(url)
