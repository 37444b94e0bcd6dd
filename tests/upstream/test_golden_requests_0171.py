"""Every captured request of Codex CLI 0.171.0, rebuilt by our builders with the 0.171.0 release profile and
compared strictly (see golden.py): `accept-encoding: zstd,gzip` where the capture has it (HTTP/1.1: before
`host`; HTTP/2: last regular header; never on the WebSocket upgrade), the lite models' `additional_tools`
item, the rest as in 0.169.0. The captures are classified from their index, so a new capture file without
a test fails `test_every_captured_request_is_covered`."""

from __future__ import annotations

import json
from typing import Any

import pytest
import zstandard

from codex_trio.upstream import body as B
from codex_trio.upstream import headers as H
from codex_trio.upstream.context import ModelTraits
from codex_trio.upstream.identity import Identity, load_fingerprint

from .golden import ACCOUNT_ID, assert_body, assert_headers, header, metadata_of
from .test_golden_requests import AUTH, canonical_request, thread_for, turn_for
from tests.conftest import FIXTURES as ALL_FIXTURES

CONFIG = load_fingerprint()
RELEASE = "0.171.0"
FIXTURES = ALL_FIXTURES / CONFIG.releases[RELEASE].fixtures
INDEX = json.loads((FIXTURES / "index.json").read_text(encoding="utf-8"))
# The catalog embedded in 0.171.0: gpt-6.2-sol (the default) is the one full entry of the shape file.
SOL_ENTRY = json.loads((FIXTURES / "stand-in-replies/codex-models.response.shape.json").read_text())[
    "example_entry_shortened"]
TRAITS = {
    "gpt-6.2-sol": ModelTraits.from_catalog(SOL_ENTRY),
    "gpt-5.5": ModelTraits(responses_lite=False, node_repl_auto_review_required=False, parallel_tool_calls=True),
}
HOST = {"chatgpt.com": "chatgpt.com", "auth": "auth.openai.com"}


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def identity_for(name: str) -> Identity:
    if name.startswith("app-server/"):
        return Identity.from_config(CONFIG, "app-server", release=RELEASE, client_name="capture_test",
                                    client_version="0.0.1")
    return Identity.from_config(CONFIG, "codex-exec", release=RELEASE)


def files(request_prefix: str) -> list[str]:
    return [e["file"] for e in INDEX if e["request"].startswith(request_prefix)]


def on_the_wire(fixture: dict[str, Any], ident: Identity, headers: list[tuple[str, str]], host: str,
                content_length: int | None = None) -> list[tuple[str, str]]:
    wire = H.http1_wire(headers, host, content_length, accept_encoding=ident.accept_encoding)
    return wire if fixture["transport"]["http_version"] == "HTTP/1.1" else H.http2_wire(wire)


def test_the_release_profile_says_what_differs() -> None:
    assert CONFIG.default_release == RELEASE
    assert CONFIG.releases[RELEASE].accept_encoding == "zstd,gzip"
    assert CONFIG.releases["0.169.0"].accept_encoding is None
    assert Identity.from_config(CONFIG, "codex-exec").version == RELEASE
    with pytest.raises(ValueError, match="no verified profile"):
        Identity.from_config(CONFIG, "codex-exec", release="0.170.0")


SIMPLE_GETS = {
    # routing discovery runs in parallel with initialisation: captured both before and after it
    "/backend-api/wham/accounts/check": lambda ident, init: H.accounts_check_headers(ident, AUTH, initialised=init),
    "/backend-api/codex/models": lambda ident, init: H.models_headers(ident, AUTH, initialised=init),
    "/backend-api/wham/settings/user": lambda ident, init: H.settings_user_headers(ident, AUTH),
    "/backend-api/wham/usage": lambda ident, init: H.usage_headers(ident, AUTH),
    "/backend-api/wham/rate-limit-reset-credits": lambda ident, init: H.rate_limit_reset_credits_headers(ident, AUTH),
}
GET_FIXTURES = [f for path in SIMPLE_GETS for f in files(f"GET {path}")]


@pytest.mark.parametrize("name", GET_FIXTURES)
def test_simple_get_headers(name: str) -> None:
    fixture = load(name)
    path = fixture["path"]
    ident = identity_for(name)
    initialised = "(" in header(fixture, "user-agent").split(") ", 1)[1]
    built = SIMPLE_GETS[path](ident, initialised)
    assert_headers(on_the_wire(fixture, ident, built, HOST["chatgpt.com"]), fixture)
    if path == "/backend-api/codex/models":
        assert fixture["query"] == [["client_version", RELEASE]]


