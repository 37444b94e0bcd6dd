"""`codex-trio sim` entry points: the argument parser and run_sim serving real requests."""

from __future__ import annotations

import argparse
import json

import httpx
import trio

from codex_trio.sim.cli import add_arguments, run_sim


def test_arguments() -> None:
    args = add_arguments(argparse.ArgumentParser()).parse_args(
        ["--port", "0", "--no-https", "--accounts", "3", "--plans", "free,pro", "--scenario", "s.yaml"])
    assert (args.port, args.https, args.accounts, args.plans, args.scenario) == (0, False, 3, "free,pro", "s.yaml")


async def test_run_sim_prints_its_urls_and_serves(capsys) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_sim, "127.0.0.1", 0, False, 2, None, ("free", "pro"))
        out = ""
        with trio.fail_after(5):
            while not out:
                await trio.sleep(0.01)
                out = capsys.readouterr().out
        summary = json.loads(out)
        assert [a["plan"] for a in summary["accounts"]] == ["free", "pro"]
        account = summary["accounts"][1]
        async with httpx.AsyncClient() as client:
            r = await client.get(summary["backend_base"] + "/wham/usage", headers={
                "authorization": "Bearer " + account["access_token"], "chatgpt-account-id": account["account_id"]})
        assert r.status_code == 200 and r.json()["plan_type"] == "pro"
        nursery.cancel_scope.cancel()
