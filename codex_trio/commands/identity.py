"""`codex-trio identity check`: the gateway's upstream identity compared with a real Codex CLI's, both against the
simulator on loopback (`identity_check.run`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import setup_logging


def cmd_identity_check(args: argparse.Namespace) -> int:
    import trio

    from ..identity_check.run import check, find_binary

    setup_logging("warning")
    try:
        find_binary(Path(args.codex))
    except FileNotFoundError as exc:
        print(f"codex-trio identity check: {exc}", file=sys.stderr)
        return 2
    equal = True
    for websocket in (True, False):
        result = trio.run(lambda: check(Path(args.codex), websocket=websocket, timeout=args.timeout))
        print(result.render(), flush=True)
        equal = equal and result.report.equal and result.codex_exit == 0
    return 0 if equal else 1


def register(commands: "argparse._SubParsersAction", _common: argparse.ArgumentParser) -> None:
    identity = commands.add_parser("identity", help="check the upstream identity against a real Codex CLI")
    sub = identity.add_subparsers(dest="identity_command", metavar="SUBCOMMAND", required=True)
    checker = sub.add_parser("check", help="run one turn of a real codex binary and the same turn through the "
                                           "gateway against a loopback stand-in, and print the differences "
                                           "(exit 0 when there are none)")
    checker.add_argument("--codex", required=True, help="the codex executable, or the directory npm installed "
                                                        "@openai/codex into")
    checker.add_argument("--timeout", type=float, default=180.0, help="seconds the real client may take (180)")
    checker.set_defaults(handler=cmd_identity_check)
