"""`codex-trio usage`: token usage and cost estimate per model, account or client key, from the data dir's operator
store (the gateway need not run)."""

from __future__ import annotations

import argparse
import time
from typing import Any

import orjson

from ..telemetry.client_keys import read_keys
from ..telemetry.store import GROUP_COLUMNS, read_summary
from ..telemetry.timeparse import parse_time
from .common import guarded, open_operator_store, say, table


def cmd_usage(args: argparse.Namespace) -> int:
    now = time.time()
    try:
        since = parse_time(args.since, now)
    except ValueError as exc:
        say(f"codex-trio: --since: {exc}", err=True)
        return 2
    store = open_operator_store(args)
    try:
        summary = store.sync.read(lambda conn: read_summary(conn, since, now))
        names = {k.id: k.name for k in store.sync.read(read_keys)}
    finally:
        store.sync.close()
    if args.json:
        say(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
        return 0
    column = {"model": "model", "account": "account", "key": "key_id"}[args.by]
    rows = []
    for row in summary[f"by_{args.by}"]:
        name = row[column] or ("(admin key)" if args.by == "key" else "(none)")
        if args.by == "key" and row[column]:
            name = f"{names.get(row[column], '(revoked)')} ({row[column]})"
        rows.append(_usage_row(name, row))
    totals = summary["totals"]
    rows.append(_usage_row("TOTAL", totals))
    say(f"usage since {time.strftime('%Y-%m-%d %H:%M', time.localtime(since))} (by {args.by})")
    say(table([args.by.upper(), "REQUESTS", "ERRORS", "INPUT", "CACHED", "OUTPUT", "REASONING", "COST USD"], rows))
    return 0


def _usage_row(name: str, sums: dict[str, Any]) -> list[Any]:
    return [name, sums["requests"], sums["errors"], sums["input_tokens"], sums["cached_tokens"],
            sums["output_tokens"], sums["reasoning_tokens"], float(sums["cost_usd"])]


def register(commands: "argparse._SubParsersAction", common: argparse.ArgumentParser) -> None:
    usage = commands.add_parser("usage", parents=[common], help="token usage and cost estimate per model, account "
                                                                 "or client key")
    usage.add_argument("--since", default="7d", help="a span back from now (24h, 7d), ISO 8601 or unix seconds "
                                                     "(default 7d)")
    usage.add_argument("--by", choices=sorted(GROUP_COLUMNS), default="model", help="one row per (default model)")
    usage.add_argument("--json", action="store_true", help="the full summary as JSON")
    usage.set_defaults(handler=guarded(cmd_usage))
