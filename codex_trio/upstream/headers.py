"""Request headers exactly as Codex CLI 0.169.0 and 0.171.0 send them (spec/chatgpt-mode.md §3,
spec/codex-0.171.md).

Each builder returns the headers the real client hands to its HTTP library, in that order, with lower-case
names. The library then adds its own: 0.171.0's reqwest decompression layer appends `accept-encoding`, hyper
appends `host` and `content-length`, and tungstenite writes its own handshake lines around the WebSocket
ones; `http1_wire` / `http2_wire` / `websocket_wire` add those the same way, which is what the native
transport must reproduce on the wire (and what the golden tests compare against the captures).
"""

from __future__ import annotations

from typing import Any

import orjson

from codex_trio.upstream.context import AccountAuth, ModelTraits, ThreadContext, TurnContext
from codex_trio.upstream.identity import Identity

Headers = list[tuple[str, str]]


# ---- x-codex-turn-metadata ------------------------------------------------------------------------------


def turn_metadata(identity: Identity, thread: ThreadContext, turn: TurnContext | None, *, model: str,
                  reasoning_effort: str | None, traits: ModelTraits) -> str:
    """The x-codex-turn-metadata JSON (fixed key order). `turn=None` is the prewarm / WebSocket-upgrade form,
    which has an empty turn_id and no root_turn_id, turn_trigger or start time. Internal threads (the TUI's
    title generation) carry no turn_trigger either."""
    fixed = identity.turn_metadata
    meta: dict[str, Any] = {
        "installation_id": thread.installation_id,
        "session_id": thread.thread_id,
        "thread_id": thread.thread_id,
        "agent_name": fixed.agent_name,
        "turn_id": turn.turn_id if turn else "",
        "window_id": thread.window_id,
        "window_number": thread.window_number,
        "context_window_id": thread.context_window_id,
        "request_kind": "turn" if turn else "prewarm",
        "history_initialization": fixed.history_initialization,
    }
    if turn:
        meta["root_turn_id"] = turn.root
    source = thread.thread_source or fixed.thread_source
    meta["thread_source"] = source
    if turn and source == "user":
        meta["turn_trigger"] = identity.turn_trigger
    meta["sandbox"] = fixed.sandbox
    meta["sandbox_mode"] = thread.sandbox_mode or identity.sandbox_mode
    meta["auto_review_enabled"] = fixed.auto_review_enabled
    meta["node_repl_auto_review_required"] = traits.node_repl_auto_review_required
    meta["node_repl_disabled"] = fixed.node_repl_disabled
    if turn:
        meta["turn_started_at_unix_ms"] = turn.started_at_unix_ms
    meta["analytics_enabled"] = fixed.analytics_enabled
    meta["model"] = model
    if reasoning_effort is not None:
        meta["reasoning_effort"] = reasoning_effort
    return orjson.dumps(meta).decode()


# ---- chatgpt.com backend calls --------------------------------------------------------------------------


def _bearer(auth: AccountAuth) -> Headers:
    return [("authorization", f"Bearer {auth.access_token}"), ("chatgpt-account-id", auth.account_id)]


def responses_headers(identity: Identity, auth: AccountAuth, thread: ThreadContext, turn: TurnContext, *,
                      model: str, reasoning_effort: str | None, traits: ModelTraits,
                      compressed: bool = True) -> Headers:
    """`POST /codex/responses` (SSE)."""
    headers: Headers = [
        ("version", identity.version),
        ("x-codex-beta-features", identity.beta_features),
        ("x-codex-window-id", thread.window_id),
        ("x-codex-turn-metadata", turn_metadata(identity, thread, turn, model=model,
                                                reasoning_effort=reasoning_effort, traits=traits)),
    ]
    if traits.responses_lite:
        headers.append(("x-openai-internal-codex-responses-lite", "true"))
    headers += [
        ("x-codex-routing-hint", f"model={model}"),
        ("x-client-request-id", thread.thread_id),
        ("session-id", thread.thread_id),
        ("thread-id", thread.thread_id),
        ("accept", "text/event-stream"),
    ]
    if compressed:
        headers.append(("content-encoding", "zstd"))
    headers.append(("content-type", "application/json"))
    headers += _bearer(auth)
    headers += [("originator", identity.originator), ("user-agent", identity.user_agent())]
    return headers


def compact_headers(identity: Identity, auth: AccountAuth, thread: ThreadContext, turn: TurnContext, *,
                    model: str, reasoning_effort: str | None, traits: ModelTraits) -> Headers:
    """`POST /codex/responses/compact`. Not captured: the Responses identity headers without the SSE
    `accept` and without compression (spec/upstream.md §3.1)."""
    return [h for h in responses_headers(identity, auth, thread, turn, model=model, reasoning_effort=reasoning_effort,
                                         traits=traits, compressed=False)
            if h[0] != "accept"]


