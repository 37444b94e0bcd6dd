"""`codex-trio keys create|list|update|revoke`: client keys, on the data dir's operator store directly (the gateway
need not run; a running gateway picks up key changes within a second)."""

from __future__ import annotations

import argparse
import time
from typing import Any

import orjson

from ..errors import GatewayError
from ..telemetry.client_keys import (KeyLimits, apply_update, delete_key, insert_key, key_token_window_totals,
                                     make_key, read_keys, save_key)
from ..telemetry.store import OperatorStore
from ..telemetry.timeparse import parse_span, parse_time
from .common import guarded, open_operator_store, say, table

NO_LIMIT = 0  # on the command line, 0 clears a limit


def _limit_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if args.models is not None:
        changes["allowed_models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    for option, name in (("max_concurrency", "max_concurrency"), ("rpm", "requests_per_minute"),
                         ("tokens_per_day", "tokens_per_day"), ("tokens_per_week", "tokens_per_week"),
                         ("tokens_per_month", "tokens_per_month")):
        value = getattr(args, option)
        if value is not None:
            changes[name] = None if value == NO_LIMIT else value
    if args.expires is not None:
        changes["expires_at"] = _expiry(args.expires)
    return changes


def _expiry(text: str) -> float | None:
    if text.lower() in ("never", "none", ""):
        return None
    span = parse_span(text)
    if span is not None:
        return time.time() + span  # "30d": thirty days from now
    return parse_time(text, time.time())


def cmd_keys_create(args: argparse.Namespace) -> int:
    store = open_operator_store(args)
    try:
        changes = _limit_changes(args)
        if args.disabled:
            changes["enabled"] = False
        key, secret = make_key(args.name, KeyLimits(), expires_at=None, enabled=True, now=time.time())
        key = apply_update(key, changes)
        store.sync.transaction(lambda conn: insert_key(conn, key))
    finally:
        store.sync.close()
    say(f"Created client key {key.id} ({key.name}). This is the only time it is shown:\n\n    {secret}\n")
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    store = open_operator_store(args)
    try:
        keys = store.sync.read(read_keys)
        used = store.sync.read(lambda conn: key_token_window_totals(conn, time.time()))
    finally:
        store.sync.close()
    if args.json:
        say(orjson.dumps([{**k.public(), **used.get(k.id, {})} for k in keys], option=orjson.OPT_INDENT_2).decode())
        return 0
    if not keys:
        say("no client keys (create one with `codex-trio keys create NAME`)")
        return 0
    rows = []
    for k in keys:
        limits = k.limits
        usage = used.get(k.id, {})
        rows.append([k.id, k.name, k.prefix + "…", "yes" if k.enabled else "no", _when(k.expires_at),
                     ",".join(limits.allowed_models) or "*", limits.max_concurrency, limits.requests_per_minute,
                     _budget(usage.get("tokens_this_day", 0), limits.tokens_per_day),
                     _budget(usage.get("tokens_this_week", 0), limits.tokens_per_week),
                     _budget(usage.get("tokens_this_month", 0), limits.tokens_per_month), _when(k.last_used_at)])
    say(table(["ID", "NAME", "PREFIX", "ENABLED", "EXPIRES", "MODELS", "CONCURRENCY", "RPM", "TOKENS TODAY",
                "THIS WEEK", "THIS MONTH", "LAST USED"], rows, numeric_from=99))
    return 0


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def _budget(used: int, limit: int | None) -> str:
    return f"{used:,}" + (f"/{limit:,}" if limit else "")


def _find(store: OperatorStore, key_id: str):
    key = next((k for k in store.sync.read(read_keys) if k.id == key_id or k.prefix == key_id), None)
    if key is None:
        raise GatewayError(404, f"no client key {key_id!r} (see `codex-trio keys list`)")
    return key


def cmd_keys_update(args: argparse.Namespace) -> int:
    store = open_operator_store(args)
    try:
        key = _find(store, args.id)
        changes = _limit_changes(args)
        if args.name is not None:
            changes["name"] = args.name
        if args.enable or args.disable:
            changes["enabled"] = bool(args.enable)
        if not changes:
            say("codex-trio: nothing to change (see `codex-trio keys update --help`)", err=True)
            return 2
        key = apply_update(key, changes)
        store.sync.transaction(lambda conn: save_key(conn, key))
    finally:
        store.sync.close()
    say(f"Updated client key {key.id} ({key.name}).")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    store = open_operator_store(args)
    try:
        key = _find(store, args.id)
        store.sync.transaction(lambda conn: delete_key(conn, key.id))
    finally:
        store.sync.close()
    say(f"Revoked client key {key.id} ({key.name}); it stops working within a second on a running gateway.")
    return 0


def _limit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", help="allowed models: comma-separated ids or glob patterns, matched after alias "
                                         "resolution (empty: all)")
    parser.add_argument("--max-concurrency", type=int, help="requests running at once (0: no limit)")
    parser.add_argument("--rpm", type=int, help="requests per minute (0: no limit)")
    parser.add_argument("--tokens-per-day", type=int, help="input + output tokens per UTC day (0: no limit)")
    parser.add_argument("--tokens-per-week", type=int, help="per UTC week from Monday (0: no limit)")
    parser.add_argument("--tokens-per-month", type=int, help="per UTC calendar month (0: no limit)")
    parser.add_argument("--expires", help="when the key stops working: a span from now (30d), ISO 8601, unix "
                                          "seconds, or never")


def register(commands: "argparse._SubParsersAction", common: argparse.ArgumentParser) -> None:
    keys = commands.add_parser("keys", help="client keys: API keys for the model APIs only, with limits")
    sub = keys.add_subparsers(dest="keys_command", metavar="SUBCOMMAND", required=True)
    create = sub.add_parser("create", parents=[common], help="create a key (printed once)")
    create.add_argument("name")
    _limit_options(create)
    create.add_argument("--disabled", action="store_true", help="create it disabled")
    create.set_defaults(handler=guarded(cmd_keys_create))
    listing = sub.add_parser("list", parents=[common], help="the keys, their limits and this day/week/month's tokens")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=guarded(cmd_keys_list))
    update = sub.add_parser("update", parents=[common], help="change a key's name, state or limits")
    update.add_argument("id", help="the key's id (or its prefix)")
    update.add_argument("--name")
    state = update.add_mutually_exclusive_group()
    state.add_argument("--enable", action="store_true")
    state.add_argument("--disable", action="store_true")
    _limit_options(update)
    update.set_defaults(handler=guarded(cmd_keys_update))
    revoke = sub.add_parser("revoke", parents=[common], help="delete a key (its usage rows stay)")
    revoke.add_argument("id", help="the key's id (or its prefix)")
    revoke.set_defaults(handler=guarded(cmd_keys_revoke))
