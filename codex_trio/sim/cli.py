"""`codex-trio sim`: run the simulated backend alone.

The lead's CLI calls `main(argv)` (or builds its own parser with `add_arguments` and calls `run_sim`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import orjson
import trio


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port to bind, 0 for any free port (default 8787)")
    parser.add_argument("--https", action=argparse.BooleanOptionalAction, default=True,
                        help="advertise https base URLs (the port answers TLS and plain HTTP either way)")
    parser.add_argument("--accounts", type=int, default=1, help="number of simulated accounts (default 1)")
    parser.add_argument("--plans", default="plus",
                        help="comma-separated plans the accounts cycle through (free, plus, pro, team, …)")
    parser.add_argument("--scenario", default=None, help="YAML scenario file with reply rules")
    return parser


async def run_sim(host: str, port: int, https: bool, accounts: int, scenario_path: str | None,
                  plans: Sequence[str] = ("plus",)) -> None:
    from .simulator import Simulator  # here, not at the top: `codex-trio run` builds its parser with this module
    from .state import SimConfig

    sim = Simulator(SimConfig(accounts=accounts, plans=tuple(plans), https=https, scenario=scenario_path))
    try:
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(sim.serve, host, port)
            summary = {"backend_base": urls.backend_base, "auth_base": urls.auth_base, "http_base": urls.http_base,
                       "ca_file": urls.ca_file, "control": urls.base + "/_sim/",
                       "accounts": [{"account_id": a.account_id, "email": a.email, "plan": a.plan,
                                     "access_token": a.access_token, "refresh_token": a.refresh_token}
                                    for a in sim.accounts]}
            print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode(), flush=True)
    finally:
        sim.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="codex-trio sim",
                                                   description="Run the simulated ChatGPT backend and OAuth issuer."))
    return run_from_args(parser.parse_args(argv))


def run_from_args(args: argparse.Namespace) -> int:
    """Run with parsed `add_arguments` options (shared by `python -m codex_trio.sim` and `codex-trio sim`)."""
    plans = [p.strip() for p in args.plans.split(",") if p.strip()]
    try:
        trio.run(run_sim, args.host, args.port, args.https, args.accounts, args.scenario, plans)
    except KeyboardInterrupt:
        return 0
    except (OSError, ValueError) as exc:
        print(f"codex-trio sim: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
