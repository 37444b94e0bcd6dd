"""Conversation identity and the upstream state kept per (account, conversation, variant).

A conversation keeps its thread ids (session-id, prompt_cache_key) and its WebSocket, so consecutive turns
chain on the backend (prompt cache, `previous_response_id`). A variant (instructions + tools) gets its own
socket because the backend's chain assumes them unchanged.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson
import trio

from ..turn import Turn
from ..upstream.context import AccountAuth, ThreadContext
from ..upstream.transport import ConversationTransport

log = logging.getLogger(__name__)

MAX_CONVERSATIONS = 2048
CLOSE_HANDSHAKE_SECONDS = 1.0
# After a 426 the real client uses SSE for the rest of its session; here an account's new conversations go straight
# to SSE for this long, instead of each paying the refused upgrade again.
WEBSOCKET_REFUSED_SECONDS = 3600.0


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


def continues_conversation(key: str, request: dict[str, Any]) -> bool:
    """Whether a turn carries on a conversation already under way: it names the client's own conversation id,
    a previous response, or has history beyond the opening messages (an answer, a tool call or output). Only such
    a turn waits for its conversation's busy socket; identical first messages from different clients are
    different conversations that merely derive the same key."""
    if key.startswith("c:") or request.get("previous_response_id"):
        return True
    return any(not isinstance(item, dict) or item.get("role") not in ("user", "system", "developer")
               for item in request.get("input") or [])


def variant_key(request: dict[str, Any]) -> str:
    instructions = request.get("instructions") if isinstance(request.get("instructions"), str) else ""
    return _digest(instructions, orjson.dumps(request.get("tools") or [], option=orjson.OPT_SORT_KEYS).decode())


@dataclass
class Conversation:
    thread: ThreadContext
    transport: ConversationTransport
    # One turn at a time per socket. A trio Lock belongs to the task that acquired it: the turn pump opens and
    # closes its turn in one task (dispatch/pump.py), and a release from any other task would raise.
    busy: trio.Lock = field(default_factory=trio.Lock)
    last_used: float = field(default_factory=time.monotonic)
    offered_websocket: bool = field(init=False)  # whether it started out trying the WebSocket

    def __post_init__(self) -> None:
        self.offered_websocket = self.transport.websocket_allowed

    async def claim(self, wait: float) -> bool:
        """Take the socket for a turn: at once if free, else within `wait` seconds (0: not at all)."""
        try:
            self.busy.acquire_nowait()
            return True
        except trio.WouldBlock:
            if wait <= 0:
                return False
        with trio.move_on_after(wait):
            await self.busy.acquire()
            return True
        return False

    async def use_auth(self, auth: AccountAuth) -> None:
        """The WebSocket is authenticated at its handshake: new tokens need a new socket."""
        if self.transport.auth != auth:
            await self.transport.close()
            self.transport.auth = auth


async def _close_quietly(conversation: Conversation) -> None:
    """Close a retired conversation's socket: a close handshake if the backend answers it at once, else the
    connection is dropped (cancelling the close aborts the native call), so its descriptors come back now."""
    try:
        with trio.move_on_after(CLOSE_HANDSHAKE_SECONDS):
            await conversation.transport.close()
    except Exception as exc:  # noqa: BLE001 - a socket that fails to close is closed enough
        log.debug("closing an upstream socket failed: %s", exc)


class ConversationRegistry:
    """The conversations whose upstream state is kept, least recently used first.

    Their sockets cost file descriptors, so `limit` comes from the descriptor budget
    (`server/descriptors.py`): past it, the least recently used conversation is retired. Retired sockets are
    closed by `run_closer` as soon as no turn uses them (a busy one after its turn)."""

    def __init__(self, limit: int = MAX_CONVERSATIONS) -> None:
        self.limit = limit
        self._items: OrderedDict[tuple[str, str, str], Conversation] = OrderedDict()
        self._retired: list[Conversation] = []
        self._retired_added = trio.Event()
        self._websocket_refused: dict[str, float] = {}  # account id -> when an upgrade was refused for good

    def websocket_allowed(self, account_id: str) -> bool:
        """Whether a new conversation of this account should try the WebSocket (no 426 within the last hour)."""
        refused = self._websocket_refused.get(account_id)
        return refused is None or time.monotonic() - refused >= WEBSOCKET_REFUSED_SECONDS

    def learn_fallback(self, account_id: str, conversation: Conversation) -> None:
        """After a turn started: a 426 it met holds for the account's other conversations too."""
        if conversation.offered_websocket and not conversation.transport.websocket_allowed:
            self._websocket_refused[account_id] = time.monotonic()

    def get(self, key: tuple[str, str, str], create: Callable[[], Conversation]) -> Conversation:
        conversation = self._items.get(key)
        if conversation is None:
            conversation = self._items[key] = create()
            while len(self._items) > self.limit:
                _, oldest = self._items.popitem(last=False)
                self._retire(oldest)
        self._items.move_to_end(key)
        conversation.last_used = time.monotonic()
        return conversation

    def _retire(self, conversation: Conversation) -> None:
        self._retired.append(conversation)
        self._retired_added.set()

    def forget_account(self, account_id: str) -> None:
        for key in [k for k in self._items if k[0] == account_id]:
            self._retire(self._items.pop(key))

    def shed(self, fraction: float = 0.5) -> int:
        """Retire the least recently used idle conversations (`fraction` of the idle ones, at least one): for
        when the process runs out of descriptors. Returns how many."""
        idle = [k for k, c in self._items.items() if not c.busy.locked() and c.transport.socket is not None]
        count = max(1, int(len(idle) * fraction)) if idle else 0
        for key in idle[:count]:
            self._retire(self._items.pop(key))
        return count

    def open_sockets(self) -> int:
        """Upstream sockets held open by kept conversations (retired ones still closing not counted)."""
        return sum(1 for c in self._items.values() if c.transport.socket is not None)

    def _take_closable(self) -> list[Conversation]:
        """The retired conversations no turn uses; busy ones stay retired until their turn is over."""
        retired, self._retired = self._retired, []
        self._retired.extend(c for c in retired if c.busy.locked())
        return [c for c in retired if not c.busy.locked()]

    async def close_retired(self) -> None:
        """Close every closable retired conversation, concurrently (thousands at shutdown must not add up)."""
        async with trio.open_nursery() as nursery:
            for conversation in self._take_closable():
                nursery.start_soon(_close_quietly, conversation)

    async def run_closer(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Background job: close retired sockets as soon as they are retired (busy ones once they are free),
        each in its own task, so one slow close never holds back the descriptors of the others."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                with trio.move_on_after(1.0 if self._retired else math.inf):
                    await self._retired_added.wait()
                self._retired_added = trio.Event()
                for conversation in self._take_closable():
                    nursery.start_soon(_close_quietly, conversation)

    async def close_idle(self, max_idle: float) -> None:
        now = time.monotonic()
        for key in [k for k, c in self._items.items() if now - c.last_used > max_idle and not c.busy.locked()]:
            self._retire(self._items.pop(key))
        await self.close_retired()

    async def close_all(self) -> None:
        for conversation in self._items.values():
            self._retire(conversation)
        self._items.clear()
        await self.close_retired()
