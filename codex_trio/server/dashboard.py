"""The web dashboard on the main listener: the browser gate (log-in page, session cookie, one-time link, Host and
Origin checks), the static files of `web/`, and the log-in and log-out calls (`/ui/session`).

The data calls only the dashboard makes (overview, a page of accounts, the live stream) are in `dashboard_data.py`.

Who gets what at `/`:

* A request that presents a key, or that does not accept text/html, is not the dashboard's: it keeps what `/`
  answered before (401 without a key, the Anthropic probe answer with one).
* A browser navigation (`Accept: text/html`, no key) gets the dashboard with a live session, the log-in page
  without one; `/?token=<one-time token>` opens a session and redirects to `/`.

`/ui/public/*` (the log-in page's script, styles and strings) is open; every other `/ui/*` file needs the session
or the admin key, like the admin API. The session admits everything the admin key admits; a request that changes
something must also come from the dashboard's own Origin (`dashboard_sessions.origin_refusal`).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from quart import Response, request

from ..errors import ErrorKind, GatewayError, invalid_request
from .admin import read_json_object
from .admin_deps import admin_deps, sessions_of
from .api import error_response, json_response
from .auth import key_matches, presented_key
from .dashboard_data import register_dashboard_data
from .dashboard_sessions import COOKIE_NAME, SessionBook, origin_refusal
from .site_guard import SitePolicy

if TYPE_CHECKING:
    from ..config.store import ConfigStore
    from .host import GatewayHost

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
PUBLIC_PREFIX = "/ui/public/"
SESSION_PATH = "/ui/session"
LOG_IN_ROUTE = ("POST", SESSION_PATH)  # open without a key (the key is in the body), with the Origin check

# The dashboard loads nothing from elsewhere and runs no inline script, so the policy can be this strict; the
# referrer policy keeps a one-time link out of any Referer header.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".json": "application/json",
                 ".png": "image/png", ".txt": "text/plain; charset=utf-8"}


async def run_session_sweep(gateway: "GatewayHost", *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Background job: every `session.cleanup_interval_minutes`, forget expired sessions and link tokens. A
    session is also refused the moment it expires; this frees those nobody presents again (a browser closed
    for good). A changed interval applies from the next sweep."""
    task_status.started()
    while True:
        await trio.sleep(gateway.config.settings.session.cleanup_interval_minutes * 60)
        sessions_of(gateway).sweep()


def login_link(gateway: "GatewayHost", base_url: str) -> str:
    """A one-time link that logs a browser in (printed by `codex-trio run` and `demo`)."""
    return f"{base_url.rstrip('/')}/?token={sessions_of(gateway).issue_link_token()}"


def site_policy(config: "ConfigStore") -> SitePolicy:
    settings = config.settings
    return SitePolicy.of(settings.server.host, settings.session.allowed_hosts, settings.session.allowed_origins)


def web_file(relative: str) -> Path | None:
    """The file of `web/` at `relative`, or None (also for anything that would leave the folder)."""
    root = WEB_ROOT.resolve()
    try:
        path = (root / relative).resolve()
        path.relative_to(root)
    except (ValueError, OSError):
        return None
    return path if path.is_file() else None


def file_response(relative: str, status: int = 200) -> Response:
    path = web_file(relative)
    if path is None:
        raise GatewayError(404, f"No dashboard file {relative!r}.", ErrorKind.NOT_FOUND)
    content_type = CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Response(path.read_bytes(), status=status, content_type=content_type, headers=SECURITY_HEADERS)


def wants_html(headers: Any) -> bool:
    return "text/html" in headers.get("accept", "")


class BrowserGate:
    """Decides, before the key check, what a request without a key gets (`api.create_api_app` asks it)."""

    def __init__(self, config: "ConfigStore", sessions: SessionBook) -> None:
        self.config = config
        self.sessions = sessions

    def screen(self, method: str, path: str, headers: Any, cookies: Any, args: Any) -> tuple[bool, Response | None]:
        """(decided, response): decided with no response = admitted; decided with a response = answered here
        (the dashboard root, or a refusal); not decided = the ordinary key check applies."""
        if presented_key(headers, args) is not None:
            return False, None
        method = method.upper()
        root = path == "/" and method in ("GET", "HEAD") and wants_html(headers)
        public = path.startswith(PUBLIC_PREFIX) and method in ("GET", "HEAD")
        logging_in = (method, path) == LOG_IN_ROUTE
        session_id = cookies.get(COOKIE_NAME)
        if not (root or public or logging_in or session_id):
            return False, None
        host = headers.get("host")
        if host is not None and not site_policy(self.config).host_allowed(host):
            return True, self._refuse(path, f"Host {host!r} is not allowed here (DNS rebinding protection). Reach "
                                            "the dashboard as localhost or 127.0.0.1, or add the name to "
                                            "session.allowed_hosts.")
        book = self.sessions
        live = book.is_live(session_id)
        if root:
            return True, self._root(args, live)
        if logging_in or (live and not public):
            reason = origin_refusal(method, host, headers.get("origin"),
                                    frozenset(self.config.settings.session.allowed_origins))
            if reason is not None:
                return True, self._refuse(path, reason)
            return True, None
        return public, None

    def _refuse(self, path: str, reason: str) -> Response:
        return error_response(GatewayError(403, reason, ErrorKind.PERMISSION, code="forbidden_origin"), path)

    def _root(self, args: Any, live: bool) -> Response:
        token = args.get("token")
        if token:
            session_id = self.sessions.spend_link_token(token)
            response = Response("", status=303, headers={**SECURITY_HEADERS,
                                                         "location": "/" if session_id else "/?link=used"})
            if session_id:
                self.set_session_cookie(response, session_id)
            return response
        return file_response("index.html" if live else "public/login.html")

    def set_session_cookie(self, response: Response, session_id: str) -> None:
        settings = self.config.settings
        # Secure when the browser reached us over https (directly, or through a trusted TLS proxy in front)
        secure = request.scheme == "https" or (settings.server.trust_proxy and
                                               request.headers.get("x-forwarded-proto", "").lower() == "https")
        response.set_cookie(COOKIE_NAME, session_id, max_age=int(settings.session.ttl_minutes * 60), path="/",
                            httponly=True, samesite="Strict", secure=secure)


def register_dashboard(app: Any, gateway: "GatewayHost") -> None:
    deps = admin_deps(gateway)
    gate = BrowserGate(deps.config, deps.sessions)
    app.extensions["browser_gate"] = gate

    @app.get("/ui/<path:name>")
    async def dashboard_file(name: str) -> Response:
        return file_response(name)

    @app.post(SESSION_PATH)
    async def log_in() -> Response:
        body = await read_json_object()
        key = body.get("key")
        if not isinstance(key, str) or not key.strip():
            raise invalid_request("Send {\"key\": \"<the admin key>\"}.", param="key")
        if not key_matches(key.strip(), deps.config.settings.server.proxy_api_key):
            raise GatewayError(401, "That is not the admin key (server.proxy_api_key).", ErrorKind.AUTHENTICATION,
                               code="invalid_api_key")
        response = json_response({"logged_in": True})
        gate.set_session_cookie(response, deps.sessions.open_session())
        return response

    @app.delete(SESSION_PATH)
    async def log_out() -> Response:
        deps.sessions.close_session(request.cookies.get(COOKIE_NAME))
        response = json_response({"logged_in": False})
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="Strict")
        return response

    register_dashboard_data(app, deps)
