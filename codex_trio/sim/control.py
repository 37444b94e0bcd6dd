"""The control API under `/_sim/` (for tests and for `codex-trio demo`); never recorded.

    GET    /_sim/requests                      recorded requests (JSON)
    DELETE /_sim/requests                      forget them
    GET    /_sim/accounts                      accounts with their current tokens
    POST   /_sim/accounts                      {"plan": "pro"} → add an account
    POST   /_sim/accounts/{id}/ban|unban|exhaust|reset
    GET    /_sim/clock                         {"now": …}
    POST   /_sim/clock/advance                 {"seconds": 18000}
    POST   /_sim/script                        a scenario rule ({"match": …, "reply": …, "times": …})
    DELETE /_sim/script                        drop every rule
    POST   /_sim/login-as                      {"account_id": …}: who /oauth/authorize approves as
    POST   /_sim/device/approve                {"user_code": …, "account_id": …}
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from .auth import Auth
from .backend import json_response
from .scenario import Rule
from .state import SimState
from .wire import HTTPRequest, HTTPResponse


class Control:
    def __init__(self, state: SimState, auth: Auth) -> None:
        self.state = state
        self.auth = auth

    def handle(self, request: HTTPRequest) -> HTTPResponse:
        try:
            body: Any = orjson.loads(request.body) if request.body else {}
        except orjson.JSONDecodeError:
            return json_response(400, {"detail": "control API bodies are JSON"})
        parts = request.path.strip("/").split("/")[1:]
        try:
            return self._route(request.method, parts, body)
        except ValidationError as exc:
            return json_response(400, {"detail": exc.errors(include_url=False, include_context=False)})
        except (KeyError, TypeError, ValueError) as exc:
            return json_response(400, {"detail": f"bad control request: {exc}"})

    def _route(self, method: str, parts: list[str], body: Any) -> HTTPResponse:
        state = self.state
        match method, parts:
            case "GET", ["requests"]:
                return json_response(200, [r.public() for r in state.requests])
            case "DELETE", ["requests"]:
                state.requests.clear()
                return json_response(200, {"ok": True})
            case "GET", ["accounts"]:
                return json_response(200, [a.public() for a in state.accounts.values()])
            case "POST", ["accounts"]:
                account = state.add_account(body.get("plan", "plus"), body.get("email") or
                                            f"sim{len(state.accounts) + 1}@example.com")
                return json_response(200, account.public())
            case "POST", ["accounts", account_id, action]:
                account = state.accounts.get(account_id)
                if account is None:
                    return json_response(404, {"detail": f"no account {account_id}"})
                now = state.clock.now()
                if action == "ban":
                    account.banned = True
                elif action == "unban":
                    account.banned = False
                elif action == "exhaust":
                    account.quota.exhaust(now, body.get("limit_id", "codex"))
                elif action == "reset":
                    account.quota.reset()
                else:
                    return json_response(404, {"detail": f"unknown action {action}"})
                return json_response(200, account.public())
            case "GET", ["clock"]:
                return json_response(200, {"now": state.clock.now()})
            case "POST", ["clock", "advance"]:
                state.clock.advance(float(body["seconds"]))
                return json_response(200, {"now": state.clock.now()})
            case "POST", ["script"]:
                state.rules.add(Rule.model_validate(body))
                return json_response(200, {"ok": True})
            case "DELETE", ["script"]:
                state.rules.clear()
                return json_response(200, {"ok": True})
            case "POST", ["login-as"]:
                if body["account_id"] not in state.accounts:
                    return json_response(404, {"detail": "no such account"})
                state.login_account_id = body["account_id"]
                return json_response(200, {"ok": True})
            case "POST", ["device", "approve"]:
                account_id = body.get("account_id") or state.login_account_id
                if not self.auth.approve_device(body["user_code"], account_id):
                    return json_response(404, {"detail": "unknown user_code or account"})
                return json_response(200, {"ok": True})
        return json_response(404, {"detail": "Not Found"})
