"""`Simulator`: the simulated ChatGPT backend + OAuth issuer as one object a test or the CLI can run."""

from __future__ import annotations

import ssl
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import trio
import trustme

from .app import SimApp
from .clock import SimClock
from .scenario import Rule
from .server import serve_connection
from .state import RecordedRequest, SimAccount, SimConfig, SimState

REAL_HOSTS = ("chatgpt.com", "auth.openai.com")
HOST_NAMES = ("127.0.0.1", "localhost", *REAL_HOSTS)


@dataclass(frozen=True, slots=True)
class SimURLs:
    host: str
    port: int
    base: str  # scheme://host:port (https when SimConfig.https)
    backend_base: str  # base + "/backend-api"
    auth_base: str  # the OAuth issuer (same port)
    http_base: str  # plain-HTTP base on the same port
    ca_file: str

    @property
    def resolve(self) -> dict[str, str]:
        """The real host names pinned to this simulator (a client's `resolve` option, like curl's --resolve):
        with `real_backend_base` / `real_auth_base` a client talks to it with the real SNI and Host."""
        address = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        return {name: address for name in REAL_HOSTS}

    real_backend_base = "https://chatgpt.com/backend-api"
    real_auth_base = "https://auth.openai.com"


class Simulator:
    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.state = SimState(self.config)
        self.app = SimApp(self.state)
        self._ca = trustme.CA()
        self._leaf = self._ca.issue_cert(*HOST_NAMES)
        self._dir = tempfile.TemporaryDirectory(prefix="codex-trio-sim-")
        self.ca_file = str(Path(self._dir.name) / "sim-ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_file)
        self.urls: SimURLs | None = None

    # ---------------------------------------------------------------- state access for tests

    @property
    def accounts(self) -> list[SimAccount]:
        return list(self.state.accounts.values())

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.state.requests

    @property
    def clock(self) -> SimClock:
        return self.state.clock

    def account(self, account_id: str) -> SimAccount:
        return self.state.accounts[account_id]

    def add_account(self, plan: str = "plus", email: str | None = None) -> SimAccount:
        return self.state.add_account(plan, email or f"sim{len(self.state.accounts) + 1}@example.com")

    def script(self, rule: Rule | dict[str, Any]) -> None:
        """Add a scenario rule; it is tried before every earlier rule."""
        self.state.rules.add(rule if isinstance(rule, Rule) else Rule.model_validate(rule))

    def ban(self, account_id: str) -> None:
        self.state.accounts[account_id].banned = True

    def unban(self, account_id: str) -> None:
        self.state.accounts[account_id].banned = False

    def exhaust(self, account_id: str, limit_id: str = "codex") -> None:
        self.state.accounts[account_id].quota.exhaust(self.state.clock.now(), limit_id)

    def forget_chains(self) -> None:
        """Every open WebSocket forgets its responses, as the backend does when its connection-scoped cache
        is lost: the next `previous_response_id` gets `previous_response_not_found`."""
        for socket in list(self.state.sockets):
            socket.history.clear()

    def login_as(self, account_id: str) -> None:
        self.state.login_account_id = account_id

    def approve_device(self, user_code: str, account_id: str | None = None) -> bool:
        return self.app.auth.approve_device(user_code, account_id or self.state.login_account_id or "")

    def requests_to(self, path_suffix: str, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.state.requests
                if r.path.endswith(path_suffix) and (method is None or r.method == method)]

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the simulator's CA."""
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context

    # ---------------------------------------------------------------- serving

    def _server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._leaf.configure_cert(context)
        context.set_alpn_protocols(["h2", "http/1.1"])
        return context

    async def serve(self, host: str = "127.0.0.1", port: int = 0, *,
                    task_status: trio.TaskStatus[SimURLs] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; `await nursery.start(sim.serve, host, port)` returns the `SimURLs`."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound = listeners[0].socket.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        scheme = "https" if self.config.https else "http"
        base = f"{scheme}://{shown}:{bound}"
        self.urls = SimURLs(host, bound, base, base + "/backend-api", base, f"http://{shown}:{bound}", self.ca_file)
        handler = partial(serve_connection, handler=self.app.handle, ssl_context=self._server_context())
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, handler, listeners)
            task_status.started(self.urls)

    def close(self) -> None:
        self._dir.cleanup()
