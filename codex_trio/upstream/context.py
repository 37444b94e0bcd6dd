"""The per-account, per-conversation and per-turn values that the real client puts into headers and bodies.

Kept apart from the builders so callers (the account pool, the dispatcher, tests replaying a capture) can
create them from their own state and inject exact values.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class AccountAuth:
    access_token: str
    account_id: str  # tokens.account_id == the JWT's chatgpt_account_id


@dataclass(frozen=True, slots=True)
class ModelTraits:
    """What the model catalog says about a model that changes the request shape."""

    responses_lite: bool = False  # header x-openai-internal-codex-responses-lite + WS metadata flag
    node_repl_auto_review_required: bool = False  # echoed in x-codex-turn-metadata
    parallel_tool_calls: bool = True  # the body's default when the caller did not decide

    @classmethod
    def from_catalog(cls, entry: dict[str, Any]) -> "ModelTraits":
        """From one `/codex/models` entry. Code-mode models get one `exec` tool, so codex sends
        parallel_tool_calls:false for them even when the catalog says they support parallel calls."""
        code_mode = entry.get("tool_mode") == "code_mode_only"
        return cls(
            responses_lite=entry.get("use_responses_lite") is True,
            node_repl_auto_review_required=entry.get("node_repl_auto_review_required") is True,
            parallel_tool_calls=entry.get("supports_parallel_tool_calls") is True and not code_mode,
        )


@dataclass(frozen=True, slots=True)
class ThreadContext:
    """One conversation on one account, as codex sees a thread.

    `thread_id` is the UUIDv7 that codex sends as session-id, thread-id, x-client-request-id and
    prompt_cache_key. `installation_id` is per account (the real client keeps one per install), and
    `context_window_id` is a second UUIDv7 created with the thread.
    """

    installation_id: str
    thread_id: str
    context_window_id: str
    window_number: int = 0
    thread_source: str | None = None  # "user" (default from config) or "thread_title", ...
    sandbox_mode: str | None = None  # overrides the profile's

    @property
    def window_id(self) -> str:
        return f"{self.thread_id}:{self.window_number}"

    @classmethod
    def new(cls, installation_id: str, *, now_ms: int | None = None) -> "ThreadContext":
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        return cls(installation_id, uuid7(now_ms), uuid7(now_ms))


@dataclass(frozen=True, slots=True)
class TurnContext:
    """One user turn. Tool follow-ups of the same turn keep its id and start time."""

    turn_id: str
    started_at_unix_ms: int
    root_turn_id: str | None = None  # = turn_id for top-level turns

    @property
    def root(self) -> str:
        return self.root_turn_id or self.turn_id

    @classmethod
    def new(cls, *, now_ms: int | None = None) -> "TurnContext":
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        return cls(uuid7(now_ms), now_ms)


def uuid7(unix_ms: int) -> str:
    """A UUIDv7 (RFC 9562) for `unix_ms`: what codex uses for thread, turn and window ids."""
    rand = int.from_bytes(os.urandom(10), "big")
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))
