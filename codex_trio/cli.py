"""The `codex-trio` command."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import __version__
from .commands.common import Command


def build_parser() -> argparse.ArgumentParser:
    """Argument parsing only: each subcommand is a module of `codex_trio.commands`, registered in
    `surfaces.add_commands`."""
    parser = argparse.ArgumentParser(prog="codex-trio", description=__doc__)
    parser.add_argument("--version", action="version", version=f"codex-trio {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="base config file instead of the shipped defaults (env CODEX_TRIO_CONFIG)")
    common.add_argument("--data-dir", help="where accounts and local.yaml live (env CODEX_TRIO_DATA_DIR)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    from .surfaces import add_commands

    add_commands(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Command | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:  # noqa: BLE001 - a user's mistake becomes one line; anything else propagates
        mistake = _user_mistake(exc)
        if mistake is None:
            raise
        print(f"codex-trio: {mistake}", file=sys.stderr)
        return 2


def _user_mistake(exc: BaseException) -> BaseException | None:
    """The error a user can fix (bad settings, a port in use), also when a nursery wrapped it in a group."""
    from .config.loader import ConfigError
    from .server.listener import ListenerError  # only on this error path: keeps `--version` quick
    from .store.errors import SchemaError  # a store that cannot be opened (unreachable, newer, foreign)

    mistakes = (ConfigError, ListenerError, SchemaError)
    if isinstance(exc, BaseExceptionGroup):
        found = exc.subgroup(mistakes)
        while isinstance(found, BaseExceptionGroup):
            found = found.exceptions[0]
        return found
    return exc if isinstance(exc, mistakes) else None


if __name__ == "__main__":
    sys.exit(main())
