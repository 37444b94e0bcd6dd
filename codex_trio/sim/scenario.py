"""Scenario rules: what the simulated backend answers to which request.

A rule has a `match` (model, a substring or regex of the last user text, a substring of a tool output
sent since that user message, the account) and a `reply` (the behaviour). Rules are tried in order; the first one that matches and has
uses left wins (`times` limits how often a rule fires). With no matching rule the backend answers with its
deterministic default (an echo of the last user message).

YAML file:

    rules:
      - match: {user_text: "weather"}
        reply:
          reasoning: "Looking up the weather tool"
          function_calls:
            - {name: get_weather, arguments: {city: Paris}}
            - {name: get_time, arguments: {tz: CET}}
      - match: {tool_output: "21"}
        reply: {text: "It is 21 degrees.", pacing_ms: 20}
      - match: {model: gpt-5.5}
        times: 1
        reply: {http_status: 503}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from ruamel.yaml import YAML


DEMO_SCENARIO = Path(__file__).with_name("scenarios") / "demo.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Match(_Strict):
    model: str | list[str] | None = None
    user_text: str | None = None  # substring of the last user message
    user_regex: str | None = None
    tool_output: str | None = None  # substring of a tool output given after the last user message
    account_id: str | None = None


class FunctionCall(_Strict):
    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    namespace: str | None = None


class CustomToolCall(_Strict):
    name: str
    input: str


class ImageSpec(_Strict):
    format: Literal["png", "jpeg", "webp"] | None = None  # default: the request's image_generation tool, else png
    size: str | None = None  # "WxH"; default: the tool's size, else 64x64
    prompt: str | None = None
    partial_images: int | None = None


class WebSearch(_Strict):
    query: str
    text: str | None = None  # answer text after the search (default: a sentence citing a result)


class Failure(_Strict):
    code: str = "server_error"
    message: str = "An error occurred while processing your request."


class RateLimit(_Strict):
    resets_in_seconds: int = 3600


class Reply(_Strict):
    text: str | None = None
    text_length: int | None = None  # generate this many characters of text
    chunk_size: int = 4  # characters per output_text delta
    pacing_ms: float = 0  # delay between events
    first_byte_delay_ms: float = 0  # delay before the response head
    idle_gap_ms: float = 0  # one silent gap mid-stream...
    idle_gap_after: int = 2  # ...after this many events
    reasoning: str | None = None  # reasoning summary (the item carries encrypted_content)
    function_calls: list[FunctionCall] = Field(default_factory=list)
    custom_tool_calls: list[CustomToolCall] = Field(default_factory=list)
    image: ImageSpec | None = None
    web_search: WebSearch | None = None
    structured: bool | None = None  # None: structured output whenever the request has a json_schema format
    fail: Failure | None = None  # response.failed
    error_event: Failure | None = None  # an `error` event (terminal)
    incomplete: str | None = None  # response.incomplete with this reason
    disconnect_after: int | None = None  # drop the connection after this many events
    http_status: int | None = None  # answer with this status (5xx: {"error":{"code":"server_error"}})
    rate_limit: RateLimit | None = None  # 429 usage_limit_reached with reset information
    ban: bool = False  # 403 account_deactivated (and the account stays banned)
    cloudflare_404: bool = False  # empty-body 404
    cloudflare_challenge: bool = False  # 403 "Just a moment..." HTML page with cf-mitigated: challenge
    set_cookies: bool = False  # Set-Cookie: __cf_bm and cf_clearance


class Rule(_Strict):
    match: Match = Field(default_factory=Match)
    reply: Reply = Field(default_factory=Reply)
    times: int | None = None  # None: unlimited


class Scenario(_Strict):
    rules: list[Rule] = Field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path) -> "Scenario":
        data = YAML(typ="safe").load(Path(path).read_text(encoding="utf-8")) or {}
        return cls.model_validate(data)


class TurnFacts(BaseModel):
    """What rules can match on, extracted once per request."""

    model: str
    user_text: str
    tool_outputs: list[str]
    account_id: str


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def facts_of(body: dict, items: list, account_id: str) -> TurnFacts:
    user_text = ""
    outputs = []
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "message" and item.get("role") == "user":
            user_text = _text_of(item.get("content"))
            outputs = []  # only the tool outputs that answer calls made after the last user message count
        elif kind.endswith("_call_output"):
            outputs.append(_text_of(item.get("output")))
    return TurnFacts(model=str(body.get("model", "")), user_text=user_text, tool_outputs=outputs,
                     account_id=account_id)


def matches(rule: Rule, facts: TurnFacts) -> bool:
    m = rule.match
    if m.model is not None and facts.model not in ([m.model] if isinstance(m.model, str) else m.model):
        return False
    if m.user_text is not None and m.user_text not in facts.user_text:
        return False
    if m.user_regex is not None and re.search(m.user_regex, facts.user_text) is None:
        return False
    if m.tool_output is not None and not any(m.tool_output in out for out in facts.tool_outputs):
        return False
    return m.account_id is None or m.account_id == facts.account_id


class RuleBook:
    """The live rule list: rules added at run time go first, so a test's rule beats the scenario file's."""

    def __init__(self, scenario: Scenario | None = None) -> None:
        self._rules: list[list[Any]] = [[r, r.times] for r in (scenario.rules if scenario else [])]

    def add(self, rule: Rule) -> None:
        self._rules.insert(0, [rule, rule.times])

    def clear(self) -> None:
        self._rules.clear()

    def pick(self, facts: TurnFacts) -> Reply | None:
        for entry in self._rules:
            rule, left = entry
            if left is not None and left <= 0:
                continue
            if matches(rule, facts):
                if left is not None:
                    entry[1] = left - 1
                return rule.reply
        return None
