"""The chatgpt.com `/backend-api` side of the simulator.

Strict like the real backend: a token it issued and not expired (401), a matching ChatGPT-Account-Id
(401), a live account (403), `store:false` + `stream:true`, no unsupported parameters (400 with the real
`{"detail": …}` bodies), a model in the account's plan, quota left (429 `usage_limit_reached`). Every
answer carries the account's rate-limit headers (spec/upstream.md §6.2).
"""

from __future__ import annotations

import email.utils
import logging
import secrets
from typing import Any, AsyncIterator
from urllib.parse import parse_qsl

import orjson
import trio

from . import transcribe
from .scenario import Reply, facts_of
from .state import RecordedRequest, SimAccount, SimState, new_id
from .turns import TurnPlan, plan_prewarm, plan_turn
from .validation import (
    LITE_FLAG, LITE_HEADER, Rejection, check_body, check_effort, check_tool_pairs, check_tool_shape, model_not_supported,
)
from .wire import Disconnect, HTTPRequest, HTTPResponse, WebSocketAccept, WebSocketChannel

log = logging.getLogger("codex_trio.sim")

JSON = "application/json"
SSE = "text/event-stream; charset=utf-8"
COMPACT_KEYS = frozenset({"model", "input", "instructions", "tools", "parallel_tool_calls", "reasoning", "text",
                          "prompt_cache_key", "client_metadata"})

_SERVER_ERRORS = {
    500: ("server_error", "An error occurred while processing your request. You can retry your request."),
    502: ("bad_gateway", "Bad gateway."),
    503: ("server_is_overloaded", "Our servers are currently overloaded. Please try again later."),
    504: ("gateway_timeout", "Gateway timeout."),
}


