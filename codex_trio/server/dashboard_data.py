"""The admin calls only the dashboard makes, each answered from memory where it can be so a pool of thousands of
accounts stays fast: the overview, a page of the accounts list, and the live event stream.

    GET /admin/overview                 the pool by state and plan, quota headroom per window, the last hour
    GET /admin/accounts-page            ?offset&limit&q&state[&ids=1]: one page of accounts (the pool's live copy)
    GET /admin/events                   text/event-stream: `counters` every COUNTER_SECONDS, `request` per request
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterable

import orjson
import trio
from quart import Response, request

from ..errors import ErrorKind, GatewayError, invalid_request
from .api import json_response

if TYPE_CHECKING:
    from ..accounts.model import Account
    from .admin_deps import AdminDeps

COUNTER_SECONDS = 2.0  # how often the live stream sends counters
MAX_PAGE = 500
WINDOWS = ("primary", "secondary")


def state_of(account: "Account", now: float) -> str:
    """What the dashboard calls an account's state: disabled and cooling down are states of their own."""
    if not account.enabled:
        return "disabled"
    if account.cooldown_until and account.cooldown_until > now:
        return "cooldown"
    return str(account.status)


def _pool(deps: "AdminDeps"):
    pool = deps.current_pool()
    if pool is None:
        raise GatewayError(503, "The account pool is not loaded yet; try again in a moment.", ErrorKind.OVERLOADED)
    return pool


def pool_summary(accounts: Iterable["Account"], runtime, now: float) -> dict[str, Any]:
    """Totals by state and plan, requests in flight, and per quota window the mean headroom over the accounts that
    report it, the soonest reset and how stale the oldest reading is. `runtime(id)` is the pool's runtime info."""
    by_state: dict[str, int] = {}
    by_plan: dict[str, int] = {}
    windows: dict[str, dict[str, Any]] = {}
    total = in_flight = 0
    for account in accounts:
        total += 1
        state = state_of(account, now)
        by_state[state] = by_state.get(state, 0) + 1
        plan = account.plan or "unknown"
        by_plan[plan] = by_plan.get(plan, 0) + 1
        info = runtime(account.id)
        in_flight += info.get("in_flight", 0)
        quota = info.get("quota") or account.quota or {}
        for name in WINDOWS:
            window = quota.get(name)
            if not window:
                continue
            entry = windows.setdefault(name, {"window_minutes": window.get("window_minutes"), "accounts": 0,
                                              "headroom_percent": 0.0, "exhausted": 0, "next_reset": None,
                                              "oldest_check": None})
            used = float(window.get("used_percent") or 0)
            entry["accounts"] += 1
            entry["headroom_percent"] += max(0.0, 100.0 - used)
            entry["exhausted"] += used >= 100
            reset = window.get("resets_at")
            if reset and reset > now and (entry["next_reset"] is None or reset < entry["next_reset"]):
                entry["next_reset"] = reset
            checked = account.quota_updated_at
            if checked and (entry["oldest_check"] is None or checked < entry["oldest_check"]):
                entry["oldest_check"] = checked
    for entry in windows.values():
        entry["headroom_percent"] = round(entry["headroom_percent"] / entry["accounts"], 1)
    return {"total": total, "by_state": by_state, "by_plan": by_plan, "in_flight": in_flight, "windows": windows}


async def overview_of(deps: "AdminDeps") -> dict[str, Any]:
    from ..telemetry.store import read_summary

    pool = _pool(deps)
    now = time.time()
    summary = pool_summary(pool.accounts(), pool.runtime_info, now)
    telemetry = deps.telemetry
    last_hour = None
    if telemetry is not None and telemetry.store is not None:
        await telemetry.writer.flush(telemetry.store)
        last_hour = (await telemetry.store.read(lambda conn: read_summary(conn, now - 3600, now)))["totals"]
    identity = deps.connector.identity
    windows = summary.pop("windows")
    return {"accounts": summary, "quota_windows": windows, "last_hour": last_hour,
            "ollama": deps.ollama.status(), "store": deps.store_report() or None,
            "client": {"version": getattr(identity, "version", None),
                       "profile": deps.config.settings.client.identity,
                       "configured_version": deps.config.settings.client.version},
            "now": now}


def _matches(account: "Account", text: str, state: str, now: float) -> bool:
    if state and state_of(account, now) != state:
        return False
    if not text:
        return True
    return any(text in (value or "").lower() for value in (account.label, account.email, account.id, account.plan,
                                                           account.account_id))


def accounts_page(deps: "AdminDeps", *, offset: int, limit: int, text: str, state: str,
                  with_ids: bool) -> dict[str, Any]:
    service = deps.current_accounts()
    if service is None:
        raise GatewayError(503, "The account store is not open yet; try again in a moment.", ErrorKind.OVERLOADED)
    now = time.time()
    matched = [a for a in _pool(deps).accounts() if _matches(a, text.lower(), state, now)]
    matched.sort(key=lambda a: (a.created_at, a.id))
    page = {"total": len(matched), "offset": offset, "limit": limit,
            "accounts": [{**service.describe(a), "state": state_of(a, now)} for a in matched[offset:offset + limit]]}
    if with_ids:
        page["ids"] = [a.id for a in matched]
    return page


def _int_arg(name: str, default: int, high: int) -> int:
    value = request.args.get(name, "")
    if not value:
        return default
    if not value.isdigit() or int(value) > high:
        raise invalid_request(f"{name} must be a whole number from 0 to {high}.", param=name)
    return int(value)


async def live_counters(deps: "AdminDeps") -> dict[str, Any]:
    """The live numbers, from memory only (no store read): streams under way and the pool by state."""
    pool = deps.current_pool()
    now = time.time()
    by_state: dict[str, int] = {}
    for account in (pool.accounts() if pool is not None else ()):
        state = state_of(account, now)
        by_state[state] = by_state.get(state, 0) + 1
    return {"open_streams": deps.shutdown.open_streams, "accounts_by_state": by_state, "time": now}


async def live_events(deps: "AdminDeps"):
    """One stream per open dashboard: `counters` every COUNTER_SECONDS, `request` for each finished request."""
    telemetry = deps.telemetry
    yield b": codex-trio dashboard events\nretry: 3000\n\n"
    yield b"event: counters\ndata: " + orjson.dumps(await live_counters(deps)) + b"\n\n"
    if telemetry is None:
        return
    with telemetry.request_log.subscribe() as records:
        next_counters = trio.current_time() + COUNTER_SECONDS
        while True:
            with trio.move_on_at(next_counters):
                record = await records.receive()
                yield b"event: request\ndata: " + orjson.dumps(record.to_json()) + b"\n\n"
                continue
            next_counters = trio.current_time() + COUNTER_SECONDS
            yield b"event: counters\ndata: " + orjson.dumps(await live_counters(deps)) + b"\n\n"


def register_dashboard_data(app: Any, deps: "AdminDeps") -> None:
    @app.get("/admin/overview")
    async def overview() -> Response:
        return json_response(await overview_of(deps))

    @app.get("/admin/accounts-page")
    async def accounts_listing() -> Response:
        return json_response(accounts_page(deps, offset=_int_arg("offset", 0, 10_000_000),
                                           limit=max(1, _int_arg("limit", 100, MAX_PAGE)),
                                           text=request.args.get("q", "").strip(),
                                           state=request.args.get("state", "").strip(),
                                           with_ids=request.args.get("ids") in ("1", "true")))

    @app.get("/admin/events")
    async def events() -> Response:
        return Response(live_events(deps), content_type="text/event-stream",
                        headers={"cache-control": "no-cache", "x-accel-buffering": "no"})
