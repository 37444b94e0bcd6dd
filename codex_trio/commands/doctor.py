"""`codex-trio doctor`: check the installation and say what to fix."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from .common import open_store

if TYPE_CHECKING:
    from ..config.store import ConfigStore


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def doctor_checks(store: "ConfigStore") -> list[tuple[bool, str, str]]:
    """(ok, what was checked, what to do when it is not ok)."""
    from ..config.checks import proxy_reachable, upstream_problems

    checks: list[tuple[bool, str, str]] = []
    try:
        from .. import _native

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
    from ..server.descriptors import DescriptorBudget
    from ..surfaces import doctor_extra_checks

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


def register(commands: "argparse._SubParsersAction", common: argparse.ArgumentParser) -> None:
    commands.add_parser("doctor", parents=[common], help="check the installation and say what to fix"
                        ).set_defaults(handler=cmd_doctor)
