"""Several instances on one PostgreSQL: the response-id → account map, shared, so a turn chained with
`previous_response_id` that lands on another instance continues on the owning account by replaying the history.

The backend keeps a response only on the WebSocket that produced it, so another instance cannot chain on it. What it
can do is what a stateless client does: send the whole conversation. Each completed Responses turn is one link in
`response_chains`: its response id, the account and conversation key that served it, the id it chained on, and the
items it added (the client's new input, then the output items). A chained turn whose id this instance does not know
walks the links back to the start (one recursive query), sends the items of the whole chain plus its own input,
unchained, and prefers the owning account and its conversation key (the pool's conversation affinity).

Off the request path: a completed turn appends its link to a list (no I/O); `run` writes the list every
`FLUSH_SECONDS` in one statement that needs neither the account store's write lock nor a NOTIFY (each row is
inserted once, by the instance that served it). A lookup that finds nothing waits up to `LOOKUP_WAIT_SECONDS` for
the owner's next flush before the turn is refused as before (`previous_response_not_found`). Links older than
`auth.affinity_ttl_minutes` are pruned: after that the owner's socket is gone too. Only Responses turns are linked
(the only protocol whose clients chain), and none that adds more than `MAX_LINK_BYTES` (a stateless client's whole
history each turn would otherwise fill the table); SQLite stores (one process) link nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import orjson
import trio

from .errors import StoreUnavailable

if TYPE_CHECKING:
    from ..accounts.pool import AccountPool
    from ..turn import Turn

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.2
LOOKUP_WAIT_SECONDS = 1.0
LOOKUP_POLL_SECONDS = 0.1
MAX_PENDING = 10_000  # links kept while the store is away; beyond that the oldest are dropped and counted
MAX_CHAIN = 10_000
MAX_LINK_BYTES = 1 << 20  # a turn adding more than this (encoded) is not linked: its chain cannot be replayed
RESPONSES_TURN = "client_metadata"  # Turn.options key the Responses adapter always sets (protocols/responses.py)

MIGRATION = [
    """CREATE TABLE response_chains (
        response_id TEXT PRIMARY KEY,
        previous_response_id TEXT,
        account_id TEXT NOT NULL,
        conversation_key TEXT NOT NULL,
        items TEXT NOT NULL,
        created_at REAL NOT NULL
    )""",
    "CREATE INDEX response_chains_created ON response_chains (created_at)",
]

_INSERT = ("INSERT INTO response_chains (response_id, previous_response_id, account_id, conversation_key, items, "
           "created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (response_id) DO NOTHING")
_CHAIN = """WITH RECURSIVE chain (response_id, previous_response_id, account_id, conversation_key, items, depth) AS (
        SELECT response_id, previous_response_id, account_id, conversation_key, items, 0
        FROM response_chains WHERE response_id = ?
        UNION ALL
        SELECT r.response_id, r.previous_response_id, r.account_id, r.conversation_key, r.items, c.depth + 1
        FROM response_chains r JOIN chain c ON r.response_id = c.previous_response_id WHERE c.depth < ?)
    SELECT previous_response_id, account_id, conversation_key, items FROM chain ORDER BY depth DESC"""


@dataclass
class ChainLink:
    """What one turn adds to its chain; filled while it streams, queued when it completes."""

    previous_response_id: str | None
    input: list[Any]
    outputs: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Replay:
    account_id: str  # the owner of the last response
    conversation_key: str
    items: list[Any]  # the whole chain's items, oldest first


class ResponseChains:
    def __init__(self, engine: Any, *, clock: Callable[[], float], ttl_seconds: Callable[[], float]) -> None:
        self._engine = engine
        self._clock = clock
        self._ttl_seconds = ttl_seconds
        self._pending: list[tuple[Any, ...]] = []
        self._limiter = trio.CapacityLimiter(1)
        self.dropped = 0
        self.oversized = 0

    # ---- the dispatcher's hook (dispatch/dispatcher.py) ---------------------------------------------------

    async def begin(self, turn: "Turn", pool: "AccountPool", *, known_here: bool) -> tuple[ChainLink | None, str | None]:
        """Called as a turn opens: its link (None for turns of other protocols), and the owner's conversation key
        when the turn continues a chain served elsewhere (its request is then the replayed history)."""
        if RESPONSES_TURN not in turn.options:
            return None, None
        request = turn.request
        previous = request.get("previous_response_id")
        link = ChainLink(previous, list(request.get("input") or []))
        if not previous or known_here:
            return link, None
        replay = await self.find(previous)
        if replay is None:
            return link, None  # unknown everywhere: refused as before (previous_response_not_found)
        turn.request = {k: v for k, v in request.items() if k != "previous_response_id"}
        turn.request["input"] = [*replay.items, *link.input]
        pool.prefer(replay.conversation_key, replay.account_id)
        return link, replay.conversation_key

    def completed(self, link: ChainLink, response_id: str, account_id: str, conversation_key: str) -> None:
        """A linked turn completed: queue its row (written by `run`)."""
        self._pending.append((response_id, link.previous_response_id, account_id, conversation_key,
                              [*link.input, *link.outputs], self._clock()))
        if len(self._pending) > MAX_PENDING:
            del self._pending[0]
            self.dropped += 1

    # ---- the store side ----------------------------------------------------------------------------------

    async def find(self, response_id: str) -> Replay | None:
        """The chain ending at `response_id`, waiting briefly for its owner's flush; None when it stays unknown
        (or the chain is broken: a link pruned, the store away)."""
        with trio.move_on_after(LOOKUP_WAIT_SECONDS):
            while True:
                try:
                    replay = await trio.to_thread.run_sync(self._read_chain, response_id, limiter=self._limiter)
                except StoreUnavailable:
                    return None
                if replay is not None:
                    return replay
                await trio.sleep(LOOKUP_POLL_SECONDS)
        return None

    def _read_chain(self, response_id: str) -> Replay | None:
        rows = self._engine.read(lambda conn: conn.execute(_CHAIN, (response_id, MAX_CHAIN)).fetchall())
        if not rows or rows[0]["previous_response_id"] is not None:
            return None  # not written yet, or its start is gone
        items: list[Any] = []
        for row in rows:
            items += orjson.loads(row["items"])
        last = rows[-1]
        return Replay(last["account_id"], last["conversation_key"], items)

    async def flush(self) -> int:
        rows, self._pending = self._pending, []
        if not rows:
            return 0
        try:
            await trio.to_thread.run_sync(self._write, rows, limiter=self._limiter)
        except StoreUnavailable:
            self._pending[:0] = rows  # kept for the next flush (bounded by `completed`)
            return 0
        return len(rows)

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        encoded = []
        for row in rows:
            items = orjson.dumps(row[4]).decode()
            if len(items) > MAX_LINK_BYTES:
                self.oversized += 1
                continue
            encoded.append((*row[:4], items, row[5]))
        cutoff = self._clock() - self._ttl_seconds()

        def work(conn: Any) -> None:
            conn.executemany(_INSERT, encoded)
            conn.execute("DELETE FROM response_chains WHERE created_at < ?", (cutoff,))

        self._engine.append(work)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while True:
                await trio.sleep(FLUSH_SECONDS)
                await self.flush()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await self.flush()


async def run_response_chains(gateway: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Background job (after the dispatcher's): on a PostgreSQL store, share the response chains between the
    instances. On SQLite (one process) the dispatcher keeps its own map only."""
    services = gateway.services
    store, dispatcher = services.store, services.dispatcher
    if store is None or dispatcher is None or store.engine.dialect != "postgresql":
        task_status.started()
        return
    chains = ResponseChains(store.engine, clock=services.connector.clock,
                            ttl_seconds=lambda: gateway.config.settings.auth.affinity_ttl_minutes * 60.0)
    dispatcher.shared_chains = chains
    try:
        await chains.run(task_status=task_status)
    finally:
        dispatcher.shared_chains = None