UPGRADE_FIXTURES = [f for f in files("GET /backend-api/codex/responses")]


@pytest.mark.parametrize("name", UPGRADE_FIXTURES)
def test_websocket_upgrade_headers_carry_no_accept_encoding(name: str) -> None:
    fixture = load(name)
    meta = metadata_of(fixture["headers"])
    ident = identity_for(name)
    built = H.websocket_headers(ident, AUTH, thread_for(meta), model=meta["model"],
                                reasoning_effort=meta["reasoning_effort"], traits=TRAITS[meta["model"]])
    assert_headers(H.websocket_wire(built, HOST["chatgpt.com"], header(fixture, "sec-websocket-key")), fixture)


RESPONSES_FIXTURES = files("POST /backend-api/codex/responses")


def client_request(captured: dict[str, Any], traits: ModelTraits, *, http: bool) -> dict[str, Any]:
    """What an adapter hands over, as for 0.169.0 — but for a lite model with the tools as a client sends
    them: top-level `tools` (the `functions` namespace's tools), the rest of the captured item beside them."""
    request = canonical_request(captured, http=http)
    items = request.get("input") or []
    if traits.responses_lite and items and B.is_additional_tools(items[0]):
        item = items[0]
        functions = next(e for e in item["tools"] if e.get("name") == B.FUNCTIONS_NAMESPACE)
        rest = [e for e in item["tools"] if e is not functions]
        request["input"] = [{**item, "tools": rest}, *items[1:]]
        request["tools"] = functions["tools"]
    return request


@pytest.mark.parametrize("name", RESPONSES_FIXTURES)
def test_responses_post(name: str) -> None:
    fixture = load(name)
    captured = fixture["body"]
    meta = metadata_of(fixture["headers"])
    ident = identity_for(name)
    thread, turn = thread_for(meta), turn_for(meta)
    traits = TRAITS[captured["model"]]

    built = B.responses_body(client_request(captured, traits, http=True), ident, thread, turn, traits=traits)
    aligned_bytes = assert_body(built, captured)
    wire = B.zstd_compress(aligned_bytes, ident.zstd_level)
    assert abs(len(wire) - fixture["body_wire"]["wire_bytes"]) < 64
    assert zstandard.ZstdDecompressor().decompressobj().decompress(wire) == aligned_bytes

    built_headers = H.responses_headers(ident, AUTH, thread, turn, model=built["model"],
                                        reasoning_effort=B.reasoning_effort_of(built), traits=traits)
    assert_headers(on_the_wire(fixture, ident, built_headers, HOST["chatgpt.com"], len(wire)), fixture)


def test_lite_tools_become_the_functions_namespace_of_a_new_additional_tools_item() -> None:
    # a client that knows nothing of Codex: only its function tools, no additional_tools item of its own
    fixture = load("exec-sse-tool/01-codex-responses.json")
    captured = fixture["body"]
    meta = metadata_of(fixture["headers"])
    functions = captured["input"][0]["tools"][0]["tools"]
    request = {"model": "gpt-6.2-sol", "input": captured["input"][1:], "tools": functions}
    built = B.responses_body(request, identity_for("exec"), thread_for(meta), turn_for(meta),
                             traits=TRAITS["gpt-6.2-sol"])
    assert "tools" not in built
    item = built["input"][0]
    assert list(item) == ["type", "id", "role", "tools"] and item["type"] == "additional_tools"
    assert item["role"] == "developer" and item["id"].startswith("at_")
    assert item["tools"] == [{"type": "namespace", "name": "functions", "description": "", "tools": functions}]
    assert built["input"][1:] == captured["input"][1:]
    # the next turn: the same tools, a longer history: the same item (the WebSocket chain and the cache hold)
    follow_up = [*request["input"], {"type": "message", "role": "user", "content": [{"type": "input_text",
                                                                                    "text": "again"}]}]
    again = B.responses_body({**request, "input": follow_up}, identity_for("exec"), thread_for(meta),
                             turn_for(meta), traits=TRAITS["gpt-6.2-sol"])
    assert again["input"][0] == item and again["input"][1:] == follow_up
    # a client that sends the item back with the same tools again does not get them twice
    resent = B.responses_body({**request, "input": built["input"]}, identity_for("exec"), thread_for(meta),
                              turn_for(meta), traits=TRAITS["gpt-6.2-sol"])
    assert resent["input"] == built["input"]


WS_FRAMES = files("WebSocket text frame")


