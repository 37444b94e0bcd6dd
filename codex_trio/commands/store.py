"""`codex-trio store migrate|copy`: the stores behind `store.url` (docs/scale-out.md).

* `migrate` applies the schema migrations to the configured store and says which versions it holds (the gateway
  does the same at start; this runs them alone, e.g. once before rolling out several instances).
* `copy --to URL` copies every row of the configured store (accounts with their tokens and cookies, client
  keys, proxies, usage, persisted errors) into an empty store at URL — typically a data dir's SQLite files into
  PostgreSQL before switching `store.url`. `--from URL` copies from somewhere else than the configured store.
"""

from __future__ import annotations

import argparse
import sys

from ..config.loader import ConfigError


def _schemas() -> list:
    from ..accounts.store import SCHEMA as ACCOUNTS
    from ..telemetry.store import SCHEMA as OPERATOR

    return [ACCOUNTS, OPERATOR]


def _location(args: argparse.Namespace, url: str | None):
    from .common import open_store
    from ..store.location import StoreLocation

    config = open_store(args)
    try:
        return StoreLocation.of(config) if url is None else StoreLocation.parse(url, config.data_dir)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _import_old_providers(args: argparse.Namespace, source) -> bool:
    """A data dir upgraded from 0.1.0 whose `providers.sqlite3` nothing has opened since: its providers join the
    source store first (docs/providers.md), so the copy carries them."""
    from .common import open_store
    from ..providers.store import LEGACY_PROVIDERS_DB, ProviderStore, ProviderStoreError

    data_dir = open_store(args).data_dir
    if not (data_dir / LEGACY_PROVIDERS_DB).exists():
        return True
    try:
        ProviderStore(data_dir, source).close()
    except ProviderStoreError as exc:
        print(f"codex-trio: {exc}; nothing was copied", file=sys.stderr)
        return False
    return True


def cmd_store_migrate(args: argparse.Namespace) -> int:
    from ..store.errors import SchemaError, StoreUnavailable
    from ..store.location import open_engine

    location = _location(args, None)
    for schema in _schemas():
        try:
            open_engine(location, schema, what=f"{schema.name} store").close()
        except (SchemaError, StoreUnavailable) as exc:
            print(f"codex-trio: {exc}", file=sys.stderr)
            return 1
        print(f"{schema.name} store: schema version {schema.version} ({location.description})")
    return 0


def cmd_store_copy(args: argparse.Namespace) -> int:
    from ..store.copy import CopyRefused, TableCopied, copy_stores
    from ..store.errors import SchemaError, StoreUnavailable

    source = _location(args, args.source)
    destination = _location(args, args.to)
    if source.dialect == "sqlite" and not _import_old_providers(args, source):
        return 1

    def say(done: TableCopied) -> None:
        print(f"{done.store}.{done.table}: {done.rows} rows")

    try:
        copied = copy_stores(source, destination, _schemas(), progress=say)
    except (CopyRefused, SchemaError, StoreUnavailable) as exc:
        print(f"codex-trio: {exc}; nothing was copied", file=sys.stderr)
        return 1
    total = sum(c.rows for c in copied)
    print(f"copied {total} rows from {source.description} to {destination.description}; to use it, set "
          f"store.url to the destination and restart")
    return 0


def register(commands: "argparse._SubParsersAction", common: argparse.ArgumentParser) -> None:
    store = commands.add_parser("store", help="the database behind store.url: run migrations, copy to PostgreSQL")
    sub = store.add_subparsers(dest="store_command", metavar="SUBCOMMAND", required=True)
    migrate = sub.add_parser("migrate", parents=[common], help="apply the schema migrations to the configured store")
    migrate.set_defaults(handler=cmd_store_migrate)
    copy = sub.add_parser("copy", parents=[common], help="copy every row into an empty store (e.g. PostgreSQL)")
    copy.add_argument("--to", required=True, metavar="URL",
                      help="the destination: postgresql://user:password@host:5432/db or sqlite:///path/to/dir")
    copy.add_argument("--from", dest="source", metavar="URL", help="the source (default: the configured store.url)")
    copy.set_defaults(handler=cmd_store_copy)
