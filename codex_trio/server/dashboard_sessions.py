"""Dashboard log-in sessions and one-time log-in links, and the rule that decides whether a browser request
carrying a session may act. Sans-IO: the clock is handed in, nothing here touches a request or a socket.

Why each piece exists:

* The session id is a random 256-bit value kept only in memory and in an HttpOnly, SameSite=Strict cookie, so
  page scripts cannot read it and other sites' pages do not send it. A restart logs everybody out, which is the
  safe direction for a laptop gateway.
* A one-time link (`/?token=...`, printed by `codex-trio run` and `demo`) is spent on first use: a link copied
  from a terminal scroll-back or a shared screen cannot log in a second time.
* SameSite=Strict does not separate two ports of one host (`127.0.0.1:3000` and `:8080` are the same site), so a
  state-changing request with a session must also carry an `Origin` equal to the dashboard's own origin.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Callable

from .site_guard import normalized_origin

COOKIE_NAME = "codex_trio_session"
LINK_TOKEN_SECONDS = 24 * 3600  # a printed link that was never opened stops working after a day
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass
class SessionBook:
    """Live sessions and unspent one-time link tokens, each with its expiry time."""

    clock: Callable[[], float]
    ttl_seconds: Callable[[], float]
    sessions: dict[str, float] = field(default_factory=dict)
    link_tokens: dict[str, float] = field(default_factory=dict)

    def open_session(self) -> str:
        self.sweep()
        session_id = new_secret()
        self.sessions[session_id] = self.clock() + self.ttl_seconds()
        return session_id

    def is_live(self, session_id: str | None) -> bool:
        if not session_id:
            return False
        expires = self.sessions.get(session_id)
        if expires is None:
            return False
        if expires <= self.clock():
            del self.sessions[session_id]
            return False
        return True

    def close_session(self, session_id: str | None) -> None:
        if session_id:
            self.sessions.pop(session_id, None)

    def issue_link_token(self) -> str:
        self.sweep()
        token = new_secret()
        self.link_tokens[token] = self.clock() + LINK_TOKEN_SECONDS
        return token

    def spend_link_token(self, token: str) -> str | None:
        """A new session for an unspent, unexpired link token (which is then spent), or None."""
        for known in list(self.link_tokens):
            # compare every entry in constant time; there are only a handful
            if hmac.compare_digest(known.encode(), token.encode()):
                expires = self.link_tokens.pop(known)
                return self.open_session() if expires > self.clock() else None
        return None

    def sweep(self) -> None:
        now = self.clock()
        for table in (self.sessions, self.link_tokens):
            for key in [k for k, expires in table.items() if expires <= now]:
                del table[key]


def own_origins(host_header: str) -> frozenset[str]:
    """The origins a page served under this Host header has (the gateway speaks http; https when a reverse proxy
    in front terminates TLS)."""
    host = host_header.strip().lower()
    return frozenset({f"http://{host}", f"https://{host}"})


def origin_refusal(method: str, host: str | None, origin: str | None, extra_origins: frozenset[str]) -> str | None:
    """Why a request with a session may not change anything, or None. Reading is allowed without Origin (a
    same-origin GET may omit it); changing needs the dashboard's own origin or a configured one."""
    if method.upper() in SAFE_METHODS:
        return None
    if not origin:
        return "A request that changes something with the dashboard session must carry an Origin header."
    normalized = normalized_origin(origin)
    if normalized in own_origins(host or "") or normalized in extra_origins:
        return None
    return (f"Origin {origin!r} may not use the dashboard session. Only the dashboard's own pages may (add others "
            "to session.allowed_origins).")
