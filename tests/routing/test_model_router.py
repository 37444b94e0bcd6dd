"""Model resolution: suffixes, aliases (chains, cycles), catalog, defaults and precedence when applied to a Turn."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from codex_trio.errors import GatewayError
from codex_trio.routing import ModelRouter, ResolvedModel
from codex_trio.turn import Turn

# The seed model table (codex-proxy README) as a catalog.
CATALOG = {"gpt-5.5", "gpt-5.4", "gpt-5.4-mini", "gpt-5.3-codex", "gpt-5.2", "gpt-5-codex", "gpt-5-codex-mini",
           "gpt-oss-120b", "gpt-oss-20b"}


def router(**kw) -> ModelRouter:
    args = dict(default_model="gpt-5.4", default_effort=None, default_service_tier=None,
                aliases={"codex": "gpt-5.4", "sonnet": "gpt-5.5", "opus": "sonnet-xhigh"}, catalog=CATALOG)
    args.update(kw)
    return ModelRouter(**args)


@pytest.mark.parametrize("name,expected", [
    ("gpt-5.4", ResolvedModel("gpt-5.4", None, None, "gpt-5.4")),
    ("gpt-5.4-high", ResolvedModel("gpt-5.4", "high", None, "gpt-5.4-high")),
    ("gpt-5.4-fast", ResolvedModel("gpt-5.4", None, "fast", "gpt-5.4-fast")),
    ("gpt-5.4-high-fast", ResolvedModel("gpt-5.4", "high", "fast", "gpt-5.4-high-fast")),
    ("gpt-5.4-mini-none-flex", ResolvedModel("gpt-5.4-mini", "none", "flex", "gpt-5.4-mini-none-flex")),
    ("gpt-5-codex-mini", ResolvedModel("gpt-5-codex-mini", None, None, "gpt-5-codex-mini")),
    ("codex-high-fast", ResolvedModel("gpt-5.4", "high", "fast", "gpt-5.4-high-fast")),
    ("sonnet-minimal", ResolvedModel("gpt-5.5", "minimal", None, "gpt-5.5-minimal")),
    ("opus", ResolvedModel("gpt-5.5", "xhigh", None, "gpt-5.5-xhigh")),  # alias chain carrying a suffix
    ("opus-low", ResolvedModel("gpt-5.5", "low", None, "gpt-5.5-low")),  # the client's suffix wins
    ("  gpt-5.2  ", ResolvedModel("gpt-5.2", None, None, "gpt-5.2")),
])
def test_resolve(name, expected):
    assert router().resolve(name) == expected


def test_catalog_id_with_suffix_like_ending_is_kept_whole():
    r = router(catalog=CATALOG | {"gpt-5.3-codex-high"})
    assert r.resolve("gpt-5.3-codex-high").model_id == "gpt-5.3-codex-high"
    assert r.resolve("gpt-5.3-codex-high").effort is None


def test_suffix_order_matters():
    assert router().resolve("gpt-5.4-xhigh-fast").display_name == "gpt-5.4-xhigh-fast"
    with pytest.raises(GatewayError):
        router().resolve("gpt-5.4-fast-high")  # base "gpt-5.4-fast" is not a model


@pytest.mark.parametrize("name", ["gpt-4o", "claude-sonnet-4-5", "gpt-5.4-ultra", "gpt-5.4-fast-high"])
def test_unknown_is_404_unless_fallback(name):
    with pytest.raises(GatewayError) as info:
        router().resolve(name)
    assert info.value.status == 404 and info.value.code == "model_not_found" and info.value.param == "model"
    fallback = router().resolve(name, fallback_to_default=True)
    assert fallback.model_id == "gpt-5.4" and fallback.known is False


def test_alias_cycles_and_long_chains():
    with pytest.raises(GatewayError) as info:
        router(aliases={"a": "b", "b": "c", "c": "a"}).resolve("a-high")
    assert info.value.code == "model_alias_cycle" and "a -> b -> c -> a" in info.value.message
    chain = {f"m{i}": f"m{i + 1}" for i in range(30)}
    with pytest.raises(GatewayError):
        router(aliases=chain).resolve("m0")
    assert router(aliases={"x": "not-in-catalog"}).resolve("x").model_id == "not-in-catalog"


def test_callable_catalog_and_custom_models():
    live = {"gpt-5.4"}
    r = router(catalog=lambda: live, custom_models=["local-simple", {"id": "local-rich",
                                                                      "supported_reasoning_efforts": ["low", "high"]}])
    with pytest.raises(GatewayError):
        r.resolve("gpt-5.5")
    live.add("gpt-5.5")
    assert r.resolve("gpt-5.5-fast").model_id == "gpt-5.5"
    assert r.resolve("local-simple-high").model_id == "local-simple"
    assert r.resolve("local-rich").model_id == "local-rich"


def test_defaults():
    r = router(default_effort="medium", default_service_tier="flex")
    assert r.resolve("gpt-5.4") == ResolvedModel("gpt-5.4", "medium", "flex", "gpt-5.4")
    assert r.resolve("") == ResolvedModel("gpt-5.4", "medium", "flex", "gpt-5.4")


def turn(**kw) -> Turn:
    return Turn(request={"model": "x", "input": []}, requested_model="x", **kw)


def test_apply_precedence_field_over_suffix_over_default():
    r = router(default_effort="low", default_service_tier="flex")
    t = r.apply(turn(), r.resolve("gpt-5.4"))
    assert t.request == {"model": "gpt-5.4", "input": [], "reasoning": {"effort": "low", "summary": "auto"},
                         "service_tier": "flex"}
    t = r.apply(turn(), r.resolve("gpt-5.4-high-fast"))
    assert t.request["reasoning"]["effort"] == "high" and t.request["service_tier"] == "priority"
    t = r.apply(turn(reasoning_effort="minimal", service_tier="priority"), r.resolve("gpt-5.4-high-flex"))
    assert t.request["reasoning"]["effort"] == "minimal" and t.request["service_tier"] == "priority"
    t = r.apply(turn(service_tier="default"), r.resolve("gpt-5.4"))
    assert "service_tier" not in t.request


def test_apply_without_effort_adds_no_reasoning_and_keeps_client_summary():
    r = router()
    assert "reasoning" not in r.apply(turn(), r.resolve("gpt-5.4")).request
    t = turn(reasoning_effort="high")
    t.request["reasoning"] = {"summary": "concise", "context": "all_turns"}
    r.apply(t, r.resolve("gpt-5.4"))
    assert t.request["reasoning"] == {"summary": "concise", "context": "all_turns", "effort": "high"}


@pytest.mark.parametrize("asked,sent", [("none", "low"), ("minimal", "low"), ("medium", "high"), ("xhigh", "high"),
                                        ("high", "high")])
def test_effort_fitted_to_supported_levels(asked, sent):
    r = router(custom_models=[{"id": "local-rich", "supported_reasoning_efforts": ["low", "high"]}])
    assert r.apply(turn(reasoning_effort=asked), r.resolve("local-rich")).request["reasoning"]["effort"] == sent
    # unknown support: sent as asked
    assert r.apply(turn(reasoning_effort=asked), r.resolve("gpt-5.4")).request["reasoning"]["effort"] == asked

NAME_PARTS = st.sampled_from(["gpt-5.4", "codex", "sonnet", "opus", "a", "b", "-high", "-fast", "-flex", "-none",
                              "-xhigh", "-", "x"])


@settings(max_examples=300, deadline=None)
@given(st.lists(NAME_PARTS, max_size=5).map("".join) | st.text(max_size=12))
def test_resolve_is_total(name):
    r = router(aliases={"codex": "gpt-5.4", "sonnet": "gpt-5.5", "opus": "sonnet-xhigh", "a": "b", "b": "a"})
    try:
        resolved = r.resolve(name)
    except GatewayError as err:
        assert err.status == 404 and err.param == "model"
        resolved = r.resolve(name, fallback_to_default=True) if err.code == "model_not_found" else None
    if resolved is not None:
        assert resolved.model_id in CATALOG
        assert resolved.display_name.startswith(resolved.model_id)


def test_catalog_efforts_fit_requested_effort():
    levels = {"gpt-5-codex-mini": ["medium", "high"]}
    r = router(efforts_for=levels.get)
    assert r.apply(turn(reasoning_effort="low"), r.resolve("gpt-5-codex-mini")).request["reasoning"]["effort"] == \
        "medium"
    assert r.apply(turn(), r.resolve("gpt-5-codex-mini-xhigh")).request["reasoning"]["effort"] == "high"
    assert r.apply(turn(reasoning_effort="none"), r.resolve("gpt-5.4")).request["reasoning"]["effort"] == "none"
