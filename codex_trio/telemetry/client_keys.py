"""Client keys: keys for the client APIs only (never /admin/* or /auth/*), each with its own limits.

Stored hashed (SHA-256; only a readable prefix is kept, the full key is shown once at creation). A presented
key is found by its hash and confirmed with a constant-time comparison, so the time a check takes says
nothing about any stored key. Limits are checked before any upstream call (`admit`) and never touch an
account: the allowed models (glob patterns on the model id after alias resolution), concurrent requests,
requests per minute, and token budgets per UTC day / week (from Monday) / month (input + output tokens, cached
included as the backend counts them). Budget counters start from the daily rollups and grow with each record.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import hmac
import secrets
from collections import deque
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Callable, Iterable

import orjson
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ErrorKind, GatewayError
from ..store.connection import Connection, Row

if TYPE_CHECKING:
    from ..store.budget_leases import BudgetLeases
    from ..store.rate_leases import SlotLeases
    from .store import OperatorStore

KEY_PREFIX = "ctk_"
SHOWN_PREFIX_LENGTH = len(KEY_PREFIX) + 8
DAY = 86400


class KeyLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed_models: list[str] = Field(default_factory=list)  # empty: every model
    max_concurrency: int | None = Field(None, ge=1)
    requests_per_minute: int | None = Field(None, ge=1)
    tokens_per_day: int | None = Field(None, ge=1)
    tokens_per_week: int | None = Field(None, ge=1)
    tokens_per_month: int | None = Field(None, ge=1)


LIMIT_FIELDS = tuple(KeyLimits.model_fields)


@dataclass
class ClientKey:
    id: str
    name: str
    prefix: str
    key_hash: str
    enabled: bool = True
    created_at: float = 0.0
    last_used_at: float | None = None
    expires_at: float | None = None
    limits: KeyLimits = field(default_factory=KeyLimits)

    def public(self) -> dict[str, Any]:
        """What the admin API and the CLI show (never the hash)."""
        return {"id": self.id, "name": self.name, "prefix": self.prefix, "enabled": self.enabled,
                "created_at": self.created_at, "last_used_at": self.last_used_at, "expires_at": self.expires_at,
                **self.limits.model_dump()}


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _row_to_key(row: Row) -> ClientKey:
    return ClientKey(id=row["id"], name=row["name"], prefix=row["prefix"], key_hash=row["key_hash"],
                     enabled=bool(row["enabled"]), created_at=row["created_at"], last_used_at=row["last_used_at"],
                     expires_at=row["expires_at"], limits=KeyLimits.model_validate(orjson.loads(row["limits"])))


# ---- the rows (used by the gateway through OperatorStore.write/read, and by the CLI directly) ------------------

def read_keys(conn: Connection) -> list[ClientKey]:
    return [_row_to_key(r) for r in conn.execute("SELECT * FROM client_keys ORDER BY created_at, id")]


def insert_key(conn: Connection, key: ClientKey) -> None:
    conn.execute("INSERT INTO client_keys (id, name, prefix, key_hash, enabled, created_at, last_used_at, "
                 "expires_at, limits) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (key.id, key.name, key.prefix, key.key_hash, int(key.enabled), key.created_at, key.last_used_at,
                  key.expires_at, key.limits.model_dump_json()))


def save_key(conn: Connection, key: ClientKey) -> bool:
    return conn.execute("UPDATE client_keys SET name = ?, enabled = ?, expires_at = ?, limits = ? WHERE id = ?",
                        (key.name, int(key.enabled), key.expires_at, key.limits.model_dump_json(), key.id)
                        ).rowcount == 1


def delete_key(conn: Connection, key_id: str) -> bool:
    return conn.execute("DELETE FROM client_keys WHERE id = ?", (key_id,)).rowcount == 1


def save_last_used(conn: Connection, stamps: dict[str, float]) -> None:
    conn.executemany("UPDATE client_keys SET last_used_at = ? WHERE id = ?", [(t, i) for i, t in stamps.items()])


def make_key(name: str, limits: KeyLimits, *, expires_at: float | None, enabled: bool, now: float
             ) -> tuple[ClientKey, str]:
    """A new key record and the full key (shown once; only its hash and prefix are kept)."""
    secret = new_key()
    key = ClientKey(id="key_" + secrets.token_hex(5), name=name, prefix=secret[:SHOWN_PREFIX_LENGTH],
                    key_hash=hash_key(secret), enabled=enabled, created_at=now, expires_at=expires_at, limits=limits)
    return key, secret


def apply_update(key: ClientKey, changes: dict[str, Any]) -> ClientKey:
    """A changed copy of `key` (validated; raises GatewayError 400 on unknown fields or bad values)."""
    from pydantic import ValidationError

    known = {"name", "enabled", "expires_at", *LIMIT_FIELDS}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise GatewayError(400, f"Unknown client-key field(s): {', '.join(unknown)}. Known: {', '.join(sorted(known))}.",
                           ErrorKind.INVALID_REQUEST)
    try:
        limits = KeyLimits.model_validate({**key.limits.model_dump(),
                                           **{k: v for k, v in changes.items() if k in LIMIT_FIELDS}})
    except ValidationError as exc:  # `param` names the field, so the dashboard shows the message next to it
        raise GatewayError(400, f"Invalid client-key limits: {_first_error(exc)}", ErrorKind.INVALID_REQUEST,
                           param=str(exc.errors()[0].get("loc", ("",))[0]) or None) from None
    name = changes.get("name", key.name)
    if not isinstance(name, str) or not name.strip():
        raise GatewayError(400, "name must be a non-empty string.", ErrorKind.INVALID_REQUEST, param="name")
    enabled = changes.get("enabled", key.enabled)
    if not isinstance(enabled, bool):
        raise GatewayError(400, "enabled must be true or false.", ErrorKind.INVALID_REQUEST, param="enabled")
    expires_at = changes.get("expires_at", key.expires_at)
    if expires_at is not None and (isinstance(expires_at, bool) or not isinstance(expires_at, (int, float))):
        raise GatewayError(400, "expires_at must be a unix time in seconds or null.", ErrorKind.INVALID_REQUEST,
                           param="expires_at")
    return ClientKey(id=key.id, name=name.strip(), prefix=key.prefix, key_hash=key.key_hash, enabled=enabled,
                     created_at=key.created_at, last_used_at=key.last_used_at,
                     expires_at=float(expires_at) if expires_at is not None else None, limits=limits)


def _first_error(exc: Any) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error.get("loc", ()))
    return f"{where}: {error.get('msg')}" if where else str(error.get("msg"))


# ---- windows -----------------------------------------------------------------------------------------------------

def window_starts(now: float) -> dict[str, float]:
    """Start of the current UTC day, week (Monday) and month."""
    day = now // DAY * DAY
    weekday = (int(day // DAY) + 3) % 7  # 1970-01-01 was a Thursday
    moment = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    month = calendar.timegm((moment.year, moment.month, 1, 0, 0, 0))
    return {"day": day, "week": day - weekday * DAY, "month": float(month)}


def window_end(name: str, start: float) -> float:
    if name == "day":
        return start + DAY
    if name == "week":
        return start + 7 * DAY
    moment = dt.datetime.fromtimestamp(start, dt.timezone.utc)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return float(calendar.timegm((year, month, 1, 0, 0, 0)))


# ---- the live cache and the limits --------------------------------------------------------------------------------

class KeyLease:
    """A key's admission for one request: holds a concurrency slot until released."""

    def __init__(self, keys: "ClientKeys", key_id: str) -> None:
        self._keys = keys
        self._key_id = key_id
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._keys._in_flight[self._key_id] -= 1
            if self._keys.concurrency_leases is not None:
                self._keys.concurrency_leases.released(self._key_id)


