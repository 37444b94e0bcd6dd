"""What several subcommands share: the data dir a command works on, its configuration, logging, output, and
the accounts of the data dir opened for one command.

Kept light at import time, like every command module: all of them are imported to build the parser, also for
`--version`, so what a command needs to run is imported when it runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence

if TYPE_CHECKING:
    from ..accounts.service import AccountService
    from ..config.store import ConfigStore
    from ..services import Services
    from ..telemetry.store import OperatorStore

Command = Callable[[argparse.Namespace], int]


def say(*parts: Any, err: bool = False) -> None:
    print(*parts, file=sys.stderr if err else sys.stdout, flush=True)


def data_dir_of(args: argparse.Namespace) -> tuple[Path, str]:
    """The data dir a command works on, and where that choice came from (for messages)."""
    from ..config.loader import default_data_dir

    if getattr(args, "data_dir", None):
        return Path(args.data_dir).expanduser(), "--data-dir"
    if os.environ.get("CODEX_TRIO_DATA_DIR"):
        return default_data_dir(), "CODEX_TRIO_DATA_DIR"
    return default_data_dir(), "the default location"


def open_store(args: argparse.Namespace, *, allow_missing: bool = False) -> "ConfigStore":
    """The configuration of the command's data dir. Only commands that set a data dir up (run, demo, login)
    pass `allow_missing`: for the others a missing directory is a mistyped path, and silently creating an
    empty store there would hide the user's accounts."""
    from ..config.loader import ConfigError
    from ..config.store import ConfigStore

    data_dir, source = data_dir_of(args)
    if not allow_missing and not data_dir.is_dir():
        state = "is not a directory" if data_dir.exists() else "does not exist"
        raise ConfigError(f"data dir {data_dir} {state} (from {source}); check the path, or set one up with "
                          "`codex-trio run` or `codex-trio login`")
    return ConfigStore(data_dir, Path(args.config) if args.config else None)


def require_upstream_settings(store: "ConfigStore") -> None:
    """Stop before any upstream call when the settings name a CA file that is gone or a malformed proxy."""
    from ..config.checks import upstream_problems
    from ..config.loader import ConfigError

    problems = upstream_problems(store.loaded)
    if problems:
        raise ConfigError("\n".join(str(p) for p in problems))


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    logging.getLogger("hypercorn.error").setLevel(logging.WARNING)


def run_with_accounts(args: argparse.Namespace, work: Callable[["Services", "AccountService"], Awaitable[int]], *,
                      sets_up: bool = False, upstream: bool = True) -> int:
    """Open the accounts of the data dir, run `work`, close them. Account and upstream errors → one line and
    exit 1. Only `sets_up` (login) may create the data dir; `upstream` commands check the CA file and proxy
    first.

    This builds the same services as the gateway's `run_accounts` (`services.open_accounts`), without its
    background jobs. Refreshing from here while a gateway runs on the same store is safe: a refresh
    holds the store's refresh lock of the account, which the gateway honours too (accounts/refresh.py)."""
    import trio

    from ..accounts.http import DeliveryUnknown, NotDelivered
    from ..accounts.login import LoginError
    from ..errors import GatewayError
    from ..files import ensure_private_dir
    from ..native import UpstreamError

    config = open_store(args, allow_missing=sets_up)
    if upstream:
        require_upstream_settings(config)
    ensure_private_dir(config.data_dir)
    say(f"data dir: {config.data_dir}", err=True)

    async def main() -> int:
        from ..services import build_services_for, open_accounts

        services = build_services_for(config)
        if getattr(args, "issuer", None):
            services.connector.endpoint = dataclasses.replace(services.connector.endpoint, auth_url=args.issuer.rstrip("/"))
        async with open_accounts(services, config) as accounts:
            await services.pool.load()
            try:
                return await work(services, accounts)
            finally:
                with trio.CancelScope(shield=True):
                    await services.pool.flush()

    try:
        return trio.run(main)
    except (GatewayError, LoginError) as exc:
        say(f"codex-trio: {exc}", err=True)
        return 1
    except (NotDelivered, DeliveryUnknown, UpstreamError) as exc:
        say(f"codex-trio: the upstream call failed: {exc}. Check the network, the issuer or backend address "
            "(--issuer, api.auth_base_url, api.base_url) and tls.proxy_url.", err=True)
        return 1


def issuer_option() -> argparse.ArgumentParser:
    """A parent parser for the commands that talk to the OAuth issuer (login, accounts import / refresh)."""
    issuer = argparse.ArgumentParser(add_help=False)
    issuer.add_argument("--issuer", help="OAuth issuer base URL (default: api.auth_base_url, https://auth.openai.com)")
    return issuer


def open_operator_store(args: argparse.Namespace) -> "OperatorStore":
    """The data dir's operator store (client keys, usage), opened for synchronous use by one command."""
    from ..store.location import StoreLocation
    from ..telemetry.store import OperatorStore

    config = open_store(args)
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return OperatorStore.open_sync(StoreLocation.of(config))


def guarded(handler: Command) -> Command:
    """A command whose refusals (GatewayError: exit 1, ValueError: exit 2) become one line on stderr."""
    from ..errors import GatewayError

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except GatewayError as exc:
            say(f"codex-trio: {exc}", err=True)
            return 1
        except ValueError as exc:
            say(f"codex-trio: {exc}", err=True)
            return 2
    return run


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, numeric_from: int = 1) -> str:
    """An aligned text table: text columns left-aligned, numbers right-aligned."""
    cells = [list(map(str, headers))] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [value.rjust(widths[i]) if i >= numeric_from else value.ljust(widths[i]) for i, value in enumerate(row)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
