"""`codex-trio sim`: only the simulated ChatGPT backend and OAuth issuer (`codex_trio.sim`), for tests and demos
against a gateway started separately."""

from __future__ import annotations

import argparse


def cmd_sim(args: argparse.Namespace) -> int:
    from ..sim.cli import run_from_args

    return run_from_args(args)


def register(commands: "argparse._SubParsersAction", _common: argparse.ArgumentParser) -> None:
    from ..sim.cli import add_arguments

    sim = commands.add_parser("sim", help="run only the simulated ChatGPT backend and OAuth issuer")
    add_arguments(sim).set_defaults(handler=cmd_sim)
