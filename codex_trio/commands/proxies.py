"""`codex-trio proxies add|list|remove|check|assign|export|import`: the egress proxy pool, on the data dir directly (the
gateway need not run; a running gateway reads the pool when it starts — use the admin API to change it live)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

import orjson

from .common import run_with_accounts, say

if TYPE_CHECKING:
    from ..accounts.service import AccountService
    from ..services import Services


def _line(proxy: dict[str, Any]) -> str:
    line = (f"{proxy['id']}  {proxy['url']}  group={proxy['group']}  {proxy['health']}"
            f"{'' if proxy['enabled'] else ' (disabled)'}  accounts={proxy['accounts']}")
    if proxy.get("label"):
        line += f"  label={proxy['label']}"
    if proxy.get("latency_ms") is not None:
        line += f"  latency={proxy['latency_ms']:.0f}ms"
    if proxy.get("exit_ip"):
        line += f"  exit_ip={proxy['exit_ip']}"
    if proxy.get("last_error") and proxy["failures"]:
        line += f"  failed checks in a row={proxy['failures']}\n    last error: {proxy['last_error']}"
    return line


def _print(result: Any, as_json: bool) -> None:
    if as_json:
        say(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        return
    proxies = result["proxies"] if "proxies" in result else [result]
    if not proxies:
        say("No proxies yet: add one with `codex-trio proxies add socks5://user:pass@host:1080`.")
    for proxy in proxies:
        say(_line(proxy))


def cmd_proxies_add(args: argparse.Namespace) -> int:
    async def work(services: "Services", _accounts: "AccountService") -> int:
        body: dict[str, Any] = {"url": args.url, "enabled": not args.disabled}
        if args.label:
            body["label"] = args.label
        if args.group:
            body["group"] = args.group
        _print(await services.proxy_admin.add(body), args.json)
        return 0

    return run_with_accounts(args, work, upstream=False)


def cmd_proxies_list(args: argparse.Namespace) -> int:
    async def work(services: "Services", _accounts: "AccountService") -> int:
        _print(await services.proxy_admin.list(), args.json)
        return 0

    return run_with_accounts(args, work, upstream=False)


def cmd_proxies_remove(args: argparse.Namespace) -> int:
    async def work(services: "Services", _accounts: "AccountService") -> int:
        for proxy_id in args.ids:
            result = await services.proxy_admin.remove(proxy_id)
            say(f"removed {proxy_id} ({result['removed']['url']})")
            if result["paused_accounts"]:
                say(f"  accounts assigned to it are paused until reassigned: {', '.join(result['paused_accounts'])}")
        return 0

    return run_with_accounts(args, work, upstream=False)


def cmd_proxies_check(args: argparse.Namespace) -> int:
    async def work(services: "Services", _accounts: "AccountService") -> int:
        admin = services.proxy_admin
        if args.ids:
            results = {"proxies": [await admin.check(proxy_id) for proxy_id in args.ids]}
        else:
            results = await admin.check_all()
        _print(results, args.json)
        return 0 if all(p["failures"] == 0 for p in results["proxies"]) else 1  # 1: a check failed now

    return run_with_accounts(args, work)


def cmd_proxies_assign(args: argparse.Namespace) -> int:
    async def work(services: "Services", _accounts: "AccountService") -> int:
        rule = {name: value for name, value in (("label", args.label), ("email", args.email), ("plan", args.plan))
                if value}
        if bool(rule) == bool(args.accounts):
            say("codex-trio: name the accounts, or pick them with --label / --email / --plan (not both)", err=True)
            return 2
        ids = args.accounts or await services.proxy_admin.matching(rule)
        result = await services.proxy_admin.assign(ids, args.route)
        if args.json:
            say(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
            return 0
        for route in result["assignments"]:
            where = route["proxy_id"] or route["proxy_url"] or "direct"
            say(f"{route['account_id']}  {route['mode']}  → {where}"
                 + (f"  PAUSED: {route['reason']}" if route["paused"] else ""))
        return 0

    return run_with_accounts(args, work, upstream=False)


def cmd_proxies_export(args: argparse.Namespace) -> int:
    async def work(services: "Services", _accounts: "AccountService") -> int:
        text = services.proxy_admin.export_yaml()
        if not args.output:
            sys.stdout.write(text)
            return 0
        try:  # the URLs carry credentials: the file is private from its creation
            fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:
            say(f"codex-trio: cannot write {args.output}: {exc.strerror}; choose another file with -o", err=True)
            return 1
        say(f"wrote {len(services.proxy_admin.proxies.proxies)} proxies to {args.output}", err=True)
        return 0

    return run_with_accounts(args, work, upstream=False)


def cmd_proxies_import(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError) as exc:
        say(f"codex-trio: cannot read {args.file}: {exc}", err=True)
        return 1

    async def work(services: "Services", _accounts: "AccountService") -> int:
        result = await services.proxy_admin.import_yaml(text)
        say(f"{result['added']} added, {result['updated']} updated")
        return 0

    return run_with_accounts(args, work, upstream=False)


def register(commands: "argparse._SubParsersAction", common: argparse.ArgumentParser) -> None:
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print the JSON the admin API returns")

    proxies = commands.add_parser("proxies", help="the egress proxy pool: add, list, remove, check, assign")
    sub = proxies.add_subparsers(dest="proxies_command", metavar="SUBCOMMAND", required=True)

    adding = sub.add_parser("add", parents=[common, output], help="add a proxy (credentials are stored encrypted)")
    adding.add_argument("url", metavar="URL", help="http://, https://, socks5:// or socks5h://[user:pass@]host:port")
    adding.add_argument("--label", help="a name for the proxy")
    adding.add_argument("--group", help="its group (auto assignment can be limited to one group); default: default")
    adding.add_argument("--disabled", action="store_true", help="add it switched off")
    adding.set_defaults(handler=cmd_proxies_add)

    listing = sub.add_parser("list", parents=[common, output], help="list the proxies (credentials masked)")
    listing.set_defaults(handler=cmd_proxies_list)

    removing = sub.add_parser("remove", parents=[common], help="remove proxies (auto accounts move to another)")
    removing.add_argument("ids", nargs="+", metavar="ID")
    removing.set_defaults(handler=cmd_proxies_remove)

    checking = sub.add_parser("check", parents=[common, output],
                              help="check proxies now (all by default): connect + TLS, latency, exit IP")
    checking.add_argument("ids", nargs="*", metavar="ID")
    checking.set_defaults(handler=cmd_proxies_check)

    exporting = sub.add_parser("export", parents=[common], help="write the pool as YAML (contains credentials)")
    exporting.add_argument("-o", "--output", help="write to this file (mode 0600) instead of stdout")
    exporting.set_defaults(handler=cmd_proxies_export)

    importing = sub.add_parser("import", parents=[common], help="add the proxies of a YAML list or an export")
    importing.add_argument("file", metavar="FILE", help="the file to import (- for stdin)")
    importing.set_defaults(handler=cmd_proxies_import)

    assigning = sub.add_parser("assign", parents=[common, output], help="route accounts: default, direct, auto, "
                                                                        "auto:GROUP, a proxy id or a proxy URL")
    assigning.add_argument("route", metavar="ROUTE")
    assigning.add_argument("accounts", nargs="*", metavar="ACCOUNT_ID")
    assigning.add_argument("--label", help="instead of ids: every account whose label matches this glob")
    assigning.add_argument("--email", help="instead of ids: every account whose email matches this glob")
    assigning.add_argument("--plan", help="instead of ids: every account on this plan (plus, pro, team, …)")
    assigning.set_defaults(handler=cmd_proxies_assign)
