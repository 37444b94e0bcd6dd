"""Which provider serves a model name (routing/providers.py): explicit prefix, aliases, the Codex catalog first,
model lists by priority; disabled providers never."""

from __future__ import annotations

from codex_trio.providers.model import Provider
from codex_trio.routing.providers import provider_models, resolve_provider

CODEX = frozenset({"gpt-5.5", "gpt-5.4"})


def provider(label: str, kind: str = "openrouter", models=(), priority: int = 0, enabled: bool = True,
             created: float = 0.0) -> Provider:
    wire = {"anthropic": "anthropic", "gemini": "gemini"}.get(kind, "chat")
    return Provider(id=label, label=label, kind=kind, wire=wire, base_url="https://x", keys=("k",),
                    models=tuple(models), enabled=enabled, priority=priority, created_at=created)


def route(name, providers, aliases=None):
    target = resolve_provider(name, providers, aliases=aliases or {}, codex_models=CODEX)
    return None if target is None else (target.provider.label, target.model)


def test_explicit_prefix_by_label_or_kind_keeps_the_rest_of_the_name():
    providers = [provider("openrouter"), provider("claude", "anthropic")]
    assert route("openrouter/anthropic/claude-sonnet-4", providers) == ("openrouter", "anthropic/claude-sonnet-4")
    assert route("anthropic:claude-x", providers) == ("claude", "claude-x")
    assert route("claude/claude-x", providers) == ("claude", "claude-x")
    assert route("gpt-5.5/whatever", []) is None


def test_codex_models_stay_with_the_accounts_unless_prefixed():
    providers = [provider("openai", "openai", models=["gpt-5.5", "gpt-4o"])]
    assert route("gpt-5.5", providers) is None
    assert route("openai/gpt-5.5", providers) == ("openai", "gpt-5.5")
    assert route("gpt-4o", providers) == ("openai", "gpt-4o")
    assert route("unknown-model", providers) is None


def test_model_lists_are_tried_by_priority_then_age_and_disabled_ones_never():
    providers = [provider("late", models=["m"], priority=5), provider("second", models=["m"], priority=1, created=2),
                 provider("first", models=["m"], priority=1, created=1), provider("off", models=["m"], priority=0,
                                                                                 enabled=False)]
    assert route("m", providers) == ("first", "m")
    assert route("off/m", providers) is None
    assert provider_models(providers) == ["first/m", "second/m", "late/m"]


def test_aliases_lead_to_providers_and_cycles_to_nobody():
    providers = [provider("ds", models=["deepseek-chat"])]
    assert route("my-deepseek", providers, {"my-deepseek": "deepseek-chat"}) == ("ds", "deepseek-chat")
    assert route("fast", providers, {"fast": "ds/deepseek-chat"}) == ("ds", "deepseek-chat")
    assert route("codex", providers, {"codex": "gpt-5.5"}) is None
    assert route("a", providers, {"a": "b", "b": "a"}) is None


def test_proxy_credentials_are_masked_unless_revealed():
    from dataclasses import replace

    with_proxy = replace(provider("p"), proxy="socks5://user:secret@10.0.0.1:1080")
    assert with_proxy.public()["proxy"] == "socks5://user:********@10.0.0.1:1080"
    assert with_proxy.public(reveal=True)["proxy"] == "socks5://user:secret@10.0.0.1:1080"
    assert replace(provider("p"), proxy="http://10.0.0.1:3128").public()["proxy"] == "http://10.0.0.1:3128"