def websocket_headers(identity: Identity, auth: AccountAuth, thread: ThreadContext, *, model: str,
                      reasoning_effort: str | None, traits: ModelTraits) -> Headers:
    """The application headers of the `GET /codex/responses` WebSocket upgrade. The upgrade never carries
    the responses-lite header (it travels in each frame's client_metadata) and its turn metadata is the
    prewarm form."""
    return [
        ("chatgpt-account-id", auth.account_id),  # the upgrade is the one call with the account id first
        ("authorization", f"Bearer {auth.access_token}"),
        ("user-agent", identity.user_agent()),
        ("originator", identity.originator),
        ("openai-beta", identity.websocket_beta),
        ("version", identity.version),
        ("x-codex-beta-features", identity.beta_features),
        ("x-client-request-id", thread.thread_id),
        ("session-id", thread.thread_id),
        ("thread-id", thread.thread_id),
        ("x-codex-window-id", thread.window_id),
        ("x-codex-turn-metadata", turn_metadata(identity, thread, None, model=model, reasoning_effort=reasoning_effort,
                                                traits=traits)),
        ("x-codex-routing-hint", f"model={model}"),
    ]


def accounts_check_headers(identity: Identity, auth: AccountAuth, *, initialised: bool = False) -> Headers:
    """`GET /wham/accounts/check` (workspace routing discovery; always sent before initialisation)."""
    return [("user-agent", identity.user_agent(initialised=initialised)), *_bearer(auth), ("accept", "*/*")]


def models_headers(identity: Identity, auth: AccountAuth, *, initialised: bool = True) -> Headers:
    """`GET /codex/models?client_version=<version>`."""
    return [
        ("version", identity.version), *_bearer(auth),
        ("originator", identity.originator_for(initialised=initialised)),
        ("user-agent", identity.user_agent(initialised=initialised)), ("accept", "*/*"),
    ]


def usage_headers(identity: Identity, auth: AccountAuth) -> Headers:
    """`GET /wham/usage` (the TUI asks for the luna reserve too)."""
    headers = [("user-agent", identity.user_agent()), *_bearer(auth)]
    if identity.luna_reserve_on_usage:
        headers.append(("x-openai-codex-luna-reserve", "1"))
    headers.append(("accept", "*/*"))
    return headers


def settings_user_headers(identity: Identity, auth: AccountAuth) -> Headers:
    """`GET /wham/settings/user`."""
    return [("user-agent", identity.user_agent()), *_bearer(auth), ("cache-control", "no-cache, no-store"),
            ("accept", "*/*")]


def rate_limit_reset_credits_headers(identity: Identity, auth: AccountAuth) -> Headers:
    """`GET /wham/rate-limit-reset-credits`."""
    return [("user-agent", identity.user_agent()), *_bearer(auth), ("accept", "*/*")]


def security_setup_headers(identity: Identity, auth: AccountAuth) -> Headers:
    """`GET /wham/security-setup` (TUI): the only call with authorization before the user-agent."""
    return [*_bearer(auth), ("user-agent", identity.user_agent()), ("accept", "*/*")]


def mcp_headers(identity: Identity, auth: AccountAuth) -> Headers:
    """`POST /ps/mcp` (apps MCP initialize). The real client's order of originator / x-openai-product-sku
    varies between runs (a hash map); this is one of the two observed orders."""
    return [
        ("user-agent", identity.mcp_user_agent), ("originator", identity.originator),
        ("x-openai-product-sku", "codex"), *_bearer(auth), ("accept", "text/event-stream, application/json"),
        ("content-type", "application/json"),
    ]


# ---- auth.openai.com ------------------------------------------------------------------------------------


def refresh_headers(identity: Identity, *, initialised: bool = True) -> Headers:
    """`POST /oauth/token` refresh (JSON). A proactive refresh happens before initialisation."""
    return [("content-type", "application/json"), ("originator", identity.originator_for(initialised=initialised)),
            ("user-agent", identity.user_agent(initialised=initialised)), ("accept", "*/*")]


def form_token_headers() -> Headers:
    """`POST /oauth/token` code exchange and id_token -> API key exchange: no originator or user-agent."""
    return [("content-type", "application/x-www-form-urlencoded"), ("accept", "*/*")]


def device_auth_headers() -> Headers:
    """`POST /api/accounts/deviceauth/{usercode,token}`."""
    return [("content-type", "application/json"), ("accept", "*/*")]


# ---- what goes on the wire around them -----------------------------------------------------------------

_TUNGSTENITE_EXTENSIONS = ("sec-websocket-extensions", "permessage-deflate; client_max_window_bits")


def http1_wire(headers: Headers, host: str, content_length: int | None = None, *,
               accept_encoding: str | None = None) -> Headers:
    """The decompression layer appends `accept-encoding` (when the release accepts compressed answers: see
    `Identity.accept_encoding`), then hyper appends `host`, then `content-length` for a body."""
    wire = [*headers]
    if accept_encoding is not None:
        wire.append(("accept-encoding", accept_encoding))
    wire.append(("host", host))
    if content_length is not None:
        wire.append(("content-length", str(content_length)))
    return wire


def http2_wire(headers: Headers) -> Headers:
    """HTTP/2: the same order without `host` (it becomes `:authority`); pseudo-headers are the transport's."""
    return [h for h in headers if h[0] != "host"]


def websocket_wire(headers: Headers, host: str, key: str, *, deflate: bool = True) -> Headers:
    """tungstenite writes five capitalised handshake lines first and the extension offer last."""
    wire = [("Host", host), ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", key), *headers]
    if deflate:
        wire.append(_TUNGSTENITE_EXTENSIONS)
    return wire