class ClientKeys:
    def __init__(self, *, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._by_hash: dict[str, ClientKey] = {}
        self._by_id: dict[str, ClientKey] = {}
        self._in_flight: dict[str, int] = {}
        self._recent: dict[str, deque[float]] = {}
        self._tokens: dict[str, dict[int, int]] = {}  # key id → UTC day start → tokens
        self._last_used: dict[str, float] = {}  # not yet written
        self._data_version: int | None = None
        self.leases: "BudgetLeases | None" = None  # several instances: budgets held by leases (store/budget_leases.py)
        # several instances: requests per minute and concurrency held by leases (store/rate_leases.py)
        self.rpm_leases: "SlotLeases | None" = None
        self.concurrency_leases: "SlotLeases | None" = None

    # ---- cache ----

    def _replace(self, keys: list[ClientKey]) -> None:
        self._by_id = {k.id: k for k in keys}
        self._by_hash = {k.key_hash: k for k in keys}

    async def load(self, store: "OperatorStore") -> None:
        from .store import key_token_totals

        self._replace(await store.read(read_keys))
        since = min(window_starts(self._clock()).values())
        totals = await store.read(lambda conn: key_token_totals(conn, since))
        for key_id, days in totals.items():
            bucket = self._tokens.setdefault(key_id, {})
            for day, tokens in days:
                bucket[day] = bucket.get(day, 0) + tokens
        self._data_version = await store.changed_elsewhere()

    async def reload_if_changed(self, store: "OperatorStore") -> None:
        """Pick up keys the CLI created, changed or revoked (within a second), and write last-used times."""
        if self._last_used:
            stamps, self._last_used = self._last_used, {}
            await store.write(lambda conn: save_last_used(conn, stamps))
        version = await store.changed_elsewhere()
        if version != self._data_version:
            self._data_version = version
            self._replace(await store.read(read_keys))

    async def share_budgets(self, store: "OperatorStore", pending: Callable[[], Iterable[Any]]) -> None:
        """Several instances on one store: the token counters become the store's totals (the usage every instance
        has written, at most a second old) plus this instance's records not written yet (`pending`). Budgets then
        hold across instances, overshooting by at most what the instances admitted within that second."""
        from .store import key_token_totals

        since = min(window_starts(self._clock()).values())
        totals = await store.read(lambda conn: key_token_totals(conn, since))
        counters: dict[str, dict[int, int]] = {}
        for key_id, days in totals.items():
            bucket = counters.setdefault(key_id, {})
            for day, tokens in days:
                bucket[day] = bucket.get(day, 0) + tokens
        for record in pending():  # read after the await: nothing finished meanwhile is missed
            if record.key_id and record.total_tokens:
                bucket = counters.setdefault(record.key_id, {})
                day = int(record.started_at // DAY * DAY)
                bucket[day] = bucket.get(day, 0) + record.total_tokens
        self._tokens = counters

    def put(self, key: ClientKey) -> None:
        old = self._by_id.get(key.id)
        if old is not None:
            self._by_hash.pop(old.key_hash, None)
        self._by_id[key.id] = key
        self._by_hash[key.key_hash] = key

    def drop(self, key_id: str) -> None:
        key = self._by_id.pop(key_id, None)
        if key is not None:
            self._by_hash.pop(key.key_hash, None)

    def get(self, key_id: str) -> ClientKey | None:
        return self._by_id.get(key_id)

    def all(self) -> list[ClientKey]:
        return sorted(self._by_id.values(), key=lambda k: (k.created_at, k.id))

    # ---- checks ----

    def lookup(self, presented: str | None) -> ClientKey | None:
        """The client key `presented` is, if any (constant-time confirmation of the hash)."""
        if not presented or not presented.startswith(KEY_PREFIX):
            return None
        digest = hash_key(presented)
        key = self._by_hash.get(digest)
        if key is None or not hmac.compare_digest(key.key_hash, digest):
            return None
        return key

    def check_usable(self, key: ClientKey) -> None:
        """401 for a disabled or expired key (checked on every request, so expiry takes effect at once)."""
        if not key.enabled:
            raise GatewayError(401, f"The API key {key.prefix}… is disabled.", ErrorKind.AUTHENTICATION,
                               code="key_disabled")
        if key.expires_at is not None and self._clock() >= key.expires_at:
            raise GatewayError(401, f"The API key {key.prefix}… expired.", ErrorKind.AUTHENTICATION,
                               code="key_expired")

    def admit(self, key: ClientKey, model: str) -> KeyLease:
        """Enforce the key's limits for one request on `model` (the resolved model id)."""
        key = self._by_id.get(key.id, key)  # the live version (an update may have changed the limits)
        self.check_usable(key)
        limits = key.limits
        now = self._clock()
        if limits.allowed_models and not any(fnmatchcase(model, p) for p in limits.allowed_models):
            raise GatewayError(403, f"The API key {key.name!r} may not use the model {model!r} (allowed: "
                               f"{', '.join(limits.allowed_models)}).", ErrorKind.PERMISSION,
                               code="model_not_allowed", param="model")
        in_flight = self._in_flight.get(key.id, 0)
        if limits.max_concurrency is not None and in_flight >= limits.max_concurrency:
            raise GatewayError(429, f"The API key {key.name!r} already has {in_flight} requests running (its limit "
                               f"is {limits.max_concurrency}).", ErrorKind.RATE_LIMIT,
                               code="key_concurrency_limit", retry_after=1)
        recent = self._recent.setdefault(key.id, deque())
        while recent and recent[0] <= now - 60:
            recent.popleft()
        if limits.requests_per_minute is not None and len(recent) >= limits.requests_per_minute:
            raise GatewayError(429, f"The API key {key.name!r} reached its limit of {limits.requests_per_minute} "
                               "requests per minute.", ErrorKind.RATE_LIMIT, code="key_rate_limit",
                               retry_after=max(1.0, recent[0] + 60 - now))
        if self.leases is not None and (limits.tokens_per_day or limits.tokens_per_week or limits.tokens_per_month) \
                and self.leases.allows(key) is False:
            raise GatewayError(429, f"The API key {key.name!r} used its token budget (counted across every instance); "
                               "it resets at the start of the next UTC day, week or month as set.",
                               ErrorKind.RATE_LIMIT, code="key_budget_exhausted", retry_after=60)
        for window, start in window_starts(now).items():
            budget = getattr(limits, f"tokens_per_{window}")
            if budget is None:
                continue
            used = self.tokens_used(key.id, start)
            if used >= budget:
                raise GatewayError(429, f"The API key {key.name!r} used its token budget for this {window} "
                                   f"({used} of {budget} tokens); it resets at the start of the next UTC {window}.",
                                   ErrorKind.RATE_LIMIT, code="key_budget_exhausted",
                                   retry_after=max(1.0, window_end(window, start) - now))
        if self.rpm_leases is not None and limits.requests_per_minute is not None \
                and not self.rpm_leases.admits(key, limits.requests_per_minute):
            raise GatewayError(429, f"The API key {key.name!r} reached its limit of {limits.requests_per_minute} "
                               "requests per minute (counted across every instance).", ErrorKind.RATE_LIMIT,
                               code="key_rate_limit", retry_after=1)
        if self.concurrency_leases is not None and limits.max_concurrency is not None \
                and not self.concurrency_leases.admits(key, limits.max_concurrency):
            if self.rpm_leases is not None and limits.requests_per_minute is not None:
                self.rpm_leases.released(key.id)  # not started: its minute slot is not spent
            raise GatewayError(429, f"The API key {key.name!r} has {limits.max_concurrency} requests running across "
                               "every instance (its limit).", ErrorKind.RATE_LIMIT, code="key_concurrency_limit",
                               retry_after=1)
        recent.append(now)
        self._in_flight[key.id] = in_flight + 1
        key.last_used_at = now
        self._last_used[key.id] = now
        return KeyLease(self, key.id)

    def running(self, key_id: str) -> int:
        return self._in_flight.get(key_id, 0)

    def requests_in_last_minute(self, key_id: str) -> int:
        since = self._clock() - 60
        return sum(1 for started in self._recent.get(key_id, ()) if started > since)

    def tokens_used(self, key_id: str, since: float) -> int:
        return sum(tokens for day, tokens in self._tokens.get(key_id, {}).items() if day >= since)

    def usage(self, key_id: str) -> dict[str, int]:
        starts = window_starts(self._clock())
        return {f"tokens_this_{w}": self.tokens_used(key_id, s) for w, s in starts.items()}

    def account_tokens(self, key_id: str, ts: float, tokens: int) -> None:
        if not tokens:
            return
        if self.leases is not None:
            self.leases.consumed(key_id, tokens)
        days = self._tokens.setdefault(key_id, {})
        day = int(ts // DAY * DAY)
        days[day] = days.get(day, 0) + tokens
        if len(days) > 40:  # a month and a bit is all a budget looks at
            for old in sorted(days)[:-40]:
                del days[old]


def key_token_window_totals(conn: Connection, now: float) -> dict[str, dict[str, int]]:
    """Per key: tokens this UTC day / week / month, from the daily rollups (for `keys list`)."""
    from .store import key_token_totals

    starts = window_starts(now)
    out: dict[str, dict[str, int]] = {}
    for key_id, days in key_token_totals(conn, min(starts.values())).items():
        out[key_id] = {f"tokens_this_{w}": sum(t for d, t in days if d >= s) for w, s in starts.items()}
    return out
