"""`codex-trio config check|defaults`: the effective configuration (secrets masked) and every setting's default."""

from __future__ import annotations

import argparse
import sys

from .common import open_store


def _mask(secret: str | None) -> str | None:
    if not secret:
        return secret
    return secret[:5] + "…" + secret[-2:] if len(secret) > 10 else "…"


def cmd_config_check(args: argparse.Namespace) -> int:
    import orjson

    from ..config.checks import upstream_problems
    from ..config.schema import SECRET_KEYS

    store = open_store(args)
    effective = store.settings.model_dump(mode="json")
    for section, key in SECRET_KEYS:
        effective[section][key] = _mask(effective[section][key])
    print(orjson.dumps(effective, option=orjson.OPT_INDENT_2).decode())
    for setting, variable in store.overridden_in_file().items():
        print(f"note: {setting} in {store.local_file} does not apply: the environment variable {variable} "
              "overrides it", file=sys.stderr)
    problems = upstream_problems(store.loaded)
    for problem in problems:
        print(f"codex-trio: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"configuration is valid (base: {store.loaded.base_file}, local: {store.local_file})", file=sys.stderr)
    return 0


def cmd_config_defaults(_args: argparse.Namespace) -> int:
    from ..config.defaults import render_defaults

    sys.stdout.write(render_defaults())
    return 0


def register(commands: "argparse._SubParsersAction", common: argparse.ArgumentParser) -> None:
    config = commands.add_parser("config", help="inspect the configuration")
    config_commands = config.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    config_commands.add_parser("check", parents=[common], help="validate and print the effective config (secrets "
                                                               "masked)").set_defaults(handler=cmd_config_check)
    config_commands.add_parser("defaults", help="print every setting with its default and description"
                               ).set_defaults(handler=cmd_config_defaults)
