"""`codex-trio providers add|list|remove|models`: the API-key providers, on the data dir directly (the gateway
need not run; a running one sees the change at its next request). Keys are stored encrypted and listed masked."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Awaitable, Callable

import orjson
import trio

from ..errors import GatewayError
from .common import open_store, say as _say


def _run(args: argparse.Namespace, work: Callable[[Any], Awaitable[int]]) -> int:
    from ..files import ensure_private_dir
    from ..providers.secrets import KeyFileError
    from ..providers.service import ProviderService
    from ..providers.store import ProviderStoreError
    from ..store.location import StoreLocation

    config = open_store(args)
    ensure_private_dir(config.data_dir)

    async def main() -> int:
        service = ProviderService(config.data_dir, StoreLocation.of(config),
                                  timeout=lambda: config.settings.providers.timeout_seconds)
        service.open()
        try:
            return await work(service)
        finally:
            await service.aclose()

    try:
        return trio.run(main)
    except GatewayError as exc:
        _say(f"error: {exc.message}", err=True)
        return 1
    except (ProviderStoreError, KeyFileError) as exc:
        _say(f"error: {exc}", err=True)
        return 1


def _line(provider: dict[str, Any]) -> str:
    state = "" if provider["enabled"] else " (disabled)"
    models = ", ".join(provider["models"]) or "none (run `codex-trio providers models --refresh`)"
    return (f"{provider['id']}  {provider['label']}{state}  {provider['provider']} ({provider['wire']})  "
            f"{provider['baseUrl']}  priority={provider['priority']}  keys={', '.join(provider['keys'])}"
            f"{'  proxy=' + provider['proxy'] if provider['proxy'] else ''}\n    models: {models}")


def cmd_providers_add(args: argparse.Namespace) -> int:
    keys = list(args.key or [])
    if args.key_stdin:
        keys += [line.strip() for line in sys.stdin if line.strip()]
    body: dict[str, Any] = {"provider": args.provider, "keys": keys, "enabled": not args.disabled,
                            "priority": args.priority, "fetchModels": not args.no_fetch}
    for name, value in (("label", args.label), ("baseUrl", args.base_url), ("wire", args.wire),
                        ("proxy", args.proxy), ("models", args.model)):
        if value:
            body[name] = value

    async def work(service) -> int:
        provider = (await service.add(body)).public()
        _say(orjson.dumps(provider, option=orjson.OPT_INDENT_2).decode() if args.json else f"added {_line(provider)}")
        return 0

    return _run(args, work)


def cmd_providers_list(args: argparse.Namespace) -> int:
    async def work(service) -> int:
        providers = service.status()
        if args.json:
            _say(orjson.dumps({"providers": providers}, option=orjson.OPT_INDENT_2).decode())
        elif not providers:
            _say("No providers yet: add one with `codex-trio providers add --provider openai --key sk-...`.")
        for provider in [] if args.json else providers:
            _say(_line(provider))
        return 0

    return _run(args, work)


def cmd_providers_remove(args: argparse.Namespace) -> int:
    async def work(service) -> int:
        removed = await service.remove(args.ids)
        _say(f"removed {removed} provider(s)")
        return 0

    return _run(args, work)


def cmd_providers_models(args: argparse.Namespace) -> int:
    async def work(service) -> int:
        provider = await service.refresh_models(args.id) if args.refresh else service.get(args.id)
        for model in provider.models:
            _say(f"{provider.label}/{model}")
        return 0

    return _run(args, work)


def register(commands: "argparse._SubParsersAction", common: argparse.ArgumentParser) -> None:
    from ..providers.model import PRESETS, WIRES

    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print the JSON the admin API returns")
    providers = commands.add_parser("providers", help="API-key providers (OpenAI-compatible, Anthropic, Gemini)")
    sub = providers.add_subparsers(dest="providers_command", metavar="SUBCOMMAND", required=True)

    adding = sub.add_parser("add", parents=[common, output], help="add a provider (its keys are stored encrypted)")
    adding.add_argument("--provider", required=True, choices=list(PRESETS),
                        help="the vendor; custom = any OpenAI-compatible base URL")
    adding.add_argument("--key", action="append", metavar="KEY", help="an API key (repeat for several)")
    adding.add_argument("--key-stdin", action="store_true", help="read API keys from stdin, one a line (keeps them "
                                                                  "out of the shell history)")
    adding.add_argument("--label", help="its name and model prefix (<label>/<model>); default: the vendor")
    adding.add_argument("--base-url", help="the API base URL (required for custom; e.g. https://host/v1)")
    adding.add_argument("--wire", choices=WIRES, help="for OpenAI-compatible providers: chat (default) or responses")
    adding.add_argument("--model", action="append", metavar="MODEL",
                        help="a model it serves (repeat); default: fetched from the provider")
    adding.add_argument("--priority", type=int, default=0, help="lower is tried first when several offer a model")
    adding.add_argument("--proxy", help="egress proxy URL for this provider (http:// or socks5://)")
    adding.add_argument("--disabled", action="store_true", help="add it switched off")
    adding.add_argument("--no-fetch", action="store_true", help="do not fetch the model list now")
    adding.set_defaults(handler=cmd_providers_add)

    listing = sub.add_parser("list", parents=[common, output], help="list the providers (keys masked)")
    listing.set_defaults(handler=cmd_providers_list)

    removing = sub.add_parser("remove", parents=[common], help="remove providers by id or label")
    removing.add_argument("ids", nargs="+", metavar="ID")
    removing.set_defaults(handler=cmd_providers_remove)

    models = sub.add_parser("models", parents=[common], help="print a provider's models (as <label>/<model>)")
    models.add_argument("id", metavar="ID", help="its id or label")
    models.add_argument("--refresh", action="store_true", help="fetch the list from the provider first and keep it")
    models.set_defaults(handler=cmd_providers_models)
