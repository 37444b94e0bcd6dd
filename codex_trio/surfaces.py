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
    from .server.dashboard import register_dashboard, run_session_sweep
    from .server.anthropic_gemini_routes import register_anthropic, register_gemini
    from .server.audio_routes import register_audio
    from .server.ollama_routes import register_ollama
    from .server.openai_routes import register_openai
    from .providers.hooks import install_providers
    from .server.proxies_api import register_proxies_api
    from .services import build_services, run_accounts, run_dispatch
    from .store.follow import run_shared_state
    from .store.response_chains import run_response_chains
    from .store.shared_settings import run_shared_settings
    from .telemetry.install import install_telemetry
    from .upstream.versions import run_release_watch

    gateway.services = build_services(gateway)
    gateway.background_jobs.extend([run_accounts, run_shared_state, run_shared_settings, run_dispatch,
                                    run_response_chains, run_release_watch, run_session_sweep])
    gateway.route_registrars.extend([register_admin, register_accounts_api, register_proxies_api, register_openai,
                                     register_audio, register_anthropic, register_gemini, register_dashboard])
    gateway.ollama_route_registrars.append(register_ollama)
    install_telemetry(gateway)
    install_providers(gateway)


def add_commands(commands: "argparse._SubParsersAction", common: argparse.ArgumentParser) -> None:
    """Add the CLI subcommands: one module of `codex_trio.commands` each, registered with one line here."""
    from .commands import (accounts, config, demo, doctor, identity, image, keys, login, providers, proxies, run,
                           sim, store, transcribe, usage)

    run.register(commands, common)
    config.register(commands, common)
    doctor.register(commands, common)
    login.register(commands, common)
    accounts.register(commands, common)
    proxies.register(commands, common)
    providers.register(commands, common)
    store.register(commands, common)
    usage.register(commands, common)
    keys.register(commands, common)
    demo.register(commands, common)
    sim.register(commands, common)
    identity.register(commands, common)
    image.register(commands, common)
    transcribe.register(commands, common)


def doctor_extra_checks(store: "ConfigStore") -> list[tuple[bool, str, str]]:
    from .store.doctor import store_checks
    from .upstream.versions import doctor_check

    return [*store_checks(store), *doctor_check(store.data_dir, store.settings.client.version)]
