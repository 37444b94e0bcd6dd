"""The pure parts: schema instances, quota windows, catalog, token issuer, scenario loading."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from codex_trio.sim.catalog import Catalog
from codex_trio.sim.quota import Quota
from codex_trio.sim.scenario import Rule, RuleBook, Scenario, TurnFacts, facts_of
from codex_trio.sim.schema_instance import instance
from codex_trio.sim.tokens import Identity, TokenIssuer, decode_jwt_claims


def test_schema_instances() -> None:
    assert instance({"type": "string", "enum": ["x", "y"]}) == "x"
    assert instance({"const": 3}) == 3
    assert instance({"type": "integer", "minimum": 5, "multipleOf": 4}) == 8
    assert instance({"type": "number", "exclusiveMinimum": 0, "maximum": 0.5}) == 0.5
    assert instance({"type": "array", "items": {"type": "boolean"}, "minItems": 3}) == [True, True, True]
    assert instance({"anyOf": [{"type": "null"}, {"type": "string"}]}) is None
    assert instance({"type": "string", "format": "email"}) == "user@example.com"
    assert len(instance({"type": "string", "maxLength": 3})) == 3
    nested = {"type": "object", "properties": {"a": {"$ref": "#/definitions/b"}},
              "definitions": {"b": {"type": "object", "properties": {"c": {"type": "integer"}}}}}
    assert instance(nested) == {"a": {"c": 1}}
    merged = {"allOf": [{"properties": {"x": {"type": "integer"}}}, {"properties": {"y": {"type": "boolean"}}}]}
    assert instance(merged) == {"x": 1, "y": True}
    recursive = {"$ref": "#"}
    assert instance(recursive) is None


def test_quota_windows_roll_on_their_own_clocks() -> None:
    quota = Quota.for_plan("plus")
    quota.record("gpt-5.5", 100_000, now=1000.0)
    assert quota.buckets["codex"].primary.used_percent(1000.0) == 10.0
    assert quota.buckets["codex"].secondary.used_percent(1000.0) == 2.0
    assert quota.buckets["codex_bengalfox"].primary.used == 0
    quota.record("gpt-6-luna", 100_000, now=2000.0)
    assert quota.buckets["codex_bengalfox"].primary.used == 100_000
    assert quota.buckets["codex"].primary.reset_at(2000.0) == 1000 + 18000
    assert quota.buckets["codex"].primary.used_percent(1000.0 + 18000) == 0.0
    assert quota.buckets["codex"].secondary.used_percent(1000.0 + 18000) == 4.0
    quota.exhaust(now=30000.0)
    blocked = quota.blocked("gpt-5.5", 30000.0)
    assert blocked is not None and blocked[1] is quota.buckets["codex"].primary
    headers = dict(quota.headers(30000.0))
    assert headers["x-codex-primary-used-percent"] == "100.0"
    assert headers["x-codex-bengalfox-limit-name"] == "GPT-6-Luna"
    assert quota.blocked("gpt-5.5", 30000.0 + 18000) is None


def test_plans_have_bigger_budgets_as_they_go_up() -> None:
    assert Quota.for_plan("free").buckets["codex"].primary.limit < Quota.for_plan("plus").buckets["codex"].primary.limit
    assert Quota.for_plan("plus").buckets["codex"].primary.limit < Quota.for_plan("pro").buckets["codex"].primary.limit


def test_catalog_etag_changes_with_the_plan() -> None:
    catalog = Catalog()
    plus_body, plus_etag = catalog.for_plan("plus", "0.169.0")
    pro_body, pro_etag = catalog.for_plan("pro", "0.169.0")
    assert plus_etag != pro_etag and catalog.for_plan("plus", "0.169.0")[1] == plus_etag
    assert catalog.allowed("gpt-6-astra", "pro") and not catalog.allowed("gpt-6-astra", "plus")
    assert not catalog.knows("gpt-4o")


def test_token_issuer_single_use_refresh_and_expiry() -> None:
    issuer = TokenIssuer(ttl_seconds=60)
    tokens = issuer.issue(Identity("acct", "user-1", "a@example.com", "team"), now=100.0)
    assert issuer.check_access(tokens.access_token, 159.0) == ("acct", None)
    assert issuer.check_access(tokens.access_token, 160.0) == (None, "token_expired")
    assert issuer.check_access("x.y.z", 100.0) == (None, "token_invalid")
    assert issuer.use_refresh(tokens.refresh_token) == ("acct", None)
    assert issuer.use_refresh(tokens.refresh_token) == (None, "refresh_token_reused")
    assert issuer.use_refresh("oaistb_rt_never") == (None, "invalid_grant")
    claims = decode_jwt_claims(tokens.access_token)
    assert claims["https://api.openai.com/auth"]["chatgpt_plan_type"] == "team"
    assert claims["exp"] == 160


def test_rulebook_order_and_times() -> None:
    book = RuleBook(Scenario.model_validate({"rules": [{"reply": {"text": "file"}}]}))
    facts = TurnFacts(model="gpt-5.5", user_text="hello", tool_outputs=[], account_id="a")
    assert book.pick(facts).text == "file"
    book.add(Rule.model_validate({"match": {"user_text": "hell"}, "times": 1, "reply": {"text": "runtime"}}))
    assert book.pick(facts).text == "runtime"
    assert book.pick(facts).text == "file"
    book.add(Rule.model_validate({"match": {"model": ["gpt-6-luna"]}, "reply": {"text": "luna"}}))
    assert book.pick(facts).text == "file"


def test_scenario_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        Rule.model_validate({"reply": {"txet": "typo"}})


def test_facts_count_only_tool_outputs_after_the_last_user_message() -> None:
    items = [{"type": "message", "role": "user", "content": "first"},
             {"type": "function_call_output", "call_id": "a", "output": "old"},
             {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "second"}]},
             {"type": "custom_tool_call_output", "call_id": "b",
              "output": [{"type": "input_text", "text": "new"}]}]
    facts = facts_of({"model": "m"}, items, "acct")
    assert facts.user_text == "second" and facts.tool_outputs == ["new"]
