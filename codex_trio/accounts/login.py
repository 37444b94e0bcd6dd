"""Logging in a ChatGPT account, the three ways the real client offers (spec/chatgpt-mode.md §8):

* browser: PKCE authorize URL + a local callback server on 127.0.0.1:1455 (1457 if busy), a tiny trio+h11
  server that checks `state`, exchanges the code and redirects to /success;
* paste: the same URL opened on any machine; the user pastes the final callback URL (for headless/remote
  hosts where the browser cannot reach 127.0.0.1:1455 of the server);
* device code: /api/accounts/deviceauth/usercode → show the code → poll /deviceauth/token → exchange.
All network calls go through the injected `OAuthHttp`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Awaitable, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

import h11
import trio

from ..upstream import body as bodies
from ..upstream import headers as hdrs
from ..upstream.identity import Identity
from . import oauth
from .http import OAuthHttp
from .jwt import identity_from_tokens

log = logging.getLogger(__name__)

DEVICE_LOGIN_TIMEOUT = 15 * 60
SUCCESS_GRACE_SECONDS = 5.0


class LoginError(Exception):
    """A login did not complete; the message tells the user what happened and what to do."""


@dataclass(frozen=True, slots=True)
class BrowserLogin:
    url: str
    state: str
    pkce: oauth.Pkce
    redirect_uri: str


class OAuthClient:
    def __init__(self, http: OAuthHttp, *, identity: Identity, issuer: str = oauth.DEFAULT_ISSUER,
                 sleep: Callable[[float], Awaitable[None]] = trio.sleep,
                 exchange_api_key: bool = True) -> None:
        self.http = http
        self.identity = identity  # its client id and the request shapes of its release (upstream/body.py, headers.py)
        self.issuer = issuer.rstrip("/")
        self._sleep = sleep
        self._exchange_api_key = exchange_api_key  # the browser login of the real client does it too

    # ---- browser / paste ------------------------------------------------------------------------------

    def begin_browser(self, port: int = oauth.CALLBACK_PORTS[0]) -> BrowserLogin:
        pkce, state = oauth.new_pkce(), oauth.new_state()
        redirect_uri = oauth.redirect_uri_for(port)
        return BrowserLogin(oauth.authorize_url(redirect_uri, pkce, state, client_id=self.identity.oauth_client_id,
                                                issuer=self.issuer), state, pkce,
                            redirect_uri)

    @staticmethod
    def code_from_callback(login: BrowserLogin, callback: str) -> str:
        """The authorization code from a callback URL (or just its query), after checking `state`."""
        text = callback.strip()
        query = urlsplit(text).query if "://" in text or text.startswith("/") else text.lstrip("?")
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        if "error" in params:
            description = params.get("error_description", "")
            if "missing_codex_entitlement" in description:
                raise LoginError("Codex is not enabled for this ChatGPT workspace; ask its admin to enable it")
            raise LoginError(f"the sign-in was refused: {params['error']} {description}".strip())
        if params.get("state") != login.state:
            raise LoginError("the callback's state does not match this login (an old tab or another login); "
                             "start the login again and use the newest link")
        code = params.get("code")
        if not code:
            raise LoginError("the callback URL has no `code`; paste the full address the browser ended on")
        return code

    async def complete_pasted(self, login: BrowserLogin, callback_url: str) -> oauth.TokenGrant:
        return await self.exchange_code(self.code_from_callback(login, callback_url), login.redirect_uri,
                                        login.pkce.verifier, api_key=self._exchange_api_key)

    async def exchange_code(self, code: str, redirect_uri: str, verifier: str, *,
                            api_key: bool = False) -> oauth.TokenGrant:
        url = oauth.token_url(self.issuer)
        response = await self.http.post(url, hdrs.form_token_headers(),
                                        bodies.authorization_code_body(self.identity, code, redirect_uri, verifier))
        try:
            grant = oauth.parse_token_grant(response.status, response.body)
        except oauth.OAuthError as err:
            raise LoginError(f"the code exchange failed ({err.status} {err.code}: {err.message}); "
                             "start the login again") from None
        if grant.refresh_token is None or grant.id_token is None:
            raise LoginError("the issuer answered without a refresh token / id_token; start the login again")
        if api_key:
            try:
                await self.http.post(url, hdrs.form_token_headers(),
                                     bodies.api_key_exchange_body(self.identity, grant.id_token))
            except Exception as exc:  # noqa: BLE001 - best effort, as in the real client; the key is unused
                log.debug("API-key exchange after login failed: %s", exc)
        return grant

    # ---- device code ----------------------------------------------------------------------------------

    async def device_begin(self) -> oauth.DeviceCode:
        response = await self.http.post(oauth.device_usercode_url(self.issuer), hdrs.device_auth_headers(),
                                        bodies.device_usercode_body(self.identity))
        try:
            return oauth.parse_device_usercode(response.status, response.body, self.issuer)
        except oauth.OAuthError as err:
            raise LoginError(err.message or f"device login failed ({err.status} {err.code})") from None

    async def device_complete(self, code: oauth.DeviceCode, *,
                              timeout: float = DEVICE_LOGIN_TIMEOUT) -> oauth.TokenGrant:
        """Poll until the user confirms the code (then exchange it), or give up after `timeout`."""
        deadline = trio.current_time() + timeout
        body = bodies.device_token_body(code.device_auth_id, code.user_code)
        while True:
            response = await self.http.post(oauth.device_token_url(self.issuer), hdrs.device_auth_headers(), body)
            try:
                done = oauth.parse_device_poll(response.status, response.body)
            except oauth.OAuthError as err:
                if err.permanent:
                    raise LoginError(f"device login failed ({err.status} {err.code}); start it again") from None
                done = None  # a transient answer: keep polling
            if done is not None:
                return await self.exchange_code(done.authorization_code, oauth.device_redirect_uri(self.issuer),
                                                done.code_verifier)
            if trio.current_time() + code.interval >= deadline:
                raise LoginError("the device code was not confirmed in time; start the login again")
            await self._sleep(code.interval)


# ---- the local callback server (browser flow) -----------------------------------------------------------

SUCCESS_PAGE = (b"<!doctype html><meta charset=utf-8><title>Signed in</title>"
                b"<p>Signed in to codex-trio. You can close this tab.</p>")


class LoginServer:
    """Serves /auth/callback for one browser login. Bind with `await LoginServer.bind(client)`; show
    `server.login.url` to the user; `await server.serve()` returns the token grant."""

    def __init__(self, client: OAuthClient, listener: trio.SocketListener, port: int) -> None:
        self.client = client
        self.port = port
        self.login = client.begin_browser(port)
        self._listener = listener
        self._result: oauth.TokenGrant | None = None
        self._failure: LoginError | None = None
        self._finished = False
        self._success_served = False
        self._done = trio.Event()
        self._success_seen = trio.Event()

    @classmethod
    async def bind(cls, client: OAuthClient, ports: tuple[int, ...] = oauth.CALLBACK_PORTS,
                   host: str = "127.0.0.1") -> LoginServer:
        last: OSError | None = None
        for port in ports:
            try:
                listeners = await trio.open_tcp_listeners(port, host=host)
            except OSError as exc:
                last = exc
                continue
            listener = listeners[0]
            return cls(client, listener, listener.socket.getsockname()[1])
        raise LoginError(f"ports {', '.join(map(str, ports))} on {host} are busy ({last}); close the other login "
                         "(or the Codex CLI's), or use the paste-the-callback or device-code login")

    async def serve(self) -> oauth.TokenGrant:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, self._handle, [self._listener])
            await self._done.wait()
            if self._result is not None:
                with trio.move_on_after(SUCCESS_GRACE_SECONDS):
                    await self._success_seen.wait()
            nursery.cancel_scope.cancel()
        if self._failure is not None:
            raise self._failure
        assert self._result is not None
        return self._result

    async def aclose(self) -> None:
        await self._listener.aclose()

    async def _handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            with trio.move_on_after(30):
                request = await self._read_request(stream, conn)
                if request is None:
                    return
                status, headers, body = await self._route(request)
                headers = [*headers, ("content-length", str(len(body))), ("connection", "close")]
                try:
                    await stream.send_all(conn.send(h11.Response(status_code=status, headers=headers)))
                    await stream.send_all(conn.send(h11.Data(data=body)) if body else b"")
                    await stream.send_all(conn.send(h11.EndOfMessage()))
                finally:
                    # only after the answer went out: serve() stops the server when these are set
                    if self._finished:
                        self._done.set()
                    if self._success_served:
                        self._success_seen.set()
        except (h11.RemoteProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await stream.aclose()

    @staticmethod
    async def _read_request(stream: trio.SocketStream, conn: h11.Connection) -> h11.Request | None:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(16384)
                conn.receive_data(data)
                if not data:
                    return None
                continue
            if isinstance(event, h11.Request):
                return event
            if isinstance(event, h11.ConnectionClosed):
                return None

    async def _route(self, request: h11.Request) -> tuple[int, list[tuple[str, str]], bytes]:
        target = request.target.decode("latin-1")
        path = urlsplit(target).path
        html = [("content-type", "text/html; charset=utf-8")]
        if path == oauth.CALLBACK_PATH:
            if self._finished:
                return 409, html, b"<p>This login has already finished.</p>"
            try:
                code = OAuthClient.code_from_callback(self.login, target)
            except LoginError as exc:
                if "state" in str(exc):
                    return 400, html, str(exc).encode()  # a stale tab: keep waiting for the right one
                self._failure, self._finished = exc, True
                return 400, html, str(exc).encode()
            try:
                self._result = await self.client.exchange_code(code, self.login.redirect_uri,
                                                               self.login.pkce.verifier,
                                                               api_key=self.client._exchange_api_key)
            except LoginError as exc:
                self._failure, self._finished = exc, True
                return 502, html, str(exc).encode()
            self._finished = True
            query = urlencode({"plan_type": _plan_of(self._result)})
            return 302, [("location", f"http://127.0.0.1:{self.port}/success?{query}")], b""
        if path == "/success":
            self._success_served = True
            return 200, html, SUCCESS_PAGE
        if path == "/cancel" and not self._finished:
            self._failure, self._finished = LoginError("the login was cancelled"), True
            return 200, html, b"<p>Login cancelled.</p>"
        return 404, html, b"<p>Not found.</p>"


def _plan_of(grant: oauth.TokenGrant) -> str:
    return identity_from_tokens(grant.access_token, grant.id_token).plan or ""
