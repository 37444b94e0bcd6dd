"""The egress proxy pool: proxies users add (http, https, socks5, socks5h, with credentials), how each account
is routed through one of them, and their health.

An account's route is its `proxy` field (peers.md §3 A.7: one exit IP per account, never a new one per request):

    None            the global default (`tls.proxy_url`, or direct when that is unset)
    "direct"        no proxy, whatever the default says
    "auto"          a healthy pool proxy chosen for it once (the one with the fewest accounts), then kept;
    "auto:<group>"  the same among the proxies of one group
    "<proxy id>"    that pool proxy (`px-…`)
    "<url>"         that proxy URL (an account's own proxy, as before the pool existed)

Credentials are encrypted at rest (Fernet, key file `proxies.key` beside the store, mode 0600) and masked
wherever a URL is shown. The auto choice is stored (`proxy_auto_choices`) so it survives restarts; it only
changes when its proxy is removed, disabled or excluded as unhealthy, and then to another healthy proxy —
never silently to direct (with no healthy proxy left the account has no route and its requests fail).
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import trio

from ..errors import ErrorKind, GatewayError, invalid_request
from ..store.connection import Connection, Row
from .fields import PROXY_SCHEMES

if TYPE_CHECKING:
    from .model import Account
    from .store import AccountStore

log = logging.getLogger(__name__)

KEY_FILE = "proxies.key"
DIRECT = "direct"
AUTO = "auto"
ID_PREFIX = "px-"
DEFAULT_GROUP = "default"


class Health:
    UNCHECKED = "unchecked"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"  # failed `failure_threshold` checks in a row: excluded until a check passes


class NoRoute(GatewayError):
    """An account assigned to the pool has no usable proxy (all excluded, or its proxy is gone)."""

    def __init__(self, account_id: str, why: str) -> None:
        super().__init__(503, f"account {account_id} has no egress route: {why}; add or repair a proxy "
                              "(codex-trio proxies list / check) or reassign the account", ErrorKind.OVERLOADED,
                         code="no_egress_proxy")


# ---- values ---------------------------------------------------------------------------------------------------


def checked_proxy_url(value: Any, *, param: str = "url") -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid_request(f"`{param}` must be a proxy URL such as socks5://user:pass@host:1080", param=param)
    parts = urlsplit(value.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname or port == -1:
        raise invalid_request(f"`{param}` must look like {PROXY_SCHEMES[0]}://host:port (schemes: "
                              f"{', '.join(PROXY_SCHEMES)})", param=param)
    return value.strip()


def mask_url(url: str | None) -> str | None:
    """The URL with its credentials hidden: `socks5://u***:***@host:1080`."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    user = unquote(parts.username or "")
    shown = (quote(user[:1]) + "***") if user else ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{shown}{':***' if parts.password is not None else ''}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def mask_assignment(value: str | None) -> str | None:
    """An account's `proxy` field as shown: a URL masked, the keywords and pool ids as they are."""
    return mask_url(value) if value and "://" in value else value


class UnreadableSecret(Exception):
    """A sealed value this key cannot open (another key file, or a damaged value)."""