@pytest.mark.parametrize("name", WS_FRAMES)
def test_websocket_response_create_frames(name: str) -> None:
    captured = load(name)["message"]
    cm = captured["client_metadata"]
    meta = json.loads(cm["x-codex-turn-metadata"])
    prewarm = captured.get("generate") is False
    traits = TRAITS[captured["model"]]
    request = client_request(captured, traits, http=False)
    built = B.responses_body(request, identity_for("exec"), thread_for(meta), None if prewarm else turn_for(meta),
                             transport="websocket", traits=traits,
                             previous_response_id=captured.get("previous_response_id"), prewarm=prewarm,
                             ws_request_start_ms=int(cm["x-codex-ws-stream-request-start-ms"]))
    assert_body(built, captured)


MCP_FIXTURES = files("POST /backend-api/ps/mcp")


@pytest.mark.parametrize("name", MCP_FIXTURES)
def test_mcp_initialize(name: str) -> None:
    fixture = load(name)
    ident = identity_for(name)
    body = B.mcp_initialize_body(ident)
    assert body == json.dumps(fixture["body"], separators=(",", ":")).encode()
    built = H.mcp_headers(ident, AUTH)
    names = [n for n, _ in fixture["headers"]]
    if names.index("originator") > names.index("x-openai-product-sku"):  # the other hash-map order
        built[1], built[2] = built[2], built[1]
    assert_headers(on_the_wire(fixture, ident, built, HOST["chatgpt.com"], len(body)), fixture)


@pytest.mark.parametrize("name,reason,initialised", [
    ("oauth/refresh-proactive-expiry.json", "proactive_expiry", False),
    ("oauth/refresh-unauthorized-recovery.json", "unauthorized_recovery", True),
])
def test_refresh(name: str, reason: str, initialised: bool) -> None:
    fixture = load(name)
    ident = identity_for("exec")
    body = B.refresh_body(ident, "<REFRESH_TOKEN>", reason)  # type: ignore[arg-type]
    assert body == json.dumps(fixture["body"], separators=(",", ":")).encode()
    assert_headers(on_the_wire(fixture, ident, H.refresh_headers(ident, initialised=initialised), HOST["auth"],
                               len(body)), fixture)


def test_login_code_exchange_api_key_exchange_and_device_calls() -> None:
    ident = identity_for("exec")
    for name in ("oauth/login-authorization-code.json", "oauth/device-authorization-code.json"):
        fixture = load(name)
        form = dict(fixture["body_form"])
        body = B.authorization_code_body(ident, form["code"], form["redirect_uri"], form["code_verifier"])
        assert body.decode() == fixture["body_text"]
        assert_headers(on_the_wire(fixture, ident, H.form_token_headers(), HOST["auth"], len(body)), fixture)
    fixture = load("oauth/login-token-exchange-api-key.json")
    body = B.api_key_exchange_body(ident, "ID.TOKEN-JWT_chars")
    placeholder_form = body.decode().replace("ID.TOKEN-JWT_chars", "<ID_TOKEN>")
    assert placeholder_form == fixture["body_text"]
    assert_headers(on_the_wire(fixture, ident, H.form_token_headers(), HOST["auth"], len(placeholder_form)), fixture)
    fixture = load("oauth/device-usercode.json")
    body = B.device_usercode_body(ident)
    assert body == json.dumps(fixture["body"], separators=(",", ":")).encode()
    assert_headers(on_the_wire(fixture, ident, H.device_auth_headers(), HOST["auth"], len(body)), fixture)
    fixture = load("oauth/device-token-poll.json")
    body = B.device_token_body(fixture["body"]["device_auth_id"], fixture["body"]["user_code"])
    assert body == json.dumps(fixture["body"], separators=(",", ":")).encode()
    assert_headers(on_the_wire(fixture, ident, H.device_auth_headers(), HOST["auth"], len(body)), fixture)


OAUTH_FIXTURES = ["oauth/refresh-proactive-expiry.json", "oauth/refresh-unauthorized-recovery.json",
                  "oauth/login-authorization-code.json", "oauth/login-token-exchange-api-key.json",
                  "oauth/device-usercode.json", "oauth/device-token-poll.json", "oauth/device-authorization-code.json"]
NOT_OURS = {"oauth/login-authorize-url.json", "oauth/login-callback-redirect.json"}


def test_every_captured_request_is_covered() -> None:
    covered = {*GET_FIXTURES, *UPGRADE_FIXTURES, *RESPONSES_FIXTURES, *WS_FRAMES, *MCP_FIXTURES, *OAUTH_FIXTURES}
    index = {entry["file"] for entry in INDEX}
    assert index - covered - NOT_OURS == set()
    assert ACCOUNT_ID in json.dumps(load("exec-sse/04-wham-accounts-check.json")["headers"])
