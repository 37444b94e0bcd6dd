"""`codex-trio accounts list|import|export|remove|refresh`: work on the data dir directly (the gateway need not
run; see `common.run_with_accounts`)."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import orjson

from ..errors import GatewayError
from .common import issuer_option, run_with_accounts, say

if TYPE_CHECKING:
    from ..accounts.service import AccountService
    from ..config.store import ConfigStore
    from ..services import Services


def _quota_text(quota: dict[str, Any] | None) -> str:
    if not quota:
        return "-"
    parts = [f"{name[0]} {window['used_percent']:.0f}%" for name in ("primary", "secondary")
             if (window := quota.get(name))]
    return ", ".join(parts) + (" LIMIT" if quota.get("limit_reached") else "") if parts else "-"


def cmd_accounts_list(args: argparse.Namespace) -> int:
    async def work(_services: "Services", accounts: "AccountService") -> int:
        listing = await accounts.list(quota="fresh" if args.fresh else bool(args.quota))
        if args.json:
            say(orjson.dumps(listing, option=orjson.OPT_INDENT_2).decode())
            return 0
        rows = listing["accounts"]
        if not rows:
            say("No accounts yet: add one with `codex-trio login` (or --device / --paste).")
        for a in rows:
            line = (f"{a['id']}  {a.get('label') or a.get('email') or a.get('account_id')}  "
                    f"{a.get('plan_type') or '?'}  {a['status']}{'' if a['enabled'] else ' (disabled)'}")
            if a.get("quota_error"):
                line += f"  quota: CHECK FAILED ({a['quota_error']})"
            elif args.quota or args.fresh:
                line += f"  quota: {_quota_text(a.get('quota'))}"
            if a.get("auth_json_path"):
                line += f"  linked: {a['auth_json_path']}"
            if a["status"] in ("expired", "banned") and a.get("status_reason"):
                line += f"\n    {a['status_reason']}"  # why, and how to log in again
            say(line)
        for skipped in listing.get("skipped") or []:
            say(f"warning: a stored account could not be read and was skipped: {skipped}", err=True)
        failed = [a["id"] for a in rows if a.get("quota_error")]
        if failed:
            say(f"warning: the usage check failed for {', '.join(failed)}; the others are shown", err=True)
        return 0

    return run_with_accounts(args, work, upstream=args.fresh)


def _progress(verb: str) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        say(f"{verb} {done + 1}/{total} …", err=True)

    return report


def cmd_accounts_import(args: argparse.Namespace) -> int:
    payload = None
    if args.file == "-":
        payload = sys.stdin.buffer.read()

    async def work(_services: "Services", accounts: "AccountService") -> int:
        progress = _progress("importing")
        if payload is None:
            result = await accounts.import_file(args.file, link=not args.no_link, on_progress=progress)
        else:
            result = await accounts.import_accounts(payload, link=not args.no_link, on_progress=progress)
        say(f"added {result['added']}, updated {result['updated']}, failed {result['failed']}")
        for linked in result["linked"]:
            say(f"account {linked['id']} is linked to {linked['auth_json_path']}: refreshed tokens are written "
                 "back there, so the Codex CLI stays logged in (--no-link to opt out)")
        for error in result["errors"]:
            say(f"  {error}", err=True)
        return 0 if not result["failed"] else 1

    return run_with_accounts(args, work)


def cmd_accounts_export(args: argparse.Namespace) -> int:
    async def work(_services: "Services", accounts: "AccountService") -> int:
        exported = await accounts.export(format=args.format)
        text = exported if isinstance(exported, str) else orjson.dumps(exported, option=orjson.OPT_INDENT_2
                                                                       ).decode() + "\n"
        if args.output in (None, "-"):
            sys.stdout.write(text)
            sys.stdout.flush()
            return 0
        path = Path(args.output).expanduser()
        # the export holds live tokens: create it private, never readable by others even for a moment
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:
            say(f"codex-trio: cannot write {path}: {exc.strerror}; choose another file with -o", err=True)
            return 1
        count = text.count("\n") if isinstance(exported, str) else len(exported["accounts"])
        say(f"exported {count} account(s) to {path} (it contains tokens: keep it private)", err=True)
        return 0

    return run_with_accounts(args, work, upstream=False)


def cmd_accounts_remove(args: argparse.Namespace) -> int:
    async def work(_services: "Services", accounts: "AccountService") -> int:
        missing = 0
        for account_id in args.ids:
            try:
                await accounts.remove(account_id)
                say(f"removed {account_id}")
            except GatewayError as exc:
                missing += 1
                say(f"codex-trio: {exc}", err=True)
        return 1 if missing else 0

    return run_with_accounts(args, work, upstream=False)


def cmd_accounts_refresh(args: argparse.Namespace) -> int:
    async def work(_services: "Services", accounts: "AccountService") -> int:
        ids = args.ids or [a["id"] for a in (await accounts.list())["accounts"] if a["enabled"]]
        failures = 0
        for index, account_id in enumerate(ids):
            say(f"refreshing {index + 1}/{len(ids)} {account_id} …", err=True)
            try:
                result = await accounts.refresh(account_id)
            except GatewayError as exc:
                result = {"success": False, "error": exc.message}
            if result["success"]:
                say(f"{account_id}: ok (quota: {_quota_text(result.get('quota'))})")
            else:
                failures += 1
                say(f"{account_id}: FAILED: {result['error']}")
        return 1 if failures else 0

    return run_with_accounts(args, work)


def register(commands: "argparse._SubParsersAction", common: argparse.ArgumentParser) -> None:
    issuer = issuer_option()
    accounts = commands.add_parser("accounts", help="list, import, export, remove and refresh accounts")
    sub = accounts.add_subparsers(dest="accounts_command", metavar="SUBCOMMAND", required=True)

    listing = sub.add_parser("list", parents=[common], help="list the accounts (never shows tokens)")
    listing.add_argument("--quota", action="store_true", help="show the last known quota")
    listing.add_argument("--fresh", action="store_true", help="ask the backend for each account's quota first")
    listing.add_argument("--json", action="store_true", help="print the JSON the admin API returns")
    listing.set_defaults(handler=cmd_accounts_list)

    importing = sub.add_parser("import", parents=[common, issuer],
                               help="import accounts: an export, the reference gateway's format, an auth.json, "
                                    "or refresh tokens one per line")
    importing.add_argument("file", metavar="FILE", help="the file to import (- for stdin)")
    importing.add_argument("--no-link", action="store_true",
                           help="for a Codex CLI auth.json: do not write refreshed tokens back to it (by default "
                                "the file is linked, so the Codex CLI on this machine stays logged in)")
    importing.set_defaults(handler=cmd_accounts_import)

    exporting = sub.add_parser("export", parents=[common], help="export the accounts (contains tokens)")
    exporting.add_argument("--format", choices=("full", "minimal", "tokens"), default="full",
                           help="full (restorable), minimal (refreshToken + label), tokens (one per line)")
    exporting.add_argument("-o", "--output", help="write to this file (mode 0600) instead of stdout")
    exporting.set_defaults(handler=cmd_accounts_export)

    removing = sub.add_parser("remove", parents=[common], help="remove accounts")
    removing.add_argument("ids", nargs="+", metavar="ID")
    removing.set_defaults(handler=cmd_accounts_remove)

    refreshing = sub.add_parser("refresh", parents=[common, issuer],
                                help="refresh tokens now and probe the quota (all enabled accounts by default)")
    refreshing.add_argument("ids", nargs="*", metavar="ID")
    refreshing.set_defaults(handler=cmd_accounts_refresh)


def accounts_present_check(store: "ConfigStore", directory: Path | None = None) -> tuple[bool, str, str]:
    """Doctor: is there at least one enabled account? Reads the database read-only (never creates it).
    `directory`: where the SQLite files are (store.url), default the data dir."""
    from ..services import ACCOUNTS_DB

    path = (directory or store.data_dir) / ACCOUNTS_DB
    fix = "add one with `codex-trio login` (or `--device` / `--paste`), or `codex-trio accounts import FILE`"
    if not path.exists():
        return False, f"no account store yet ({path})", fix
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            total, enabled = db.execute("SELECT count(*), coalesce(sum(enabled), 0) FROM accounts").fetchone()
    except sqlite3.Error as exc:
        return False, f"the account store {path} cannot be read ({exc})", "check the file; restore it from a backup"
    if not enabled:
        return False, f"no enabled account ({total} stored)", fix
    return True, f"{enabled} enabled account(s) of {total}", ""