class SecretBox:
    """Encrypts proxy URLs (they carry credentials) with a key kept in a 0600 file in the data dir.

    `cryptography` is imported on the first seal/open, not at start-up: its Rust bindings are 6 MiB of resident
    memory that a gateway without proxies never needs."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._fernet: Any = None

    @classmethod
    def in_dir(cls, directory: Path) -> "SecretBox":
        path = directory / KEY_FILE
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            os.chmod(path, 0o600)
            return cls(path.read_bytes().strip())
        key = base64.urlsafe_b64encode(os.urandom(32))  # a Fernet key: 32 random bytes, URL-safe base64
        with os.fdopen(fd, "wb") as file:
            file.write(key + b"\n")
            file.flush()
            os.fsync(file.fileno())
        return cls(key)

    def _cipher(self) -> Any:
        if self._fernet is None:
            from cryptography.fernet import Fernet

            self._fernet = Fernet(self._key)
        return self._fernet

    def seal(self, text: str) -> str:
        return self._cipher().encrypt(text.encode()).decode()

    def open(self, sealed: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._cipher().decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise UnreadableSecret() from exc


@dataclass(slots=True)
class Proxy:
    id: str
    url: str  # with its credentials: never shown (see `view`)
    label: str | None = None
    group: str = DEFAULT_GROUP
    enabled: bool = True
    health: str = Health.UNCHECKED
    failures: int = 0  # failed checks in a row
    latency_ms: float | None = None
    exit_ip: str | None = None
    last_error: str | None = None
    checked_at: float | None = None
    next_check_at: float | None = None  # an excluded proxy is re-checked with backoff
    created_at: float = 0.0

    @property
    def usable(self) -> bool:
        return self.enabled and self.health != Health.UNHEALTHY

    def view(self, accounts: int = 0) -> dict[str, Any]:
        return {"id": self.id, "url": mask_url(self.url), "scheme": urlsplit(self.url).scheme, "label": self.label,
                "group": self.group, "enabled": self.enabled, "health": self.health, "usable": self.usable,
                "failures": self.failures, "latency_ms": self.latency_ms, "exit_ip": self.exit_ip,
                "last_error": self.last_error, "checked_at": self.checked_at, "next_check_at": self.next_check_at,
                "accounts": accounts}


# ---- persistence ------------------------------------------------------------------------------------------------

_PROXY_COLUMNS = ("id", "url_sealed", "label", "grp", "enabled", "health", "failures", "latency_ms", "exit_ip",
                  "last_error", "checked_at", "next_check_at", "created_at")


class ProxyStore:
    """The proxy rows of the account store (tables `proxies` and `proxy_auto_choices`)."""

    def __init__(self, store: "AccountStore", box: SecretBox) -> None:
        self._store = store
        self._box = box

    @classmethod
    def of(cls, store: "AccountStore", key_dir: Path | None = None) -> "ProxyStore":
        """The key file lives in `key_dir` (the data dir; default: beside a SQLite store file). Instances sharing a
        PostgreSQL store need the same key file in each data dir (docs/scale-out.md)."""
        if key_dir is None:
            if store.path is None:
                raise ValueError("a store without a file needs the folder of its proxy key")
            key_dir = store.path.parent
        return cls(store, SecretBox.in_dir(key_dir))

    def _row(self, proxy: Proxy) -> tuple:
        return (proxy.id, self._box.seal(proxy.url), proxy.label, proxy.group, int(proxy.enabled), proxy.health,
                proxy.failures, proxy.latency_ms, proxy.exit_ip, proxy.last_error, proxy.checked_at,
                proxy.next_check_at, proxy.created_at)

    def _proxy(self, row: Row) -> Proxy | None:
        try:
            url = self._box.open(row["url_sealed"])
        except UnreadableSecret:
            log.error("proxy %s could not be decrypted with %s (a different key file?); left as is", row["id"], KEY_FILE)
            return None
        return Proxy(id=row["id"], url=url, label=row["label"], group=row["grp"], enabled=bool(row["enabled"]),
                     health=row["health"], failures=row["failures"], latency_ms=row["latency_ms"],
                     exit_ip=row["exit_ip"], last_error=row["last_error"], checked_at=row["checked_at"],
                     next_check_at=row["next_check_at"], created_at=row["created_at"])

    async def load(self) -> tuple[list[Proxy], dict[str, str]]:
        rows = await self._store.query("SELECT * FROM proxies ORDER BY created_at, id")
        choices = await self._store.query("SELECT account_id, proxy_id FROM proxy_auto_choices")
        return ([p for p in map(self._proxy, rows) if p is not None],
                {row["account_id"]: row["proxy_id"] for row in choices})

    async def save(self, proxy: Proxy) -> None:
        marks = ", ".join("?" for _ in _PROXY_COLUMNS)
        row = self._row(proxy)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _PROXY_COLUMNS if c != "id")
        await self._store.transaction(lambda c: c.execute(
            f"INSERT INTO proxies ({', '.join(_PROXY_COLUMNS)}) VALUES ({marks}) "
            f"ON CONFLICT (id) DO UPDATE SET {updates}", row))

    async def delete(self, proxy_id: str) -> None:
        def work(c: Connection) -> None:
            c.execute("DELETE FROM proxies WHERE id = ?", (proxy_id,))
            c.execute("DELETE FROM proxy_auto_choices WHERE proxy_id = ?", (proxy_id,))

        await self._store.transaction(work)

    async def save_choices(self, choices: dict[str, str | None]) -> None:
        """Set (or, for None, drop) the auto choice of each account, in one transaction."""
        def work(c: Connection) -> None:
            for account_id, proxy_id in choices.items():
                if proxy_id is None:
                    c.execute("DELETE FROM proxy_auto_choices WHERE account_id = ?", (account_id,))
                else:
                    c.execute("INSERT INTO proxy_auto_choices (account_id, proxy_id) VALUES (?, ?) "
                              "ON CONFLICT (account_id) DO UPDATE SET proxy_id = excluded.proxy_id",
                              (account_id, proxy_id))

        if choices:
            await self._store.transaction(work)


PROXY_MIGRATION = [
    """CREATE TABLE proxies (
        id TEXT PRIMARY KEY,
        url_sealed TEXT NOT NULL,
        label TEXT,
        grp TEXT NOT NULL DEFAULT 'default',
        enabled INTEGER NOT NULL DEFAULT 1,
        health TEXT NOT NULL DEFAULT 'unchecked',
        failures INTEGER NOT NULL DEFAULT 0,
        latency_ms REAL,
        exit_ip TEXT,
        last_error TEXT,
        checked_at REAL,
        next_check_at REAL,
        created_at REAL NOT NULL
    )""",
    """CREATE TABLE proxy_auto_choices (
        account_id TEXT PRIMARY KEY,
        proxy_id TEXT NOT NULL
    )""",
]


# ---- the pool ---------------------------------------------------------------------------------------------------


def new_proxy_id() -> str:
    return ID_PREFIX + secrets.token_hex(4)


def auto_group(assignment: str | None) -> str | None | bool:
    """For an auto assignment its group (None = any group); False when the assignment is not auto."""
    if assignment == AUTO:
        return None
    if assignment and assignment.startswith(AUTO + ":"):
        return assignment[len(AUTO) + 1:]
    return False


class ProxyPool:
    """The proxies and the accounts' auto choices, in memory (routing a request reads no file), written through
    to the store. `route_for` is what every upstream call of an account asks."""

    def __init__(self, store: ProxyStore, *, default_proxy: Callable[[], str | None],
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._default_proxy = default_proxy
        self._clock = clock
        self.proxies: dict[str, Proxy] = {}
        self.choices: dict[str, str] = {}  # account id → pool proxy id, for auto assignments
        self.pinned: dict[str, int] = {}  # pool proxy id → accounts assigned to it by id (as of the last `place`)
        self._unsaved: dict[str, str | None] = {}  # choices made while routing, written by `flush`
        self._choice_made = trio.Event()

    async def load(self) -> None:
        proxies, self.choices = await self._store.load()
        self.proxies = {p.id: p for p in proxies}

    async def stored(self) -> tuple[list[Proxy], dict[str, str]]:
        return await self._store.load()

    def adopt(self, proxies: list[Proxy], choices: dict[str, str]) -> bool:
        """The rows as the store holds them now (several instances on PostgreSQL: another instance added, changed
        or removed a proxy). A proxy this instance knows keeps its object and its own health checks; what the
        operator sets (url, label, group, enabled) is taken. Returns whether routes may have changed."""
        changed = set(proxies_by_id := {p.id: p for p in proxies}) != set(self.proxies)
        for proxy_id, stored in proxies_by_id.items():
            mine = self.proxies.get(proxy_id)
            if mine is None:
                continue
            if (mine.url, mine.label, mine.group, mine.enabled) != (stored.url, stored.label, stored.group,
                                                                   stored.enabled):
                mine.url, mine.label, mine.group, mine.enabled = stored.url, stored.label, stored.group, stored.enabled
                changed = True
            proxies_by_id[proxy_id] = mine
        self.proxies = proxies_by_id
        self.choices = {**choices, **{a: p for a, p in self.choices.items() if p in proxies_by_id}}
        return changed

    # ---- CRUD

    def get(self, proxy_id: str) -> Proxy:
        proxy = self.proxies.get(proxy_id)
        if proxy is None:
            raise GatewayError(404, f"no proxy {proxy_id!r}; `codex-trio proxies list` shows the pool",
                               ErrorKind.NOT_FOUND, code="proxy_not_found")
        return proxy

    def counts(self) -> dict[str, int]:
        """Accounts per proxy: pinned to it, and auto accounts on it (what `auto` spreads evenly)."""
        counts = {proxy_id: self.pinned.get(proxy_id, 0) for proxy_id in self.proxies}
        for proxy_id in self.choices.values():
            if proxy_id in counts:
                counts[proxy_id] += 1
        return counts

    def list(self) -> list[dict[str, Any]]:
        counts = self.counts()
        return [p.view(counts.get(p.id, 0)) for p in self.proxies.values()]

    def _refuse_duplicate(self, url: str, *, but: str | None = None) -> None:
        if any(p.url == url and p.id != but for p in self.proxies.values()):
            raise GatewayError(409, f"{mask_url(url)} is in the pool already", ErrorKind.INVALID_REQUEST,
                               code="proxy_exists")

    async def add(self, url: str, *, label: str | None = None, group: str | None = None,
                  enabled: bool = True) -> Proxy:
        url = checked_proxy_url(url)
        self._refuse_duplicate(url)
        proxy = Proxy(id=new_proxy_id(), url=url, label=label, group=group or DEFAULT_GROUP, enabled=enabled,
                      created_at=self._clock())
        await self._store.save(proxy)
        self.proxies[proxy.id] = proxy
        return proxy

    async def update(self, proxy_id: str, **changes: Any) -> Proxy:
        proxy = self.get(proxy_id)
        if "url" in changes:
            changes["url"] = checked_proxy_url(changes["url"])
            self._refuse_duplicate(changes["url"], but=proxy_id)
        for name, value in changes.items():
            setattr(proxy, name, value)
        if "url" in changes:  # a new address: its old health says nothing
            proxy.health, proxy.failures, proxy.exit_ip, proxy.latency_ms = Health.UNCHECKED, 0, None, None
        await self._store.save(proxy)
        return proxy

    async def remove(self, proxy_id: str) -> Proxy:
        proxy = self.get(proxy_id)
        await self._store.delete(proxy_id)
        del self.proxies[proxy_id]
        self.choices = {a: p for a, p in self.choices.items() if p != proxy_id}
        return proxy

    async def save(self, proxy: Proxy) -> None:
        await self._store.save(proxy)

    # ---- routing

    def _candidates(self, group: str | None) -> list[Proxy]:
        return [p for p in self.proxies.values() if p.usable and (group is None or p.group == group)]

    def choose(self, group: str | None, *, counts: dict[str, int] | None = None) -> Proxy | None:
        """The usable proxy of `group` with the fewest auto accounts (ties: the oldest)."""
        candidates = self._candidates(group)
        if not candidates:
            return None
        counts = counts if counts is not None else self.counts()
        return min(candidates, key=lambda p: (counts.get(p.id, 0), p.created_at, p.id))

    def route_for(self, account: "Account", *, counts: dict[str, int] | None = None) -> str | None:
        """The proxy URL this account's traffic leaves through (None: direct). Raises NoRoute when the account
        belongs to the pool and no proxy of it is usable (never falls back to direct). `counts` (auto accounts
        per proxy) is kept up to date when given, so placing many accounts counts once."""
        assignment = account.proxy
        if assignment is None:
            return self._default_proxy()
        if assignment == DIRECT:
            return None
        if assignment.startswith(ID_PREFIX):
            proxy = self.proxies.get(assignment)
            if proxy is None:
                raise NoRoute(account.id, f"its proxy {assignment} is not in the pool")
            if not proxy.usable:
                raise NoRoute(account.id, f"its proxy {assignment} is "
                                          f"{'disabled' if not proxy.enabled else 'excluded: ' + str(proxy.last_error)}")
            return proxy.url
        group = auto_group(assignment)
        if group is False:
            return assignment  # the account's own proxy URL
        chosen = self.proxies.get(self.choices.get(account.id, ""))
        if chosen is None or not chosen.usable or (group is not None and chosen.group != group):
            chosen = self.choose(group, counts=counts)
            if chosen is None:
                raise NoRoute(account.id, "no usable proxy" + (f" in group {group!r}" if group else " in the pool"))
            if counts is not None:
                previous = self.choices.get(account.id)
                if previous in counts:
                    counts[previous] -= 1
                counts[chosen.id] = counts.get(chosen.id, 0) + 1
            self.choices[account.id] = chosen.id
            self._unsaved[account.id] = chosen.id
            self._choice_made.set()
        return chosen.url

    def count_pinned(self, accounts: list["Account"]) -> None:
        self.pinned = {}
        for account in accounts:
            if account.proxy and account.proxy.startswith(ID_PREFIX):
                self.pinned[account.proxy] = self.pinned.get(account.proxy, 0) + 1

    def place(self, accounts: list["Account"]) -> dict[str, str | None]:
        """Give each auto account without a usable choice one (fewest accounts first); the changes are returned
        and kept for `flush`. Accounts no longer auto lose their stored choice."""
        self.count_pinned(accounts)
        counts = self.counts()
        for account in accounts:
            group = auto_group(account.proxy)
            if group is not False:
                try:
                    self.route_for(account, counts=counts)
                    continue
                except NoRoute:
                    pass
            dropped = self.choices.pop(account.id, None)  # not auto any more, or nowhere to go: no choice kept
            if dropped is not None:
                self._unsaved[account.id] = None
                if dropped in counts:
                    counts[dropped] -= 1
        return dict(self._unsaved)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Background job: store an auto choice made while routing a request soon, so it survives a restart."""
        task_status.started()
        while True:
            await self._choice_made.wait()
            self._choice_made = trio.Event()
            await self.flush()

    async def flush(self) -> None:
        unsaved, self._unsaved = self._unsaved, {}
        try:
            await self._store.save_choices(unsaved)
        except BaseException:
            self._unsaved = {**unsaved, **self._unsaved}
            raise

    def account_route(self, account: "Account") -> dict[str, Any]:
        """What an account's route is, for views: mode, the proxy (masked) and why it cannot be used."""
        assignment = account.proxy
        group = auto_group(assignment)
        mode = ("default" if assignment is None else DIRECT if assignment == DIRECT else
                "specific" if assignment.startswith(ID_PREFIX) else AUTO if group is not False else "url")
        view: dict[str, Any] = {"account_id": account.id, "mode": mode, "assignment": mask_assignment(assignment)}
        if group:
            view["group"] = group
        try:
            url = self.route_for(account)
        except NoRoute as exc:
            view.update(proxy_id=None, proxy_url=None, paused=True, reason=exc.message)
            return view
        proxy_id = (assignment if mode == "specific" else self.choices.get(account.id) if mode == AUTO else None)
        view.update(proxy_id=proxy_id, proxy_url=mask_url(url), paused=False, reason=None)
        return view