def json_response(status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> HTTPResponse:
    return HTTPResponse(status, [("content-type", JSON), *(headers or [])], orjson.dumps(body))


def _common_headers() -> list[tuple[str, str]]:
    return [("x-request-id", str(secrets.token_hex(16))), ("cf-ray", secrets.token_hex(8) + "-SIM")]


TRANSCRIBE_MODEL = "transcribe"  # what scenario rules match for `POST /transcribe` (it names no model)


class Backend:
    def __init__(self, state: SimState) -> None:
        self.state = state
        # __cf_bm values handed out -> expiry (sim clock): a request that sends a live one gets no new one
        self._bot_cookies: dict[str, float] = {}
        # (account, prompt_cache_key) -> input tokens of the last request: the next one reuses that prefix
        self._prompt_cache: dict[tuple[str, str], int] = {}
        self._routes = {
            ("GET", "/wham/accounts/check"): self.accounts_check,
            ("GET", "/codex/models"): self.models,
            ("POST", "/codex/responses"): self.responses,
            ("GET", "/codex/responses"): self.websocket,
            ("POST", "/codex/responses/compact"): self.compact,
            ("GET", "/wham/usage"): self.usage,
            ("GET", "/codex/usage"): self.usage,
            ("GET", "/wham/rate-limit-reset-credits"): self.reset_credits,
            ("POST", "/wham/rate-limit-reset-credits/consume"): self.consume_reset_credit,
            ("GET", "/wham/settings/user"): self.settings_user,
            ("GET", "/wham/security-setup"): self.security_setup,
            ("POST", "/ps/mcp"): self.ps_mcp,
            ("POST", "/transcribe"): self.transcribe,
        }

    async def handle(self, request: HTTPRequest, record: RecordedRequest, sub_path: str
                     ) -> HTTPResponse | WebSocketAccept:
        route = self._routes.get((request.method, sub_path))
        if route is None:
            known = any(path == sub_path for _, path in self._routes)
            return json_response(405 if known else 404, {"detail": "Method Not Allowed" if known else "Not Found"})
        account, rejection = self.authenticate(request)
        if rejection is not None:
            return self._with_bot_cookie(request, json_response(rejection.status, rejection.body, _common_headers()))
        assert account is not None
        result = await route(request, record, account)
        if isinstance(result, HTTPResponse) and not any(k == "x-codex-primary-used-percent" for k, _ in result.headers):
            result.headers += account.quota.headers(self.state.clock.now())
        return self._with_bot_cookie(request, result)

    def _with_bot_cookie(self, request: HTTPRequest, result: HTTPResponse | WebSocketAccept
                         ) -> HTTPResponse | WebSocketAccept:
        """Cloudflare sits in front of every chatgpt.com path: an answer to a request that does not carry a live
        `__cf_bm` sets one (its bot-management session, 30 minutes)."""
        now = self.state.clock.now()
        set_here = [v for k, v in result.headers if k == "set-cookie" and v.startswith("__cf_bm=")]
        for value in set_here:  # a scripted one (a solved challenge)
            self._bot_cookies[value.split(";", 1)[0].split("=", 1)[1]] = now + BOT_COOKIE_SECONDS
        if set_here:
            return result
        sent = _cookie_value(request.header("cookie"), "__cf_bm")
        if sent is not None and self._bot_cookies.get(sent, 0.0) > now:
            return result
        header = bot_management_cookie(now)
        self._bot_cookies[header[1].split(";", 1)[0].split("=", 1)[1]] = now + BOT_COOKIE_SECONDS
        result.headers.append(header)
        return result

    # ------------------------------------------------------------------ checks

    def authenticate(self, request: HTTPRequest) -> tuple[SimAccount | None, Rejection | None]:
        auth = request.header("authorization") or ""
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return None, Rejection(401, {"error": {
                "message": "Missing bearer or basic authentication in header", "type": "invalid_request_error",
                "param": None, "code": None}})
        account_id, problem = self.state.issuer.check_access(auth[7:].strip(), self.state.clock.now())
        if account_id is None:
            message = ("Provided authentication token is expired. Please try signing in again."
                       if problem == "token_expired" else
                       "Could not parse your authentication token. Please try signing in again.")
            return None, Rejection(401, {"error": {"message": message, "type": "invalid_request_error",
                                                   "param": None, "code": problem}})
        if request.header("chatgpt-account-id") != account_id:
            return None, Rejection(401, {"error": {
                "message": "The ChatGPT-Account-Id header does not match the authenticated account.",
                "type": "invalid_request_error", "param": None, "code": "account_mismatch"}})
        account = self.state.accounts[account_id]
        if account.banned:
            return None, Rejection(403, banned_body())
        return account, None

    def rate_headers(self, account: SimAccount) -> list[tuple[str, str]]:
        return _common_headers() + account.quota.headers(self.state.clock.now())

    def check_turn(self, account: SimAccount, body: dict, history: list[dict], *,
                   lite_declared: bool | None = None) -> Rejection | None:
        """`lite_declared`: whether the request said it is a responses-lite one (None: a call without tools,
        such as compaction, where the tool shape is not checked)."""
        model = body["model"]
        if not self.state.catalog.allowed(model, account.plan):
            return model_not_supported(model)
        rejection = check_effort(body, self.state.catalog.efforts(model))
        if rejection is None and lite_declared is not None:
            rejection = check_tool_shape(body, lite_model=self.state.catalog.is_lite(model),
                                         lite_declared=lite_declared)
        rejection = rejection or check_tool_pairs(history)
        if rejection is not None:
            return rejection
        blocked = account.quota.blocked(model, self.state.clock.now())
        if blocked is not None:
            return Rejection(429, account.quota.limit_error(*blocked, self.state.clock.now()))
        return None

    def plan(self, account: SimAccount, body: dict, history: list[dict], size: int
              ) -> tuple[Reply | None, TurnPlan | None]:
        """The reply rule and, when the reply streams, the plan (usage is booked when planned)."""
        now = self.state.clock.now()
        facts = facts_of(body, history, account.account_id)
        reply = self.state.rules.pick(facts)
        if reply is not None and (reply.http_status or reply.rate_limit or reply.ban or reply.cloudflare_404
                                  or reply.cloudflare_challenge):
            return reply, None
        input_tokens = max(1, size // 4)
        cached = 0
        cache_key = body.get("prompt_cache_key")
        if isinstance(cache_key, str):
            previous = self._prompt_cache.get((account.account_id, cache_key), 0)
            cached = min(previous, input_tokens) // 128 * 128  # cache hits come in 128-token blocks
            self._prompt_cache[(account.account_id, cache_key)] = input_tokens
        plan = plan_turn(body, reply, facts, input_tokens=input_tokens, cached_tokens=cached, created_at=int(now),
                         response_id="resp_" + secrets.token_hex(16), new_id=new_id)
        account.quota.record(body["model"], plan.usage_tokens, now)
        return reply, plan

    def scripted_error(self, account: SimAccount, reply: Reply) -> tuple[int, dict | None]:
        """(status, JSON body or None for an empty body) of a reply that is an HTTP error."""
        now = self.state.clock.now()
        if reply.ban:
            account.banned = True
            return 403, banned_body()
        if reply.cloudflare_404:
            return 404, None
        if reply.rate_limit is not None:
            reset_in = reply.rate_limit.resets_in_seconds
            return 429, {"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                                   "plan_type": account.plan, "resets_at": int(now) + reset_in,
                                   "resets_in_seconds": reset_in}}
        status = reply.http_status or 500
        code, message = _SERVER_ERRORS.get(status, ("http_error", f"HTTP {status}"))
        return status, {"error": {"message": message, "type": "server_error" if status >= 500 else "invalid_request_error",
                                  "param": None, "code": code}}

    # ------------------------------------------------------------------ endpoints

    async def accounts_check(self, request: HTTPRequest, record: RecordedRequest, account: SimAccount) -> HTTPResponse:
        entry = {"id": account.account_id, "account_id": account.account_id, "plan_type": account.plan,
                 "name": None, "profile_picture_url": None,
                 "structure": "workspace" if account.plan in ("team", "business", "enterprise", "edu") else "personal",
                 "workspace_backend_origin": "NO_CONSTRAINT", "account_routing_override": "NO_CONSTRAINT"}
        return json_response(200, {"accounts": [entry], "account_ordering": [account.account_id],
                                   "default_account_id": account.account_id}, _common_headers())

    async def models(self, request: HTTPRequest, record: RecordedRequest, account: SimAccount) -> HTTPResponse:
        version = dict(_query_pairs(request.query)).get("client_version")
        if not version:
            return json_response(400, {"detail": "client_version is required"}, _common_headers())
        body, etag = self.state.catalog.for_plan(account.plan, version)
        headers = [("etag", etag), ("x-models-etag", etag)] + _common_headers()
        if request.header("if-none-match") == etag:
            return HTTPResponse(304, headers)
        return HTTPResponse(200, [("content-type", JSON)] + headers, body)

    async def responses(self, request: HTTPRequest, record: RecordedRequest, account: SimAccount) -> HTTPResponse:
        headers = self.rate_headers(account)
        if not isinstance(record.body, dict):
            return json_response(400, {"detail": "We could not parse the JSON body of your request."}, headers)
        body = record.body
        lite = (request.header(LITE_HEADER) or "").strip().lower() == "true"
        rejection = check_body(body, websocket=False) or self.check_turn(account, body, body["input"],
                                                                         lite_declared=lite)
        if rejection is not None:
            return json_response(rejection.status, rejection.body, headers)
        reply, plan = self.plan(account, body, body["input"], len(request.body))
        if plan is None:
            assert reply is not None
            if reply.cloudflare_challenge:  # the edge answers with an HTML page
                return HTTPResponse(403, cloudflare_challenge_headers(), CLOUDFLARE_CHALLENGE_PAGE)
            status, payload = self.scripted_error(account, reply)
            headers = self.rate_headers(account)
            if payload is None:
                return HTTPResponse(status, headers)
            return json_response(status, payload, headers)
        if plan.first_byte_delay:
            await trio.sleep(plan.first_byte_delay)
        head = [("content-type", SSE), ("cache-control", "no-cache"), ("x-codex-turn-state", new_id("ts")),
                ("x-models-etag", self.state.catalog.for_plan(account.plan, request.header("version"))[1]),
                ("x-reasoning-included", "true")] + headers
        if reply is not None and reply.set_cookies:
            head += cloudflare_cookies(self.state.clock.now())
        return HTTPResponse(200, head, stream=sse_stream(plan))

    async def websocket(self, request: HTTPRequest, record: RecordedRequest, account: SimAccount
                        ) -> HTTPResponse | WebSocketAccept:
        if (request.header("upgrade") or "").lower() != "websocket" or not self.state.config.websocket:
            return json_response(426, {"detail": "Upgrade Required"}, self.rate_headers(account))
        if request.header("sec-websocket-version") != "13" or not request.header("sec-websocket-key"):
            return json_response(400, {"detail": "Invalid WebSocket handshake"}, self.rate_headers(account))
        # An account out of quota for the model it names is refused at the upgrade, reset time in the body.
        hint = (request.header("x-codex-routing-hint") or "").removeprefix("model=") or None
        blocked = account.quota.blocked(hint, self.state.clock.now()) if hint else None
        if blocked is not None:
            return json_response(429, account.quota.limit_error(*blocked, self.state.clock.now()),
                                 self.rate_headers(account))
        session = _Socket(self, account, record)
        return WebSocketAccept(self.rate_headers(account) + [("x-codex-turn-state", new_id("ts"))], session.run,
                               allow_deflate=self.state.config.deflate)

    async def compact(self, request: HTTPRequest, record: RecordedRequest, account: SimAccount) -> HTTPResponse:
        headers = self.rate_headers(account)
        body = record.body
        if not isinstance(body, dict):
            return json_response(400, {"detail": "We could not parse the JSON body of your request."}, headers)
        for key in body:
            if key not in COMPACT_KEYS:
                return json_response(400, {"detail": f"Unsupported parameter: {key}"}, headers)
        if not isinstance(body.get("model"), str) or not isinstance(body.get("input"), list):
            return json_response(400, {"detail": "model and input are required"}, headers)
        rejection = self.check_turn(account, body, [i for i in body["input"] if isinstance(i, dict)])
        if rejection is not None:
            return json_response(rejection.status, rejection.body, headers)
        kept = [i for i in body["input"] if isinstance(i, dict) and i.get("type", "message") == "message"
                and i.get("role") == "user"]
        summary = "gAAAAAB" + secrets.token_urlsafe(96)
        account.quota.record(body["model"], max(1, len(request.body) // 4) + 200, self.state.clock.now())
        return json_response(200, {"output": kept + [{"type": "compaction", "encrypted_content": summary}]}, headers)

    async def transcribe(self, request: HTTPRequest, record: RecordedRequest, account: SimAccount) -> HTTPResponse:
        """Dictation (`transcribe.py` says how strict and why). Scenario rules reach it as the model
        `TRANSCRIBE_MODEL`, or by account: an HTTP status, a rate limit, a ban or a Cloudflare block."""
        headers = self.rate_headers(account)
        if request.connection is not None and request.connection.alpn is not None:  # not the OpenSSL hello
            return HTTPResponse(403, cloudflare_challenge_headers(), CLOUDFLARE_CHALLENGE_PAGE)
        rejection = transcribe.check_client(request.header("originator"), request.header("user-agent"))
        form = None
        if rejection is None:
            form, rejection = transcribe.read_form(request.header("content-type"), request.body)
        if rejection is not None:
            return json_response(rejection.status, rejection.body, headers)
        assert form is not None
        reply = self.state.rules.pick(facts_of({"model": TRANSCRIBE_MODEL}, [], account.account_id))
        if reply is not None and reply.cloudflare_challenge:
            return HTTPResponse(403, cloudflare_challenge_headers(), CLOUDFLARE_CHALLENGE_PAGE)
        if reply is not None and (reply.http_status or reply.rate_limit or reply.ban or reply.cloudflare_404):
            status, payload = self.scripted_error(account, reply)
            return HTTPResponse(status, headers) if payload is None else json_response(status, payload, headers)
        return json_response(200, {"text": transcribe.transcript_of(form)}, headers)

    async def usage(self, request: HTTPRequest, record: RecordedRequest, account: SimAccount) -> HTTPResponse:
        return json_response(200, account.quota.usage_json(self.state.clock.now(), account.reset_credits),
                             self.rate_headers(account))

    async def reset_credits(self, request: HTTPRequest, record: RecordedRequest, account: SimAccount) -> HTTPResponse:
        now = int(self.state.clock.now())
        credits = [{"id": f"rlrc_{account.account_id[:8]}_{n}", "status": "available", "reset_type": "codex",
                    "granted_at": now - 86400, "expires_at": now + 30 * 86400, "redeemed_at": None}
                   for n in range(account.reset_credits)]
        return json_response(200, {"available_count": account.reset_credits, "credits": credits,
                                   "next_expires_at": credits[0]["expires_at"] if credits else None}, _common_headers())

    async def consume_reset_credit(self, request: HTTPRequest, record: RecordedRequest, account: SimAccount
                                   ) -> HTTPResponse:
        body = record.body
        if not isinstance(body, dict) or not isinstance(body.get("redeem_request_id"), str):
            return json_response(400, {"detail": "redeem_request_id is required"}, _common_headers())
        if account.reset_credits <= 0:
            return json_response(409, {"detail": "No rate limit reset credits available"}, _common_headers())
        account.reset_credits -= 1
        account.quota.reset()
        return json_response(200, {"status": "redeemed", "redeem_request_id": body["redeem_request_id"],
                                   "available_count": account.reset_credits}, self.rate_headers(account))

    async def settings_user(self, request: HTTPRequest, record: RecordedRequest, account: SimAccount) -> HTTPResponse:
        return json_response(200, {"user_id": account.user_id, "account_id": account.account_id,
                                   "settings": {"codex_cloud_enabled": True, "training_allowed": False}},
                             _common_headers())

    async def security_setup(self, request: HTTPRequest, record: RecordedRequest, account: SimAccount) -> HTTPResponse:
        return json_response(200, {"required": False, "completed": True}, _common_headers())

    async def ps_mcp(self, request: HTTPRequest, record: RecordedRequest, account: SimAccount) -> HTTPResponse:
        message = record.body
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return json_response(400, {"jsonrpc": "2.0", "id": None,
                                       "error": {"code": -32700, "message": "Parse error"}})
        method, ident = message.get("method"), message.get("id")
        if ident is None:  # a notification
            return HTTPResponse(202, _common_headers())
        if method == "initialize":
            result: dict[str, Any] = {"protocolVersion": (message.get("params") or {}).get("protocolVersion", "2025-06-18"),
                                      "capabilities": {"tools": {"listChanged": False}},
                                      "serverInfo": {"name": "codex-apps", "version": "1.0.0"}}
        elif method == "tools/list":
            result = {"tools": []}
        elif method == "ping":
            result = {}
        else:
            return json_response(200, {"jsonrpc": "2.0", "id": ident,
                                       "error": {"code": -32601, "message": f"Method not found: {method}"}})
        return json_response(200, {"jsonrpc": "2.0", "id": ident, "result": result},
                             [("mcp-session-id", account.account_id)])


class _Socket:
    """One Responses WebSocket: serial `response.create` frames, history chained by previous_response_id."""

    def __init__(self, backend: Backend, account: SimAccount, record: RecordedRequest) -> None:
        self.backend = backend
        self.account = account
        self.record = record
        self.history: dict[str, list[dict]] = {}
        self.opened_at = backend.state.clock.now()
        backend.state.sockets.add(self)

    async def send_error(self, channel: WebSocketChannel, status: int, error: dict) -> None:
        frame = {"type": "error", "status_code": status, "error": error,
                 "headers": dict(self.account.quota.headers(self.backend.state.clock.now()))}
        await channel.send_texts([orjson.dumps(frame).decode()])

    async def run(self, channel: WebSocketChannel) -> None:
        try:
            await self._serve(channel)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.record.client_gone = True  # a client that aborts mid-response (its user went away)
            await channel.abort()
        except Exception:
            log.exception("simulator WebSocket session failed")
            await channel.abort()

    async def _serve(self, channel: WebSocketChannel) -> None:
        state = self.backend.state
        cap = state.config.ws_age_cap_seconds
        while True:
            text = await channel.receive_text()
            if text is None:
                return
            try:
                body = orjson.loads(text)
            except orjson.JSONDecodeError:
                body = None
            self.record.ws_messages.append(body if body is not None else text)
            if state.clock.now() - self.opened_at >= cap:
                await self.send_error(channel, 400, {
                    "type": "invalid_request_error", "code": "websocket_connection_limit_reached",
                    "message": f"Responses websocket connection limit reached ({int(cap // 60)} minutes). "
                               "Create a new websocket connection to continue."})
                await channel.close(1000, "connection age limit")
                return
            if self.account.banned:
                await self.send_error(channel, 403, banned_body()["error"])
                continue
            rejection = check_body(body, websocket=True)
            previous = body.get("previous_response_id") if isinstance(body, dict) else None
            if rejection is None and previous is not None and previous not in self.history:
                rejection = Rejection(400, {"error": {
                    "type": "invalid_request_error", "code": "previous_response_not_found", "param": "previous_response_id",
                    "message": f"Previous response with id '{previous}' not found."}})
            history = (self.history.get(previous, []) if previous else []) + (
                body["input"] if rejection is None else [])
            if rejection is None:
                metadata = body.get("client_metadata") if isinstance(body.get("client_metadata"), dict) else {}
                rejection = self.backend.check_turn(self.account, body, history,
                                                    lite_declared=metadata.get(LITE_FLAG) == "true")
            if rejection is not None:
                error = rejection.body.get("error") or {"type": "invalid_request_error",
                                                        "message": rejection.body.get("detail")}
                await self.send_error(channel, rejection.status, error)
                continue
            now = state.clock.now()
            limits = self.account.quota.rate_limits_event(body["model"], now)
            if body.get("generate") is False:
                plan = plan_prewarm("resp_" + secrets.token_hex(16), body["model"], int(now))
            else:
                reply, plan = self.backend.plan(self.account, body, history, len(orjson.dumps(history)))
                if plan is None:
                    assert reply is not None
                    status, payload = self.backend.scripted_error(self.account, reply)
                    if payload is None or reply.cloudflare_challenge:  # edge answers cannot be framed: drop it
                        await channel.abort()
                        return
                    await self.send_error(channel, status, payload["error"])
                    continue
            self.history[plan.response_id] = history + plan.output
            if plan.first_byte_delay:
                await trio.sleep(plan.first_byte_delay)
            if not await _send_steps(channel, limits, plan):
                await channel.abort()
                return


async def _send_steps(channel: WebSocketChannel, prefix: list[dict], plan: TurnPlan) -> bool:
    """Send a plan as text frames (zero-delay runs in one write); False when the plan drops the connection."""
    batch = [orjson.dumps(e).decode() for e in prefix]
    for step in plan.steps:
        if step.delay > 0:
            if batch:
                await channel.send_texts(batch)
                batch = []
            await trio.sleep(step.delay)
        if step.event is None:
            if batch:
                await channel.send_texts(batch)
            return False
        batch.append(orjson.dumps(step.event).decode())
    if batch:
        await channel.send_texts(batch)
    return True


async def sse_stream(plan: TurnPlan) -> AsyncIterator[bytes]:
    """SSE blocks `event: <type>` + `data: <json>`; events due at the same moment go out in one chunk."""
    batch: list[bytes] = []
    for step in plan.steps:
        if step.delay > 0:
            if batch:
                yield b"".join(batch)
                batch = []
            await trio.sleep(step.delay)
        if step.event is None:
            if batch:
                yield b"".join(batch)
            raise Disconnect
        batch.append(b"event: " + step.event["type"].encode() + b"\ndata: " + orjson.dumps(step.event) + b"\n\n")
    if batch:
        yield b"".join(batch)


def banned_body() -> dict:
    return {"error": {"message": "Your OpenAI account has been deactivated, please check your email for more "
                                 "information. If you feel this is an error, contact us through our help center "
                                 "at help.openai.com.", "type": "invalid_request_error", "param": None,
                      "code": "account_deactivated"}}


CLOUDFLARE_CHALLENGE_PAGE = (b"<!DOCTYPE html><html lang=\"en-US\"><head><title>Just a moment...</title></head>"
                             b"<body><noscript>Enable JavaScript and cookies to continue</noscript></body></html>")


def cloudflare_challenge_headers() -> list[tuple[str, str]]:
    return [("content-type", "text/html; charset=UTF-8"), ("cf-mitigated", "challenge"),
            ("cache-control", "private, max-age=0, no-store, no-cache, must-revalidate"), ("server", "cloudflare"),
            ("cf-ray", secrets.token_hex(8) + "-SIM")]


BOT_COOKIE_SECONDS = 1800


def bot_management_cookie(now: float) -> tuple[str, str]:
    expires = email.utils.formatdate(now + BOT_COOKIE_SECONDS, usegmt=True)
    return ("set-cookie", f"__cf_bm={secrets.token_urlsafe(32)}-{int(now)}-1.0.1.1-{secrets.token_urlsafe(48)}; "
                          f"path=/; expires={expires}; domain=.chatgpt.com; HttpOnly; Secure; SameSite=None")


def _cookie_value(header: str | None, name: str) -> str | None:
    for part in (header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def cloudflare_cookies(now: float) -> list[tuple[str, str]]:
    """What a solved challenge leaves: a new bot-management cookie and the clearance."""
    cf_expires = email.utils.formatdate(now + 365 * 86400, usegmt=True)
    return [
        bot_management_cookie(now),
        ("set-cookie", f"cf_clearance={secrets.token_urlsafe(40)}-{int(now)}-1.2.1.1-{secrets.token_urlsafe(64)}; "
                       f"Path=/; Expires={cf_expires}; Domain=.chatgpt.com; HttpOnly; Secure; SameSite=None; "
                       "Partitioned"),
    ]


def _query_pairs(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)
