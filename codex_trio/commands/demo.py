"""`codex-trio demo`: the gateway and the simulated backend in one process, a demo account logged in.

Everything stays offline and in a throwaway data directory (unless --data-dir is given), so a newcomer can
try every endpoint without a ChatGPT account and without touching their real accounts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import trio

from .. import __version__
from ..config.store import ConfigStore
from ..config.writer import update_local_file
from .common import setup_logging

SAMPLE_PROMPTS = ("weather in Paris and Tokyo", "draw a cat", "search the web", "write a patch", "tell a story")


def demo_settings(sim, port: int, ollama_port: int | None) -> dict:
    # The real host names, pinned to the simulator: the gateway sends the real SNI and Host, and keeps the
    # simulated Cloudflare cookies per account as it would the backend's.
    settings = {"api": {"base_url": sim.urls.real_backend_base, "auth_base_url": sim.urls.real_auth_base},
                "tls": {"ca_file": str(sim.ca_file), "resolve": sim.urls.resolve}, "server": {"port": port}}
    if ollama_port is not None:
        settings["ollama"] = {"enabled": True, "port": ollama_port}
    return settings


def banner(url: str, key: str, ollama_url: str | None, data_dir: Path, dashboard_link: str | None = None) -> str:
    lines = [
        f"codex-trio {__version__} demo — offline, on the built-in simulated ChatGPT backend",
        f"  gateway:  {url}   (every API and the admin API)",
        *([f"  dashboard: {dashboard_link}   (one-time log-in link)"] if dashboard_link else []),
        f"  API key:  {key}",
        f"  data:     {data_dir}",
    ]
    if ollama_url:
        lines.append(f"  ollama:   {ollama_url}")
    lines += [
        "",
        "Try:",
        f"  curl {url}/v1/chat/completions -H 'Authorization: Bearer {key}' -H 'content-type: application/json' \\",
        "       -d '{\"model\": \"gpt-5.5\", \"stream\": true, \"messages\": [{\"role\": \"user\", \"content\": \"tell a story\"}]}'",
        f"  OPENAI_BASE_URL={url}/v1 OPENAI_API_KEY={key}  (OpenAI SDKs, aider, ...)",
        f"  ANTHROPIC_BASE_URL={url} ANTHROPIC_API_KEY={key}  (Claude Code, anthropic SDK)",
        f"  GOOGLE_GEMINI_BASE_URL={url} GEMINI_API_KEY={key}  (Gemini CLI, google-genai with api_version v1beta)",
        "Prompts the simulator scripts: " + ", ".join(f"'{p}'" for p in SAMPLE_PROMPTS) + "; anything else is echoed.",
        "Ctrl-C stops it.",
    ]
    return "\n".join(lines)


async def run_demo(data_dir: Path, port: int, ollama_port: int | None, *, accounts: int = 1,
                   task_status=trio.TASK_STATUS_IGNORED) -> None:
    from ..app import Gateway, stop_on_signals
    from ..routing.catalog import refresh_catalog
    from ..sim import DEMO_SCENARIO, Simulator, SimConfig
    from ..surfaces import install_surfaces

    sim = Simulator(SimConfig(accounts=accounts, scenario=str(DEMO_SCENARIO)))
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(sim.serve, "127.0.0.1", 0)
            update_local_file(data_dir / "local.yaml", demo_settings(sim, port, ollama_port))
            store = ConfigStore(data_dir)
            store.ensure_first_start()
            gateway = Gateway(config=store)
            install_surfaces(gateway)

            async def run_gateway(task_status=trio.TASK_STATUS_IGNORED) -> None:
                await gateway.run(task_status=task_status)
                nursery.cancel_scope.cancel()  # drained: stop the simulator and the signal watcher

            nursery.start_soon(stop_on_signals, gateway)
            url = await nursery.start(run_gateway)
            for account in sim.accounts:
                await gateway.services.accounts.add_tokens(
                    access_token=account.access_token, refresh_token=account.refresh_token,
                    id_token=account.id_token, label=f"demo ({account.plan})")
            await refresh_catalog(gateway.services, gateway.services.catalog)
            from ..server.dashboard import login_link

            print(banner(url, store.settings.server.proxy_api_key, gateway.ollama.listener.status.url, data_dir,
                         login_link(gateway, url)),
                  file=sys.stderr, flush=True)
            task_status.started((gateway, url))
    finally:
        sim.close()


def cmd_demo(args: argparse.Namespace) -> int:
    setup_logging("warning")
    data_dir = Path(args.data_dir).expanduser() if args.data_dir else Path(tempfile.mkdtemp(prefix="codex-trio-demo-"))
    ollama_port = args.ollama_port if args.ollama else None
    trio.run(run_demo, data_dir, args.port, ollama_port)
    return 0


def register(commands: "argparse._SubParsersAction", _common: argparse.ArgumentParser) -> None:
    demo = commands.add_parser("demo", help="run the gateway offline on the built-in simulated backend")
    demo.add_argument("--port", type=int, default=8080, help="gateway port (default 8080; 0 = any free port)")
    demo.add_argument("--ollama", action=argparse.BooleanOptionalAction, default=True,
                      help="also run the Ollama listener (default on)")
    demo.add_argument("--ollama-port", type=int, default=11434, help="Ollama listener port (default 11434)")
    demo.add_argument("--data-dir", help="keep the demo's data here (default: a new temporary directory)")
    demo.set_defaults(handler=cmd_demo)
