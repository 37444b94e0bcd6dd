"""The simulator's state: configuration, accounts, issued grants, recorded requests (no I/O here)."""

from __future__ import annotations

import secrets
import string
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

import orjson

from .catalog import Catalog
from .clock import SimClock
from .quota import Quota
from .scenario import RuleBook, Scenario
from .tokens import Identity, TokenIssuer, TokenSet
from .wire import ConnectionInfo

PLANS = ("free", "go", "plus", "pro", "team", "business", "enterprise", "edu")


@dataclass
class SimConfig:
    accounts: int | list[str] = 1  # a count (plans cycle through `plans`) or the list of plans, one per account
    plans: tuple[str, ...] = ("plus",)
    token_ttl_seconds: int = 864000
    scenario: Scenario | str | None = None  # a Scenario, or the path of a YAML scenario file
    https: bool = True  # base URLs use https (the port serves plain HTTP too)
    deflate: bool = True  # accept permessage-deflate on the WebSocket when offered
    websocket: bool = True  # False: refuse the Responses WebSocket upgrade with 426 (clients fall back to SSE)
    ws_age_cap_seconds: float = 3600.0
    device_poll_interval: str = "1"
    record_requests: bool = True  # benchmarks turn this off so memory stays flat
    token_delay_seconds: float = 0.0  # /oauth/token answers this long after it has rotated the token
    # How answers are compressed for clients that send accept-encoding (see encoding.py): "negotiate" (zstd,
    # else gzip), "zstd", "gzip", "identity" (never), "mislabeled" (claims an encoding, sends plain bytes).
    response_encoding: str = "negotiate"


@dataclass
class SimAccount:
    account_id: str
    user_id: str
    email: str
    plan: str
    quota: Quota
    tokens: TokenSet
    banned: bool = False
    reset_credits: int = 1

    @property
    def access_token(self) -> str:
        return self.tokens.access_token

    @property
    def refresh_token(self) -> str:
        return self.tokens.refresh_token

    @property
    def id_token(self) -> str:
        return self.tokens.id_token

    def identity(self) -> Identity:
        return Identity(self.account_id, self.user_id, self.email, self.plan)

    def public(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "user_id": self.user_id, "email": self.email, "plan": self.plan,
                "banned": self.banned, "access_token": self.access_token, "refresh_token": self.refresh_token,
                "id_token": self.id_token, "expires_at": self.tokens.expires_at}


@dataclass
class RecordedRequest:
    """One request as received: header names in wire order and original case, body decoded."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: Any  # parsed JSON, form pairs (list of [name, value]), text, or None
    raw_body: bytes  # as on the wire (still zstd-compressed if it was)
    content_encoding: str | None
    http_version: str
    scheme: str
    status: int | None = None
    ws_messages: list[Any] = field(default_factory=list)  # parsed client frames, for a WebSocket upgrade
    client_gone: bool = False  # the client dropped the WebSocket while a response was being sent
    connection: ConnectionInfo | None = None  # ALPN, TLS ClientHello, HTTP/2 connection start

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    def header_names(self) -> list[str]:
        return [k for k, _ in self.headers]

    def public(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "query": self.query,
                "headers": [list(h) for h in self.headers], "body": self.body,
                "content_encoding": self.content_encoding, "http_version": self.http_version,
                "scheme": self.scheme, "status": self.status, "ws_messages": self.ws_messages,
                "alpn": self.connection.alpn if self.connection else None,
                "client_hello_hex": self.connection.client_hello.hex()
                if self.connection and self.connection.client_hello else None,
                "h2_connection_start": self.connection.h2_connection_start if self.connection else []}


@dataclass(slots=True)
class AuthCode:
    account_id: str
    client_id: str
    redirect_uris: tuple[str, ...]
    challenge: str
    expires_at: float


@dataclass(slots=True)
class DeviceGrant:
    device_auth_id: str
    user_code: str
    expires_at: float
    approved_account: str | None = None
    issued: dict[str, str] | None = None


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _user_id() -> str:
    alphabet = string.ascii_letters + string.digits
    return "user-" + "".join(secrets.choice(alphabet) for _ in range(24))


class SimState:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.clock = SimClock()
        self.issuer = TokenIssuer(ttl_seconds=config.token_ttl_seconds)
        self.catalog = Catalog()
        scenario = config.scenario
        if isinstance(scenario, str):
            scenario = Scenario.load(scenario)
        self.rules = RuleBook(scenario)
        self.requests: list[RecordedRequest] = []
        self.sockets: weakref.WeakSet[Any] = weakref.WeakSet()  # live Responses WebSocket sessions
        self.auth_codes: dict[str, AuthCode] = {}
        self.devices: dict[str, DeviceGrant] = {}
        self.accounts: dict[str, SimAccount] = {}
        plans = config.accounts if isinstance(config.accounts, list) else [
            config.plans[i % len(config.plans)] for i in range(config.accounts)]
        for index, plan in enumerate(plans, start=1):
            if plan not in PLANS:
                raise ValueError(f"unknown plan {plan!r}; use one of {', '.join(PLANS)}")
            self.add_account(plan, f"sim{index}@example.com")
        self.login_account_id: str | None = next(iter(self.accounts), None)

    def add_account(self, plan: str, email: str) -> SimAccount:
        account_id = str(uuid.uuid4())
        user_id = _user_id()
        who = Identity(account_id, user_id, email, plan)
        account = SimAccount(account_id, user_id, email, plan, Quota.for_plan(plan),
                             self.issuer.issue(who, self.clock.now()))
        self.accounts[account_id] = account
        return account

    def reissue(self, account: SimAccount) -> TokenSet:
        account.tokens = self.issuer.issue(account.identity(), self.clock.now())
        return account.tokens

    def token_response(self, tokens: TokenSet) -> bytes:
        return orjson.dumps({"id_token": tokens.id_token, "access_token": tokens.access_token,
                             "refresh_token": tokens.refresh_token, "token_type": "Bearer",
                             "expires_in": tokens.expires_in, "scope": "openid profile email offline_access"})
