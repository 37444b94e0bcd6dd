"""What this build serves: the routes, background jobs, CLI commands and doctor checks of each feature.

The composition root (`app.Gateway`) knows nothing about protocols; this module is the one place that
plugs features into it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import Gateway
    from .config.store import ConfigStore


def install_surfaces(gateway: "Gateway") -> None:
    """Register every feature's routes and background jobs on the gateway."""
    from .server.accounts_api import register_accounts_api
    from .server.admin import register_admin
    from .server.anthropic_gemini_routes import register_anthropic, register_gemini
    from .server.audio_routes import register_audio
    from .server.ollama_routes import register_ollama
    from .server.openai_routes import register_openai
    from .server.proxies_api import register_proxies_api
    from .services import build_services, run_accounts, run_dispatch
    from .store.follow import run_shared_state
    from .store.response_chains import run_response_chains
    from .store.shared_settings import run_shared_settings
    from .telemetry.install import install_telemetry
    from .upstream.versions import run_release_watch

    gateway.services = build_services(gateway)
    gateway.background_jobs.extend([run_accounts, run_shared_state, run_shared_settings, run_dispatch,
                                    run_response_chains, run_release_watch])
    gateway.route_registrars.extend([register_admin, register_accounts_api, register_proxies_api, register_openai,
                                     register_audio, register_anthropic, register_gemini])
    gateway.ollama_route_registrars.append(register_ollama)
    install_telemetry(gateway)


def add_commands(commands: "argparse._SubParsersAction", common: argparse.ArgumentParser) -> None:
    """Add the CLI subcommands features provide."""
    from .accounts.cli import add_account_commands
    from .accounts.proxies_cli import add_proxy_commands
    from .commands.store import add_store_commands
    from .demo import add_commands as add_demo_commands
    from .identity_check.run import add_commands as add_identity_commands
    from .telemetry.cli import add_telemetry_commands
    from .image_cli import DESCRIPTION as IMAGE_DESCRIPTION, add_arguments as add_image_arguments, cmd_image
    from .transcribe_cli import DESCRIPTION as TRANSCRIBE_DESCRIPTION, add_arguments as add_transcribe_arguments
    from .transcribe_cli import cmd_transcribe

    add_account_commands(commands, common)
    add_proxy_commands(commands, common)
    add_telemetry_commands(commands, common)
    add_store_commands(commands, common)
    add_demo_commands(commands)
    add_identity_commands(commands)
    image = commands.add_parser("image", help="generate an image through a running gateway and save it",
                                description=IMAGE_DESCRIPTION)
    add_image_arguments(image).set_defaults(handler=cmd_image)
    transcribe = commands.add_parser("transcribe", help="transcribe an audio file through a running gateway",
                                     description=TRANSCRIBE_DESCRIPTION)
    add_transcribe_arguments(transcribe).set_defaults(handler=cmd_transcribe)


def doctor_extra_checks(store: "ConfigStore") -> list[tuple[bool, str, str]]:
    from .store.doctor import store_checks
    from .upstream.versions import doctor_check

    return [*store_checks(store), *doctor_check(store.data_dir, store.settings.client.version)]
