"""The `codex-trio` command."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Callable, Sequence

import trio

from . import __version__
from .config.defaults import render_defaults
from .config.checks import proxy_reachable, upstream_problems
from .config.loader import ConfigError, default_data_dir
from .config.schema import SECRET_KEYS
from .config.store import ConfigStore

Command = Callable[[argparse.Namespace], int]


def _mask(secret: str | None) -> str | None:
    if not secret:
        return secret
    return secret[:5] + "…" + secret[-2:] if len(secret) > 10 else "…"


def data_dir_of(args: argparse.Namespace) -> tuple[Path, str]:
    """The data dir a command works on, and where that choice came from (for messages)."""
    if getattr(args, "data_dir", None):
        return Path(args.data_dir).expanduser(), "--data-dir"
    if os.environ.get("CODEX_TRIO_DATA_DIR"):
        return default_data_dir(), "CODEX_TRIO_DATA_DIR"
    return default_data_dir(), "the default location"


def open_store(args: argparse.Namespace, *, allow_missing: bool = False) -> ConfigStore:
    """The configuration of the command's data dir. Only commands that set a data dir up (run, demo, login)
    pass `allow_missing`: for the others a missing directory is a mistyped path, and silently creating an
    empty store there would hide the user's accounts."""
    data_dir, source = data_dir_of(args)
    if not allow_missing and not data_dir.is_dir():
        state = "is not a directory" if data_dir.exists() else "does not exist"
        raise ConfigError(f"data dir {data_dir} {state} (from {source}); check the path, or set one up with "
                          "`codex-trio run` or `codex-trio login`")
    return ConfigStore(data_dir, Path(args.config) if args.config else None)


def require_upstream_settings(store: ConfigStore) -> None:
    """Stop before any upstream call when the settings name a CA file that is gone or a malformed proxy."""
    problems = upstream_problems(store.loaded)
    if problems:
        raise ConfigError("\n".join(str(p) for p in problems))


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    logging.getLogger("hypercorn.error").setLevel(logging.WARNING)


def build_gateway(store: ConfigStore):
    """The gateway with every surface this build provides (imported here to keep `--version` fast)."""
    from .app import Gateway
    from .surfaces import install_surfaces

    gateway = Gateway(config=store)
    install_surfaces(gateway)
    return gateway


def cmd_run(args: argparse.Namespace) -> int:
    from .app import serve_until_signalled

    if args.port is not None:
        os.environ["PORT"] = str(args.port)
    store = open_store(args, allow_missing=True)
    require_upstream_settings(store)
    setup_logging(store.settings.logs.level)
    new_key = store.ensure_first_start()
    gateway = build_gateway(store)

    def ready(url: str) -> None:
        print(f"codex-trio {__version__} listening on {url}  (data: {store.data_dir})", file=sys.stderr)
        if new_key:
            print(f"\nGenerated your API key (stored as server.proxy_api_key in {store.local_file}):\n\n"
                  f"    {new_key}\n\nClients send it as `Authorization: Bearer <key>` (or x-api-key).\n",
                  file=sys.stderr)

    trio.run(lambda: serve_until_signalled(gateway, host=args.host, on_ready=ready))
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    import orjson

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
    sys.stdout.write(render_defaults())
    return 0


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def doctor_checks(store: ConfigStore) -> list[tuple[bool, str, str]]:
    """(ok, what was checked, what to do when it is not ok)."""
    checks: list[tuple[bool, str, str]] = []
    try:
        from . import _native

        checks.append((True, f"native module loads (version {_native.version()})", ""))
    except ImportError as exc:
        checks.append((False, f"native module does not load ({exc})",
                       "reinstall with `pip install .` or build it with `maturin develop` (needs a Rust toolchain)"))
    settings = store.settings
    for name, host, port, enabled in (("main listener", settings.server.host, settings.server.port, True),
                                      ("Ollama listener", settings.ollama.host, settings.ollama.port,
                                       settings.ollama.enabled)):
        if not enabled:
            continue
        free = _port_free(host, port)
        checks.append((free, f"{name} port {host}:{port} is {'free' if free else 'in use'}",
                       f"stop what uses port {port}, or choose another port (PORT / OLLAMA_BRIDGE_PORT)"))
    checks.append(_data_dir_check(store.data_dir))
    problems = upstream_problems(store.loaded)
    checks.extend((False, problem.what, problem.fix) for problem in problems)
    proxy = settings.tls.proxy_url
    if proxy and not any(problem.setting == "tls.proxy_url" for problem in problems):  # well-formed: try it
        why = proxy_reachable(proxy)
        checks.append((why is None, f"egress proxy {proxy} " + ("answers" if why is None else f"does not answer ({why})"),
                       "start the proxy, or fix or remove tls.proxy_url / HTTPS_PROXY"))
    from .server.descriptors import DescriptorBudget
    from .surfaces import doctor_extra_checks

    checks.append(DescriptorBudget.current().doctor_check())
    checks.extend(doctor_extra_checks(store))
    return checks


def _data_dir_check(data_dir: Path) -> tuple[bool, str, str]:
    """Exists and writable; never creates it (a mistyped path must not look fine)."""
    if not data_dir.is_dir():
        return (False, f"data dir {data_dir} does not exist",
                "check --data-dir / CODEX_TRIO_DATA_DIR, or set it up with `codex-trio run` or `codex-trio login`")
    try:
        probe = data_dir / ".doctor-probe"
        probe.write_text("ok")
        probe.unlink()
        return True, f"data dir {data_dir} is writable", ""
    except OSError as exc:
        return (False, f"data dir {data_dir} is not writable ({exc.strerror})",
                "fix its permissions or choose another with --data-dir / CODEX_TRIO_DATA_DIR")


def cmd_doctor(args: argparse.Namespace) -> int:
    store = open_store(args, allow_missing=True)
    problems = 0
    for ok, what, fix in doctor_checks(store):
        print(f"[{'ok' if ok else 'PROBLEM'}] {what}")
        if not ok:
            problems += 1
            print(f"          → {fix}")
    print("everything looks fine" if not problems else f"{problems} problem(s) found")
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codex-trio", description=__doc__)
    parser.add_argument("--version", action="version", version=f"codex-trio {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="base config file instead of the shipped defaults (env CODEX_TRIO_CONFIG)")
    common.add_argument("--data-dir", help="where accounts and local.yaml live (env CODEX_TRIO_DATA_DIR)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", parents=[common], help="run the gateway")
    run.add_argument("--host", help="listen address (default: server.host, 127.0.0.1)")
    run.add_argument("--port", type=int, help="listen port (default: server.port, 8080)")
    run.set_defaults(handler=cmd_run)

    config = commands.add_parser("config", help="inspect the configuration")
    config_commands = config.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    config_commands.add_parser("check", parents=[common], help="validate and print the effective config (secrets "
                                                               "masked)").set_defaults(handler=cmd_config_check)
    config_commands.add_parser("defaults", help="print every setting with its default and description"
                               ).set_defaults(handler=cmd_config_defaults)

    commands.add_parser("doctor", parents=[common], help="check the installation and say what to fix"
                        ).set_defaults(handler=cmd_doctor)

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
