"""`codex-trio run`: the gateway, in the foreground until a signal stops it."""

from __future__ import annotations

import argparse
import os
import sys

from typing import TYPE_CHECKING

from .. import __version__
from .common import open_store, require_upstream_settings, setup_logging

if TYPE_CHECKING:
    from ..config.store import ConfigStore


def build_gateway(store: "ConfigStore"):
    """The gateway with every surface this build provides (imported here to keep `--version` fast)."""
    from ..app import Gateway
    from ..surfaces import install_surfaces

    gateway = Gateway(config=store)
    install_surfaces(gateway)
    return gateway


def cmd_run(args: argparse.Namespace) -> int:
    import trio

    from ..app import serve_until_signalled

    if args.port is not None:
        os.environ["PORT"] = str(args.port)
    from ..heap import keep_large_blocks_apart

    keep_large_blocks_apart()  # before anything large is allocated (see heap.py)
    store = open_store(args, allow_missing=True)
    require_upstream_settings(store)
    setup_logging(store.settings.logs.level)
    new_key = store.ensure_first_start()
    gateway = build_gateway(store)

    def ready(url: str) -> None:
        from ..server.dashboard import login_link

        print(f"codex-trio {__version__} listening on {url}  (data: {store.data_dir})", file=sys.stderr)
        print(f"dashboard: {login_link(gateway, url)}  (one-time log-in link)", file=sys.stderr)
        if new_key:
            print(f"\nGenerated your API key (stored as server.proxy_api_key in {store.local_file}):\n\n"
                  f"    {new_key}\n\nClients send it as `Authorization: Bearer <key>` (or x-api-key).\n",
                  file=sys.stderr)

    trio.run(lambda: serve_until_signalled(gateway, host=args.host, on_ready=ready))
    return 0


def register(commands: "argparse._SubParsersAction", common: argparse.ArgumentParser) -> None:
    run = commands.add_parser("run", parents=[common], help="run the gateway")
    run.add_argument("--host", help="listen address (default: server.host, 127.0.0.1)")
    run.add_argument("--port", type=int, help="listen port (default: server.port, 8080)")
    run.set_defaults(handler=cmd_run)
