"""Conversation identity and the upstream state kept per (account, conversation, variant).

A conversation keeps its thread ids (session-id, prompt_cache_key) and its WebSocket, so consecutive turns
chain on the backend (prompt cache, `previous_response_id`). A variant (instructions + tools) gets its own
socket because the backend's chain assumes them unchanged.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson
import trio

from ..turn import Turn
from ..upstream.context import AccountAuth, ThreadContext
from ..upstream.transport import ConversationTransport

MAX_CONVERSATIONS = 2048


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _first_user_text(items: list[Any]) -> str:
    for item in items:
        if not isinstance(item, dict) or item.get("role") != "user":
            continue
        content = item.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def conversation_key(turn: Turn) -> str:
    """The client's own conversation id when it sent one; otherwise derived from what stays constant across
    a stateless client's turns (model, instructions, first user message), so resent histories land on the
    same thread."""
    if turn.conversation_id:
        return "c:" + _digest(turn.conversation_id)
    request = turn.request
    instructions = request.get("instructions") if isinstance(request.get("instructions"), str) else ""
    return "d:" + _digest(str(request.get("model")), instructions[:2000], _first_user_text(request.get("input") or []))


def variant_key(request: dict[str, Any]) -> str:
    instructions = request.get("instructions") if isinstance(request.get("instructions"), str) else ""
    return _digest(instructions, orjson.dumps(request.get("tools") or [], option=orjson.OPT_SORT_KEYS).decode())


@dataclass
class Conversation:
    thread: ThreadContext
    transport: ConversationTransport
    # One turn at a time per socket. A semaphore, not a Lock: the turn is opened in the request's task but
    # finished in the stream's producer task, and trio Locks belong to the task that acquired them.
    busy: trio.Semaphore = field(default_factory=lambda: trio.Semaphore(1))
    last_used: float = field(default_factory=time.monotonic)

    async def use_auth(self, auth: AccountAuth) -> None:
        """The WebSocket is authenticated at its handshake: new tokens need a new socket."""
        if self.transport.auth != auth:
            await self.transport.close()
            self.transport.auth = auth


class ConversationRegistry:
    def __init__(self, limit: int = MAX_CONVERSATIONS) -> None:
        self._limit = limit
        self._items: OrderedDict[tuple[str, str, str], Conversation] = OrderedDict()
        self._retired: list[Conversation] = []

    def get(self, key: tuple[str, str, str], create: Callable[[], Conversation]) -> Conversation:
        conversation = self._items.get(key)
        if conversation is None:
            conversation = self._items[key] = create()
            while len(self._items) > self._limit:
                _, oldest = self._items.popitem(last=False)
                self._retired.append(oldest)
        self._items.move_to_end(key)
        conversation.last_used = time.monotonic()
        return conversation

    def forget_account(self, account_id: str) -> None:
        for key in [k for k in self._items if k[0] == account_id]:
            self._retired.append(self._items.pop(key))

    async def close_retired(self) -> None:
        retired, self._retired = self._retired, []
        for conversation in retired:
            if conversation.busy.value:
                await conversation.transport.close()

    async def close_idle(self, max_idle: float) -> None:
        now = time.monotonic()
        for key in [k for k, c in self._items.items() if now - c.last_used > max_idle and c.busy.value]:
            self._retired.append(self._items.pop(key))
        await self.close_retired()

    async def close_all(self) -> None:
        self._retired.extend(self._items.values())
        self._items.clear()
        await self.close_retired()
