"""Sans-IO state of one Responses WebSocket: what the server already holds, and what to send next.

codex chains requests on a socket with `previous_response_id`: after a response completes, the server
holds that response's input and output, so the next `response.create` on the same socket only carries the
items after them (spec/chatgpt-mode.md §5: the prewarm, then the turn with the rest of the input, then a
tool follow-up with only the tool output). The gateway receives full histories from stateless clients, so
this machine decides per request whether the history still extends the chain (then: send the tail plus
`previous_response_id`) or not (then: send everything, unchained). It also owns the socket's lifetime
rules: one request at a time, an age cap below the server's 60-minute limit, and ping / idle deadlines.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from codex_trio.upstream.events import CodexEvent

MAX_AGE_SECONDS = 55 * 60  # the backend closes sockets at 60 minutes
PING_INTERVAL_SECONDS = 25.0
DEAD_AFTER_SECONDS = 62.5  # no frame and no pong for this long: the socket is gone
_CHAIN_IRRELEVANT = ("type", "input", "previous_response_id", "client_metadata", "generate")


@dataclass(frozen=True, slots=True)
class Plan:
    input: list[dict[str, Any]]
    previous_response_id: str | None
    # What `WsChain.sent` needs of the request, worked out once by `WsChain.plan` (None: `sent` works it out): the
    # request's `properties_key` and the `held_key` of each item of its full input.
    properties: bytes | None = None
    keys: list[bytes | None] | None = None

    @property
    def chained(self) -> bool:
        return self.previous_response_id is not None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def item_key(item: Any) -> tuple[Any, ...] | None:
    """What identifies an item across the server's output and a client's replay of it; None for items that
    the comparison skips (reasoning: stateless clients often drop it, the server holds it anyway)."""
    if not isinstance(item, dict):
        return ("?", orjson.dumps(item))
    kind = item.get("type") or ("message" if "role" in item else None)
    if kind == "reasoning":
        return None
    if kind == "message":
        return ("message", item.get("role"), _text_of(item.get("content")))
    if isinstance(kind, str) and kind.endswith("_call_output"):
        output = item.get("output")
        return (kind, item.get("call_id"), output if isinstance(output, str) else orjson.dumps(output))
    if isinstance(kind, str) and kind.endswith("_call") and item.get("call_id"):
        return (kind, item.get("call_id"))
    return (kind, orjson.dumps(item))


def held_key(item: Any) -> bytes | None:
    """`item_key` as a 16-byte digest: what a kept socket remembers of each item the server holds, so that an idle
    socket does not keep a copy of its conversation's text (the history is compared again when the next request
    arrives, and equal keys give equal digests)."""
    key = item_key(item)
    return None if key is None else hashlib.blake2b(repr(key).encode(), digest_size=16).digest()


def properties_key(body: dict[str, Any]) -> bytes:
    """Everything of a request except input and metadata, as a 16-byte digest (a kept socket holds it between
    turns; instructions and tools are kilobytes): a chain continues only while this is unchanged."""
    dumped = orjson.dumps({k: v for k, v in body.items() if k not in _CHAIN_IRRELEVANT})
    return hashlib.blake2b(dumped, digest_size=16).digest()


@dataclass
class WsChain:
    opened_at: float
    last_activity: float = 0.0
    last_ping: float = 0.0
    response_id: str | None = None  # the last completed response on this socket
    busy: bool = False
    closed: bool = False
    _held: list[bytes] = field(default_factory=list)  # `held_key`s of the items the server holds for response_id
    _properties: bytes | None = None
    # During an exchange: the `held_key`s of the request's full input and of the answer's items so far.
    _pending_keys: list[bytes | None] = field(default_factory=list)
    _pending_properties: bytes | None = None
    _outputs: list[bytes | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.last_activity = self.last_ping = self.opened_at

    # -- decisions -----------------------------------------------------------------------------------------

    def usable(self, now: float) -> bool:
        return (not self.closed and not self.busy and now - self.opened_at < MAX_AGE_SECONDS
                and now - self.last_activity < DEAD_AFTER_SECONDS)

    def ping_due(self, now: float) -> bool:
        return not self.closed and now - max(self.last_activity, self.last_ping) >= PING_INTERVAL_SECONDS

    def plan(self, body: dict[str, Any], full_input: list[dict[str, Any]]) -> Plan:
        """What to send for a request whose complete history is `full_input`. The digests it compares are those
        `sent` keeps for the next request, so the plan carries them along (each item is hashed once per turn)."""
        properties = properties_key(body)
        keys = [held_key(item) for item in full_input]
        if self.response_id is None or properties != self._properties:
            return Plan(list(full_input), None, properties, keys)
        tail_start = self._extends_chain(keys)
        if tail_start is None:
            return Plan(list(full_input), None, properties, keys)
        return Plan(list(full_input[tail_start:]), self.response_id, properties, keys)

    def _extends_chain(self, keys: list[bytes | None]) -> int | None:
        """Index of the first item after the held prefix, or None when the history (its items' `held_key`s)
        diverged."""
        held = iter(self._held)
        expected = next(held, None)
        position = 0
        for position, key in enumerate(keys):
            if expected is None:
                return position
            if key is None:
                continue
            if key != expected:
                return None
            expected = next(held, None)
        return len(keys) if expected is None else None

    # -- events --------------------------------------------------------------------------------------------

    def sent(self, body: dict[str, Any], full_input: list[dict[str, Any]], now: float,
             plan: Plan | None = None) -> None:
        """A request went out; `plan` is what `plan` answered for it (its digests are reused)."""
        self.busy = True
        self.last_activity = now
        known = plan is not None and plan.properties is not None and plan.keys is not None
        self._pending_properties = plan.properties if known else properties_key(body)
        self._pending_keys = plan.keys if known else [held_key(item) for item in full_input]
        self._outputs = []

    def received(self, event: CodexEvent, now: float) -> None:
        self.last_activity = now
        if event.type == "response.output_item.done" and isinstance(event.data.get("item"), dict):
            self._outputs.append(held_key(event.data["item"]))
        elif event.type == "response.completed":
            response = event.data.get("response") if isinstance(event.data.get("response"), dict) else {}
            self.busy = False
            self.response_id = response.get("id") if isinstance(response.get("id"), str) else None
            if self.response_id is None:
                self.forget()
                self._end_exchange()
                return
            held = [k for k in (*self._pending_keys, *self._outputs) if k is not None]
            self._held, self._properties = held, self._pending_properties
            self._end_exchange()
        elif event.type in ("response.failed", "response.incomplete", "error"):
            # A failed or truncated response is not a safe base to chain on.
            self.busy = False
            self.forget()
            self._end_exchange()

    def _end_exchange(self) -> None:
        """The digests of the request's history and of the answer are only needed to compute `_held`."""
        self._pending_keys, self._outputs, self._pending_properties = [], [], None

    def pong(self, now: float) -> None:
        self.last_activity = now

    def pinged(self, now: float) -> None:
        self.last_ping = now

    def forget(self) -> None:
        """Drop the chain (the next request resends its full history), keep the socket."""
        self.response_id = None
        self._held, self._properties = [], None

    def close(self) -> None:
        self.closed = True
        self.busy = False
        self.forget()
