"""Admin API for ChatGPT accounts and logins (`/auth/*`; the app's before_request requires the gateway key).

Routes only map HTTP to `AccountService` calls and to `LoginSessions`, the table of logins in progress:

    POST /auth/login                   start a browser login → {login_id, url, callback_server, ...}
    GET  /auth/login                   the same, answered with a redirect to the authorize URL
    POST /auth/login/device            start a device-code login → {login_id, user_code, verification_url}
    GET  /auth/login/{id}              its status: pending | succeeded | failed | cancelled | expired
    POST /auth/login/{id}/callback     {"url": "<the callback URL the browser ended on>"} (paste flow)
    DELETE /auth/login/{id}            cancel it

A browser login finishes either on the local callback server (127.0.0.1:1455, 1457 if busy) or when the
pasted callback URL arrives, whichever is first. The full endpoint table is in docs/admin-api.md.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import orjson
import trio
from quart import Response, redirect, request

from ..accounts import oauth
from ..accounts.fields import checked_proxy, text_field
from ..accounts.login import DEVICE_LOGIN_TIMEOUT, BrowserLogin, LoginError, LoginServer, OAuthClient
from ..errors import ErrorKind, GatewayError, invalid_request
from .admin import read_json_object
from .admin_deps import admin_deps
from .api import json_response

if TYPE_CHECKING:
    from ..accounts.service import AccountService
    from .host import GatewayHost

log = logging.getLogger(__name__)

LOGIN_TIMEOUT = 15 * 60  # a browser login left open longer than this is dropped (the device code expires too)
FINISHED_KEPT_SECONDS = 30 * 60  # how long a finished login's status stays readable
MAX_PENDING_LOGINS = 16
PATCH_FIELDS = ("label", "enabled", "proxy")


class LoginStatus:
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


@dataclass(eq=False)
class LoginSession:
    id: str
    kind: str  # "browser" | "device"
    label: str | None
    created_at: float
    expires_at: float
    status: str = LoginStatus.PENDING
    finished_at: float | None = None
    error: str | None = None
    account: dict[str, Any] | None = None
    created: bool | None = None
    # browser
    browser: BrowserLogin | None = None
    callback_server: bool = False
    # device
    user_code: str | None = None
    verification_url: str | None = None
    interval: float | None = None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    completing: bool = False  # a pasted callback is being exchanged

    @property
    def pending(self) -> bool:
        return self.status == LoginStatus.PENDING

    def finish(self, status: str, *, error: str | None = None) -> None:
        if self.pending:
            self.status, self.error, self.finished_at = status, error, time.time()
        self.scope.cancel()  # stops the callback server / the device polling

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {"login_id": self.id, "kind": self.kind, "status": self.status, "label": self.label,
                               "created_at": self.created_at, "expires_at": self.expires_at,
                               "finished_at": self.finished_at, "error": self.error}
        if self.browser is not None:
            out.update(url=self.browser.url, redirect_uri=self.browser.redirect_uri,
                       callback_server=self.callback_server)
        if self.user_code is not None:
            out.update(user_code=self.user_code, verification_url=self.verification_url, interval=self.interval)
        if self.account is not None:
            out.update(account=self.account, created=self.created)
        return out


def _unreachable(exc: Exception) -> GatewayError:
    return GatewayError(502, f"could not reach the login issuer ({exc}); check the network / api.auth_base_url",
                        ErrorKind.UPSTREAM, code="issuer_unreachable")


class LoginSessions:
    """Logins in progress. Each runs as a task of the gateway's root nursery (cancelled on shutdown)."""

    def __init__(self, *, oauth_client: Callable[[], OAuthClient], accounts: Callable[[], "AccountService | None"],
                 nursery: Callable[[], "trio.Nursery | None"],
                 callback_ports: tuple[int, ...] = oauth.CALLBACK_PORTS) -> None:
        self._client = oauth_client  # built at each use: the presented identity and issuer as they are now
        self._accounts = accounts
        self._nursery = nursery
        self.callback_ports = callback_ports
        self._sessions: dict[str, LoginSession] = {}

    def _new(self, kind: str, label: str | None, timeout: float) -> LoginSession:
        now = time.time()
        for key, old in list(self._sessions.items()):
            if old.finished_at is not None and now - old.finished_at > FINISHED_KEPT_SECONDS:
                del self._sessions[key]
        if sum(s.pending for s in self._sessions.values()) >= MAX_PENDING_LOGINS:
            raise GatewayError(429, f"{MAX_PENDING_LOGINS} logins are already in progress; finish or cancel "
                               "(DELETE /auth/login/{id}) one first", ErrorKind.RATE_LIMIT, code="too_many_logins")
        session = LoginSession(secrets.token_urlsafe(12), kind, label, now, now + timeout)
        session.scope.deadline = trio.current_time() + timeout
        return session

    def get(self, login_id: str) -> LoginSession:
        session = self._sessions.get(login_id)
        if session is None:
            raise GatewayError(404, f"no login with id {login_id!r} (finished logins are kept for "
                               f"{FINISHED_KEPT_SECONDS // 60} minutes)", ErrorKind.NOT_FOUND, code="login_not_found")
        return session

    def _spawn(self, session: LoginSession, work: Any) -> None:
        nursery = self._nursery()
        if nursery is None:
            raise GatewayError(503, "the gateway is not running", ErrorKind.OVERLOADED)
        self._sessions[session.id] = session
        nursery.start_soon(self._run, session, work)

    async def _run(self, session: LoginSession, work: Any) -> None:
        """Runs one login to its end; never lets an error escape into the root nursery."""
        try:
            with session.scope:
                grant = await work()
                await self._save(session, grant)
        except LoginError as exc:
            session.finish(LoginStatus.FAILED, error=str(exc))
        except GatewayError as exc:
            session.finish(LoginStatus.FAILED, error=exc.message)
        except Exception as exc:  # noqa: BLE001 - a login failing must not take the gateway down
            log.warning("login %s failed: %s: %s", session.id, type(exc).__name__, exc)
            session.finish(LoginStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        if session.pending and not session.completing:  # only the deadline ends a login without a verdict
            session.finish(LoginStatus.EXPIRED, error="the login was not completed in time; start it again")

    async def _save(self, session: LoginSession, grant: oauth.TokenGrant) -> None:
        if not session.pending:
            return  # the other path (callback server or paste) finished first
        accounts = self._accounts()
        assert accounts is not None, "a login starts only once the account store is open"
        result = await accounts.add_from_grant(grant, label=session.label)
        if session.pending:
            session.account, session.created = result["account"], result["created"]
            session.finish(LoginStatus.SUCCEEDED)

    async def start_browser(self, label: str | None) -> LoginSession:
        client = self._client()
        session = self._new("browser", label, LOGIN_TIMEOUT)
        try:
            server: LoginServer | None = await LoginServer.bind(client, self.callback_ports)
        except LoginError as exc:
            log.info("browser login without a local callback server: %s", exc)
            server = None
        if server is None:
            session.browser = client.begin_browser(oauth.CALLBACK_PORTS[0])

            async def work() -> oauth.TokenGrant:
                await trio.sleep_forever()  # only the pasted callback can finish this login
                raise AssertionError("unreachable")
        else:
            session.browser, session.callback_server = server.login, True

            async def work() -> oauth.TokenGrant:
                try:
                    return await server.serve()
                finally:
                    await server.aclose()
        self._spawn(session, work)
        return session

    async def start_device(self, label: str | None) -> LoginSession:
        client = self._client()
        try:
            code = await client.device_begin()
        except LoginError as exc:
            raise invalid_request(f"device login is not available: {exc}", code="device_login_failed") from None
        except Exception as exc:  # noqa: BLE001 - transport failures of the injected OAuthHttp
            raise _unreachable(exc) from None
        session = self._new("device", label, DEVICE_LOGIN_TIMEOUT)
        session.user_code, session.verification_url, session.interval = (code.user_code, code.verification_url,
                                                                          code.interval)
        self._spawn(session, lambda: client.device_complete(code, timeout=DEVICE_LOGIN_TIMEOUT))
        return session

    async def complete_pasted(self, login_id: str, callback_url: str) -> LoginSession:
        session = self.get(login_id)
        if session.browser is None:
            raise invalid_request("only a browser login takes a pasted callback URL", param="url")
        if not session.pending or session.completing:
            raise GatewayError(409, f"this login is already {session.status if not session.pending else 'completing'}",
                               ErrorKind.INVALID_REQUEST, code="login_finished")
        client = self._client()
        try:
            code = client.code_from_callback(session.browser, callback_url)
        except LoginError as exc:
            raise invalid_request(str(exc), param="url", code="bad_callback") from None  # the login stays open
        session.completing = True
        try:
            grant = await client.exchange_code(code, session.browser.redirect_uri, session.browser.pkce.verifier,
                                               api_key=True)
            await self._save(session, grant)
        except LoginError as exc:
            session.finish(LoginStatus.FAILED, error=str(exc))
            raise invalid_request(str(exc), param="url", code="login_failed") from None
        except GatewayError as exc:
            session.finish(LoginStatus.FAILED, error=exc.message)
            raise
        except Exception as exc:  # noqa: BLE001 - transport failures of the injected OAuthHttp
            session.finish(LoginStatus.FAILED, error=f"could not reach the issuer: {exc}")
            raise _unreachable(exc) from None
        finally:
            session.completing = False
        return session

    def cancel(self, login_id: str) -> LoginSession:
        session = self.get(login_id)
        session.finish(LoginStatus.CANCELLED)
        return session


# ---- request helpers --------------------------------------------------------------------------------------


async def _optional_json_object() -> dict[str, Any]:
    raw = await request.get_data()
    return await read_json_object() if raw.strip() else {}


def _ids(body: dict[str, Any], *, required: bool = True) -> list[str] | None:
    ids = body.get("ids")
    if ids is None and not required:
        return None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise invalid_request("`ids` must be a non-empty list of account ids", param="ids")
    return ids


def _quota_arg() -> str | bool:
    value = request.args.get("quota", "false").lower()
    if value in ("", "false", "0", "no"):
        return False
    if value in ("true", "1", "yes"):
        return True
    if value == "fresh":
        return "fresh"
    raise invalid_request("`quota` must be true, false or fresh", param="quota")


def _flag(value: Any, name: str) -> bool:
    """A yes/no field given as JSON (bool) or as text (query string, form field)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise invalid_request(f"`{name}` must be true or false", param=name)


IMPORT_PATH_FIELDS = frozenset({"path", "link"})


async def _run_import(service: "AccountService") -> dict[str, Any]:
    """POST /auth/accounts/import: the body, the first uploaded file of a multipart form, or `{"path": …}`
    (a file on the gateway's machine). A Codex CLI auth.json is linked unless `link` (query, form field or
    JSON field) is false."""
    link = _flag(request.args["link"], "link") if "link" in request.args else True
    if request.mimetype == "multipart/form-data":
        form, files = await request.form, await request.files
        if "link" in form:
            link = _flag(form["link"], "link")
        upload = next(iter(files.values()), None)
        if upload is not None:
            return await service.import_accounts(upload.read(), link=link)
        if form.get("path"):
            return await service.import_file(form["path"], link=link, json_only=True)
        raise invalid_request("the multipart form has no file; upload the export or auth.json as a file field "
                              "(or give a `path` field)", param="file")
    payload = await request.get_data()
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and "path" in body and set(body) <= IMPORT_PATH_FIELDS:
        if not isinstance(body["path"], str) or not body["path"].strip():
            raise invalid_request("`path` must be the path of a file on the gateway's machine", param="path")
        if "link" in body:
            link = _flag(body["link"], "link")
        return await service.import_file(body["path"].strip(), link=link, json_only=True)
    return await service.import_accounts(payload, link=link)


def register_accounts_api(app: Any, gateway: "GatewayHost") -> None:
    deps = admin_deps(gateway)
    logins, accounts = deps.logins, deps.accounts

    # ---- logins -------------------------------------------------------------------------------------------

    @app.post("/auth/login")
    async def login_start() -> Response:
        body = await _optional_json_object()
        mode = body.get("mode", "browser")
        if mode == "device":
            session = await logins.start_device(text_field(body, "label"))
        elif mode in ("browser", "paste"):
            session = await logins.start_browser(text_field(body, "label"))
        else:
            raise invalid_request("`mode` must be browser, paste or device", param="mode")
        return json_response(session.view(), 201)

    @app.get("/auth/login")
    async def login_entry() -> Response:
        session = await logins.start_browser(request.args.get("label") or None)
        response = redirect(session.browser.url)
        response.headers["x-login-id"] = session.id
        return response

    @app.post("/auth/login/device")
    async def login_device() -> Response:
        body = await _optional_json_object()
        return json_response((await logins.start_device(text_field(body, "label"))).view(), 201)

    @app.get("/auth/login/<login_id>")
    async def login_status(login_id: str) -> Response:
        return json_response(logins.get(login_id).view())

    @app.post("/auth/login/<login_id>/callback")
    async def login_callback(login_id: str) -> Response:
        body = await read_json_object()
        url = body.get("url") or body.get("callback_url")
        if not isinstance(url, str) or not url.strip():
            raise invalid_request("send {\"url\": \"<the full address the browser ended on>\"}", param="url")
        return json_response((await logins.complete_pasted(login_id, url)).view())

    @app.delete("/auth/login/<login_id>")
    async def login_cancel(login_id: str) -> Response:
        return json_response(logins.cancel(login_id).view())

    # ---- accounts -----------------------------------------------------------------------------------------

    @app.get("/auth/accounts")
    async def list_accounts() -> Response:
        return json_response(await accounts().list(quota=_quota_arg()))

    @app.post("/auth/accounts")
    async def add_account() -> Response:
        result = await accounts().add_by_token(await read_json_object())
        return json_response(result, 201 if result["created"] else 200)

    @app.post("/auth/accounts/import")
    async def import_accounts() -> Response:
        return json_response(await _run_import(accounts()))

    @app.get("/auth/accounts/export")
    async def export_accounts() -> Response:
        fmt = request.args.get("format", "full")
        ids = [i for i in request.args.get("ids", "").split(",") if i] or None
        exported = await accounts().export(format=fmt, ids=ids)
        headers = {"content-disposition": f'attachment; filename="codex-trio-accounts-{fmt}.'
                                          f'{"txt" if isinstance(exported, str) else "json"}"',
                   "cache-control": "no-store"}
        if isinstance(exported, str):
            return Response(exported, content_type="text/plain; charset=utf-8", headers=headers)
        return json_response(exported, headers=headers)

    @app.post("/auth/accounts/batch-delete")
    async def batch_delete() -> Response:
        return json_response(await accounts().batch_delete(_ids(await read_json_object())))

    @app.post("/auth/accounts/batch-status")
    async def batch_status() -> Response:
        body = await read_json_object()
        status = body.get("status")
        if status is None and isinstance(body.get("enabled"), bool):
            status = "active" if body["enabled"] else "disabled"
        return json_response(await accounts().batch_status(_ids(body), status))

    @app.post("/auth/accounts/health-check")
    async def health_check() -> Response:
        return json_response(await accounts().health_check(_ids(await _optional_json_object(), required=False)))

    @app.get("/auth/accounts/<account_id>")
    async def get_account(account_id: str) -> Response:
        return json_response(await accounts().get(account_id))

    @app.patch("/auth/accounts/<account_id>")
    async def patch_account(account_id: str) -> Response:
        body = await read_json_object()
        unknown = sorted(set(body) - set(PATCH_FIELDS))
        if unknown or not body:
            raise invalid_request(f"can change {', '.join(PATCH_FIELDS)}"
                                  + (f"; unknown field(s): {', '.join(unknown)}" if unknown else ""))
        if "enabled" in body and not isinstance(body["enabled"], bool):
            raise invalid_request("`enabled` must be true or false", param="enabled")
        label = text_field(body, "label")
        proxy = checked_proxy(body.get("proxy"))
        service = accounts()
        await service.get(account_id)  # 404 before any change
        if "label" in body:
            await service.set_label(account_id, label)
        if "proxy" in body:  # through the proxy pool: an auto route gets its proxy, open sockets are retired
            proxies = deps.current_proxies()
            await (proxies.assign([account_id], proxy) if proxies is not None else service.set_proxy(account_id, proxy))
        if "enabled" in body:
            await service.set_enabled(account_id, body["enabled"])
        return json_response(await service.get(account_id))

    @app.delete("/auth/accounts/<account_id>")
    async def delete_account(account_id: str) -> Response:
        return json_response(await accounts().remove(account_id))

    @app.post("/auth/accounts/<account_id>/refresh")
    async def refresh_account(account_id: str) -> Response:
        return json_response(await accounts().refresh(account_id))

    @app.get("/auth/accounts/<account_id>/quota")
    async def account_quota(account_id: str) -> Response:
        return json_response(await accounts().quota(account_id))

    @app.get("/auth/accounts/<account_id>/cookies")
    async def get_cookies(account_id: str) -> Response:
        return json_response(await accounts().cookies(account_id))

    @app.post("/auth/accounts/<account_id>/cookies")
    async def set_cookies(account_id: str) -> Response:
        body = await read_json_object()
        return json_response(await accounts().set_cookies(account_id, body.get("cookies", body)))

    @app.delete("/auth/accounts/<account_id>/cookies")
    async def delete_cookies(account_id: str) -> Response:
        return json_response(await accounts().delete_cookies(account_id))

    @app.get("/auth/quota/warnings")
    async def quota_warnings() -> Response:
        pool = deps.current_pool()
        if pool is None:
            raise GatewayError(503, "the account pool is not loaded yet; try again in a moment", ErrorKind.OVERLOADED)
        return json_response({"warnings": pool.warnings(),
                              "thresholds": list(pool.config.warning_thresholds)})
