"""Authentication is the default on the main listener: every route in the app's route table, HTTP and
WebSocket, answers 401 in its protocol's envelope without the key or with a wrong one; only the explicit
allow-list in `server/auth.py` is open."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import openai
import pytest
import trio
import websockets.sync.client
from websockets.exceptions import InvalidStatus

from codex_trio.server.api import create_api_app
from codex_trio.server.auth import OPEN_ROUTES
from codex_trio.server.dashboard import LOG_IN_ROUTE
from tests.conftest import api_key, running_gateway

# A plausible value for every path variable the routes use. A route with a new variable name fails the walk
# until a value is added here (and its authentication thought about).
PATH_VALUES = {"model_id": "gpt-5.5", "name": "gemini-2.5-pro", "tail": "gemini-2.5-pro:generateContent",
               "login_id": "login-0123", "account_id": "acct-0123", "key_id": "ck-0123",
               "proxy_id": "px-0123", "provider_id": "pv-0123"}
WRONG_KEYS = {"missing": {}, "wrong": {"authorization": "Bearer ct-not-the-key"}}


def concrete_path(rule: str) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1).rpartition(":")[2]
        assert name in PATH_VALUES, f"no sample value for <{match.group(1)}> in {rule}: add one to PATH_VALUES"
        return PATH_VALUES[name]

    return re.sub(r"<([^>]+)>", value, rule)


def route_table(gateway) -> tuple[list[tuple[str, str]], list[str]]:
    """(method, path) of every HTTP route and the path of every WebSocket route of the main listener's app."""
    http, sockets = [], []
    for rule in create_api_app(gateway).url_map.iter_rules():
        path = concrete_path(rule.rule)
        if rule.websocket:
            sockets.append(path)
        else:
            http += [(method, path) for method in sorted(rule.methods or ()) if method != "OPTIONS"]
    return http, sockets


def assert_refused_in_envelope(reply: httpx.Response, method: str, path: str) -> None:
    where = f"{method} {path}"
    assert reply.status_code == 401, (where, reply.status_code, reply.text[:200])
    if method == "HEAD":
        return  # no body to check
    body = reply.json()
    if path.startswith("/v1/messages"):
        assert body["type"] == "error" and body["error"]["type"] == "authentication_error", (where, body)
    elif path.startswith("/v1beta"):
        assert body["error"]["status"] == "UNAUTHENTICATED" and body["error"]["code"] == 401, (where, body)
    else:
        assert body["error"]["type"] == "authentication_error", (where, body)
        assert body["error"]["code"] == "invalid_api_key", (where, body)


def test_the_allow_list_is_exactly_the_health_probe_and_the_anthropic_probe():
    assert OPEN_ROUTES == {("GET", "/health"), ("HEAD", "/health"), ("HEAD", "/")}


async def test_every_route_in_the_table_needs_the_key(data_dir: Path):
    async with running_gateway(data_dir, install=True) as (gateway, url):
        http_routes, _ = route_table(gateway)
        # the aliases outside /v1 that used to be open are part of the walk
        assert ("POST", "/responses") in http_routes and ("POST", "/responses/review") in http_routes
        # logging in to the dashboard needs no key (the key is in the body); tests/web/test_login_gate.py and
        # the test below pin what it does without one
        refused = [route for route in http_routes if route not in OPEN_ROUTES and route != LOG_IN_ROUTE]
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for method, path in refused:
                for headers in WRONG_KEYS.values():
                    reply = await client.request(method, path, headers=headers, json={"model": "gpt-5.5"}
                                                 if method in ("POST", "PATCH") else None)
                    assert_refused_in_envelope(reply, method, path)
            # paths that match no route are refused alike (no 404 telling what exists)
            for path in ("/responses/other", "/v2/chat/completions", "/static/x", "/admin"):
                assert_refused_in_envelope(await client.post(path, json={}), "POST", path)
    assert len(refused) > 40


async def test_the_open_routes_answer_without_a_key(data_dir: Path):
    async with running_gateway(data_dir, install=True) as (gateway, url):
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            assert (await client.get("/health")).status_code == 200
            assert (await client.head("/health")).status_code == 200
            assert (await client.head("/")).status_code == 200
            # GET / is not the probe: it needs the key like everything else
            assert_refused_in_envelope(await client.get("/"), "GET", "/")
            preflight = await client.options("/v1/chat/completions", headers={
                "origin": "http://localhost:3000", "access-control-request-method": "POST"})
            assert preflight.status_code == 200 and preflight.content == b""
            assert "POST" in preflight.headers["allow"]


async def test_the_key_opens_the_former_aliases(data_dir: Path):
    async with running_gateway(data_dir, install=True) as (gateway, url):
        key = api_key(gateway)
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for path in ("/responses", "/responses/review"):
                reply = await client.post(path, headers={"authorization": f"Bearer {key}"}, json={"model": 5})
                assert reply.status_code == 400, reply.text  # past authentication, refused by the parser


def refused_upgrade(url: str, headers: dict[str, str]) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as caught:
        with websockets.sync.client.connect(url, additional_headers=headers, open_timeout=10):
            pass
    return caught.value


async def test_every_websocket_route_refuses_a_missing_or_wrong_key_with_401_json(data_dir: Path):
    async with running_gateway(data_dir, install=True) as (gateway, url):
        _, socket_paths = route_table(gateway)
        assert socket_paths == ["/v1/responses"]
        for path in socket_paths:
            for headers in WRONG_KEYS.values():
                error = await trio.to_thread.run_sync(refused_upgrade, "ws" + url[4:] + path, headers)
                assert error.response.status_code == 401
                assert error.response.headers["content-type"] == "application/json"
                body = json.loads(error.response.body)
                assert body["error"]["type"] == "authentication_error"
                assert body["error"]["code"] == "invalid_api_key"


def sdk_connect(base_url: str, key: str) -> BaseException:
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)
    try:
        with client.responses.connect() as connection:
            connection.send({"type": "response.create", "model": "gpt-5.5", "input": "hi"})
    except BaseException as error:  # what the SDK raises is what the test inspects
        return error
    raise AssertionError("the SDK connected with a wrong key")


async def test_openai_sdk_websocket_with_a_wrong_key_sees_401_and_the_json_error(data_dir: Path):
    async with running_gateway(data_dir, install=True) as (gateway, url):
        error = await trio.to_thread.run_sync(sdk_connect, f"{url}/v1", "ct-wrong")
    # This SDK raises the websockets handshake error as is; it carries the HTTP status and our JSON body.
    assert isinstance(error, InvalidStatus), repr(error)
    assert error.response.status_code == 401
    assert json.loads(error.response.body)["error"]["message"] == "Invalid API key."


async def test_the_dashboard_log_in_route_is_open_only_to_the_dashboard_page_with_the_key(data_dir: Path):
    async with running_gateway(data_dir, install=True) as (gateway, url):
        method, path = LOG_IN_ROUTE
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            own = {"origin": url}
            no_origin = await client.request(method, path, json={"key": api_key(gateway)})
            assert no_origin.status_code == 403 and "Origin" in no_origin.json()["error"]["message"]
            foreign = await client.request(method, path, json={"key": api_key(gateway)},
                                           headers={"origin": "http://127.0.0.1:1"})
            assert foreign.status_code == 403
            wrong = await client.request(method, path, json={"key": "ct-not-the-key"}, headers=own)
            assert_refused_in_envelope(wrong, method, path)
            right = await client.request(method, path, json={"key": api_key(gateway)}, headers=own)
            assert right.status_code == 200 and "codex_trio_session" in right.cookies
