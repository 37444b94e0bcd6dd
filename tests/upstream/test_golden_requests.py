"""Every captured request of Codex CLI 0.169.0, rebuilt by our builders (its release profile) and compared
strictly (see golden.py). 0.171.0: test_golden_requests_0171.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
import zstandard

from codex_trio.upstream import body as B
from codex_trio.upstream import headers as H
from codex_trio.upstream.context import AccountAuth, ModelTraits, ThreadContext, TurnContext
from codex_trio.upstream.identity import Identity, Platform, PlatformConfig, load_fingerprint

from .golden import ACCOUNT_ID, FIXTURES, assert_body, assert_headers, header, load, metadata_of

CONFIG = load_fingerprint()
RELEASE = "0.169.0"
AUTH = AccountAuth("<ACCESS_TOKEN>", ACCOUNT_ID)
# The catalog bundled in 0.169.0 (stand-in-replies/codex-models.response.shape.json); only gpt-6.1-sol's
# full entry was kept, the others' node_repl flag is what their captured metadata shows.
SOL_ENTRY = load("stand-in-replies/codex-models.response.shape.json")["example_entry_shortened"]
TRAITS = {
    "gpt-6.1-sol": ModelTraits.from_catalog(SOL_ENTRY),
    "gpt-5.6-luna": ModelTraits(responses_lite=True, node_repl_auto_review_required=False, parallel_tool_calls=False),
    "gpt-5.5": ModelTraits(responses_lite=False, node_repl_auto_review_required=False, parallel_tool_calls=True),
}
HOST = "chatgpt.com"


def identity_for(scenario: str) -> Identity:
    if scenario == "tui":
        # The TUI ran with TERM=xterm-256color: derive the terminal token the way codex does.
        pinned = CONFIG.platform.model_dump()
        platform = Platform.resolve(PlatformConfig(**{**pinned, "terminal": "auto"}), env={"TERM": "xterm-256color"})
        return Identity.from_config(CONFIG, "codex-tui", release=RELEASE, platform=platform)
    if scenario == "app-server":
        return Identity.from_config(CONFIG, "app-server", release=RELEASE, client_name="capture_test",
                                    client_version="0.0.1")
    return Identity.from_config(CONFIG, "codex-exec", release=RELEASE)


def scenario_of(name: str) -> str:
    return {"tui": "tui", "app-server": "app-server"}.get(name.split("/")[0], "exec")


def thread_for(meta: dict[str, Any]) -> ThreadContext:
    """Ids from the capture; thread_source / sandbox values only where they differ from the profile (the
    TUI's title-generation thread)."""
    title = meta["thread_source"] == "thread_title"
    return ThreadContext(
        installation_id=meta["installation_id"], thread_id=meta["thread_id"],
        context_window_id=meta["context_window_id"], window_number=meta["window_number"],
        thread_source="thread_title" if title else None, sandbox_mode="read-only" if title else None)


def turn_for(meta: dict[str, Any]) -> TurnContext:
    return TurnContext(meta["turn_id"], meta["turn_started_at_unix_ms"], meta["root_turn_id"])


def canonical_request(captured: dict[str, Any], *, http: bool) -> dict[str, Any]:
    """What an adapter hands over: the semantic fields in scrambled order, plus things the builder must
    drop or override."""
    semantic = [k for k in ("text", "reasoning", "parallel_tool_calls", "tool_choice", "tools", "input", "model")
                if k in captured]
    request = {k: captured[k] for k in semantic}
    request.update({"stream": False, "store": True, "max_output_tokens": 100, "temperature": 0.2,
                    "client_metadata": {"user": "x"}, "prompt_cache_key": "client-key"})
    if http:
        request["previous_response_id"] = "resp_client"
    return request


SIMPLE_GETS = {
    "wham-accounts-check": lambda ident, init: H.accounts_check_headers(ident, AUTH),
    "codex-models": lambda ident, init: H.models_headers(ident, AUTH, initialised=init),
    "wham-settings-user": lambda ident, init: H.settings_user_headers(ident, AUTH),
    "wham-usage": lambda ident, init: H.usage_headers(ident, AUTH),
    "wham-rate-limit-reset-credits": lambda ident, init: H.rate_limit_reset_credits_headers(ident, AUTH),
    "wham-security-setup": lambda ident, init: H.security_setup_headers(ident, AUTH),
}

GET_FIXTURES = [
    "exec-sse/01-wham-accounts-check.json", "exec-sse/02-codex-models.json", "exec-sse/03-codex-models.json",
    "exec-sse/07-wham-settings-user.json", "tui/01-wham-accounts-check.json", "tui/02-codex-models.json",
    "tui/06-wham-security-setup.json", "tui/07-wham-usage.json", "tui/08-wham-rate-limit-reset-credits.json",
    "tui/09-wham-security-setup.json", "tui/10-wham-usage.json", "tui/11-wham-settings-user.json",
    "tui/14-wham-settings-user.json", "app-server/01-wham-accounts-check.json", "app-server/02-codex-models.json",
    "app-server/03-wham-usage.json", "app-server/04-wham-rate-limit-reset-credits.json",
    "customca-h2/01-wham-accounts-check.json", "customca-h2/02-codex-models.json",
    "customca-h2/06-wham-settings-user.json",
]


def on_the_wire(fixture: dict[str, Any], headers: list[tuple[str, str]], content_length: int | None = None):
    wire = H.http1_wire(headers, HOST, content_length)
    return wire if fixture["transport"]["http_version"] == "HTTP/1.1" else H.http2_wire(wire)


@pytest.mark.parametrize("name", GET_FIXTURES)
def test_simple_get_headers(name: str) -> None:
    fixture = load(name)
    kind = name.split("/")[1].split("-", 1)[1].removesuffix(".json")
    # Calls made before the in-process app-server is initialised carry no user-agent suffix.
    initialised = "(" in header(fixture, "user-agent").split(") ", 1)[1]
    built = SIMPLE_GETS[kind](identity_for(scenario_of(name)), initialised)
    assert_headers(on_the_wire(fixture, built), fixture)


def test_models_url_carries_the_version() -> None:
    fixture = load("exec-sse/02-codex-models.json")
    assert fixture["query"] == [["client_version", identity_for("exec").version]]


UPGRADE_FIXTURES = ["exec-sse/04-ws-upgrade.json", "exec-ws/01-ws-upgrade.json", "tui/03-ws-upgrade.json",
                    "tui/13-ws-upgrade.json", "customca-h2/05-ws-upgrade.json"]


@pytest.mark.parametrize("name", UPGRADE_FIXTURES)
def test_websocket_upgrade_headers(name: str) -> None:
    fixture = load(name)
    meta = metadata_of(fixture["headers"])
    ident = identity_for(scenario_of(name))
    built = H.websocket_headers(ident, AUTH, thread_for(meta), model=meta["model"],
                                reasoning_effort=meta["reasoning_effort"], traits=TRAITS[meta["model"]])
    assert_headers(H.websocket_wire(built, HOST, header(fixture, "sec-websocket-key")), fixture)


RESPONSES_FIXTURES = [
    "exec-sse/08-codex-responses.json", "exec-sse-tool/01-codex-responses.json",
    "exec-sse-tool/02-codex-responses-custom-tool-output.json", "exec-gpt55-sse-tool/01-codex-responses.json",
    "exec-gpt55-sse-tool/02-codex-responses-function-call-output.json", "tui/12-codex-responses.json",
    "tui/15-codex-responses.json", "customca-h2/07-codex-responses.json",
]


@pytest.mark.parametrize("name", RESPONSES_FIXTURES)
def test_responses_post(name: str) -> None:
    fixture = load(name)
    captured = fixture["body"]
    meta = metadata_of(fixture["headers"])
    ident = identity_for(scenario_of(name))
    thread, turn = thread_for(meta), turn_for(meta)
    traits = TRAITS[captured["model"]]

    built = B.responses_body(canonical_request(captured, http=True), ident, thread, turn, traits=traits)
    aligned_bytes = assert_body(built, captured)

    # zstd as codex writes it (chatgpt-mode.md finding 4): one frame, no content size, no checksum, 2 MiB
    # window. (The wire size itself is not comparable: the capture substituted paths inside the body.)
    wire = B.zstd_compress(aligned_bytes, ident.zstd_level)
    params = zstandard.get_frame_parameters(wire)
    assert not params.has_checksum and params.content_size == zstandard.CONTENTSIZE_UNKNOWN
    assert params.window_size == 2 * 1024 * 1024
    assert abs(len(wire) - fixture["body_wire"]["wire_bytes"]) < 64  # level 3, not some other level
    assert zstandard.ZstdDecompressor().decompressobj().decompress(wire) == aligned_bytes

    built_headers = H.responses_headers(ident, AUTH, thread, turn, model=built["model"],
                                        reasoning_effort=B.reasoning_effort_of(built), traits=traits)
    assert_headers(on_the_wire(fixture, built_headers, len(wire)), fixture)
    assert len(B.responses_request_bytes(built, ident)) == len(B.zstd_compress(B.encode_json(built)))


WS_FRAMES = [
    ("exec-ws/02-frame1-response-create-prewarm.json", "exec-ws/03-frame2-response-create-turn.json"),
    ("exec-ws/03-frame2-response-create-turn.json", None),
    ("exec-ws/04-frame3-response-create-custom-tool-output.json", None),
    ("exec-ws-deflate/01-frame1-prewarm-compressed.json", None),
    ("exec-gpt55-ws-tool/01-frame1-response-create.json", None),
    ("exec-gpt55-ws-tool/02-frame2-response-create.json", None),
    ("exec-gpt55-ws-tool/03-frame3-response-create.json", None),
]


@pytest.mark.parametrize("name,_", WS_FRAMES)
def test_websocket_response_create_frames(name: str, _: Any) -> None:
    captured = load(name)["message"]
    cm = captured["client_metadata"]
    meta = json.loads(cm["x-codex-turn-metadata"])
    prewarm = captured.get("generate") is False
    thread = thread_for(meta)
    turn = None if prewarm else turn_for(meta)
    request = canonical_request(captured, http=False)
    built = B.responses_body(request, identity_for("exec"), thread, turn, transport="websocket",
                             traits=TRAITS[captured["model"]],
                             previous_response_id=captured.get("previous_response_id"), prewarm=prewarm,
                             ws_request_start_ms=int(cm["x-codex-ws-stream-request-start-ms"]))
    assert_body(built, captured)
    assert json.loads(B.ws_frame_text(built)) == built


@pytest.mark.parametrize("name", [name for name, _ in WS_FRAMES if load(name)["message"].get("previous_response_id")])
def test_a_chained_frame_from_the_unchained_one_is_the_captured_frame(name: str) -> None:
    """The WebSocket turn builds its frame once, unchained, and chains it (`chained_frame`) when the chain allows:
    the bytes are those of the frame built for the chain directly, and of the capture."""
    captured = load(name)["message"]
    cm = captured["client_metadata"]
    meta = json.loads(cm["x-codex-turn-metadata"])
    request = canonical_request(captured, http=False)
    build = dict(identity=identity_for("exec"), thread=thread_for(meta), turn=turn_for(meta), transport="websocket",
                 traits=TRAITS[captured["model"]], ws_request_start_ms=int(cm["x-codex-ws-stream-request-start-ms"]))
    unchained = B.responses_body({**request, "input": [{"type": "message", "role": "user", "content": "earlier"},
                                                       *request["input"]]}, **build)
    chained = B.chained_frame(unchained, request["input"], captured["previous_response_id"])
    direct = B.responses_body(request, previous_response_id=captured["previous_response_id"], **build)
    assert B.ws_frame_text(chained) == B.ws_frame_text(direct)
    assert_body(chained, captured)


MCP_FIXTURES = ["exec-sse/05-ps-mcp.json", "exec-sse/06-ps-mcp.json", "tui/04-ps-mcp.json", "tui/05-ps-mcp.json",
                "customca-h2/03-ps-mcp.json", "customca-h2/04-ps-mcp.json"]


@pytest.mark.parametrize("name", MCP_FIXTURES)
def test_mcp_initialize(name: str) -> None:
    fixture = load(name)
    ident = identity_for(scenario_of(name))
    body = B.mcp_initialize_body(ident)
    assert body == json.dumps(fixture["body"], separators=(",", ":")).encode()
    built = H.mcp_headers(ident, AUTH)
    names = [n for n, _ in fixture["headers"]]
    if names.index("originator") > names.index("x-openai-product-sku"):  # the other hash-map order
        built[1], built[2] = built[2], built[1]
    assert_headers(on_the_wire(fixture, built, len(body)), fixture)


@pytest.mark.parametrize("name,reason,initialised", [
    ("oauth/refresh-proactive-expiry.json", "proactive_expiry", False),
    ("oauth/refresh-unauthorized-recovery.json", "unauthorized_recovery", True),
])
def test_refresh(name: str, reason: str, initialised: bool) -> None:
    fixture = load(name)
    ident = identity_for("exec")
    body = B.refresh_body(ident, "<REFRESH_TOKEN>", reason)  # type: ignore[arg-type]
    assert body == json.dumps(fixture["body"], separators=(",", ":")).encode()
    assert_headers(H.http1_wire(H.refresh_headers(ident, initialised=initialised), "auth.openai.com", len(body)),
                   fixture)


def test_login_code_exchange_and_api_key_exchange() -> None:
    ident = identity_for("exec")
    for name in ("oauth/login-authorization-code.json", "oauth/device-authorization-code.json"):
        fixture = load(name)
        form = dict(fixture["body_form"])
        body = B.authorization_code_body(ident, form["code"], form["redirect_uri"], form["code_verifier"])
        assert body.decode() == fixture["body_text"]
        assert_headers(H.http1_wire(H.form_token_headers(), "auth.openai.com", len(body)), fixture)
    fixture = load("oauth/login-token-exchange-api-key.json")
    body = B.api_key_exchange_body(ident, "ID.TOKEN-JWT_chars")  # a JWT has only unreserved characters
    placeholder_form = body.decode().replace("ID.TOKEN-JWT_chars", "<ID_TOKEN>")
    assert placeholder_form == fixture["body_text"]
    assert_headers(H.http1_wire(H.form_token_headers(), "auth.openai.com", len(placeholder_form)), fixture)


def test_device_auth_calls() -> None:
    ident = identity_for("exec")
    fixture = load("oauth/device-usercode.json")
    body = B.device_usercode_body(ident)
    assert body == json.dumps(fixture["body"], separators=(",", ":")).encode()
    assert_headers(H.http1_wire(H.device_auth_headers(), "auth.openai.com", len(body)), fixture)
    fixture = load("oauth/device-token-poll.json")
    body = B.device_token_body(fixture["body"]["device_auth_id"], fixture["body"]["user_code"])
    assert body == json.dumps(fixture["body"], separators=(",", ":")).encode()
    assert_headers(H.http1_wire(H.device_auth_headers(), "auth.openai.com", len(body)), fixture)


OAUTH_FIXTURES = ["oauth/refresh-proactive-expiry.json", "oauth/refresh-unauthorized-recovery.json",
                  "oauth/login-authorization-code.json", "oauth/login-token-exchange-api-key.json",
                  "oauth/device-usercode.json", "oauth/device-token-poll.json", "oauth/device-authorization-code.json"]
# The browser login's authorize URL and the local callback redirect are the login flow's (accounts/oauth),
# not requests this module builds.
NOT_OURS = {"oauth/login-authorize-url.json", "oauth/login-callback-redirect.json"}


def test_every_captured_request_is_covered() -> None:
    covered = {*GET_FIXTURES, *UPGRADE_FIXTURES, *RESPONSES_FIXTURES, *(f for f, _ in WS_FRAMES), *MCP_FIXTURES,
               *OAUTH_FIXTURES}
    index = {entry["file"] for entry in json.loads((FIXTURES / "index.json").read_text())}
    assert index - covered - NOT_OURS == set()
    assert covered <= index


def test_prewarm_input_rule_matches_both_captured_runs() -> None:
    # classic model: the prewarm carried the base-instructions message, frame 2 the rest of the input
    frame1 = load("exec-gpt55-ws-tool/01-frame1-response-create.json")["message"]
    frame2 = load("exec-gpt55-ws-tool/02-frame2-response-create.json")["message"]
    history = {"input": frame1["input"] + frame2["input"]}
    assert B.prewarm_input(history, TRAITS["gpt-5.5"]) == frame1["input"]
    # responses-lite model: an empty prewarm, the whole input in frame 2
    prewarm = load("exec-ws/02-frame1-response-create-prewarm.json")["message"]
    turn = load("exec-ws/03-frame2-response-create-turn.json")["message"]
    assert B.prewarm_input({"input": turn["input"]}, TRAITS["gpt-6.1-sol"]) == prewarm["input"] == []


def test_instructions_become_the_first_developer_message() -> None:
    ident = identity_for("exec")
    tools_item = {"type": "additional_tools", "role": "developer", "tools": []}
    hi = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    shaped = B.with_instructions_in_input({"model": "m", "instructions": "Be Codex.", "input": [tools_item, hi]}, ident)
    assert "instructions" not in shaped
    assert shaped["input"] == [tools_item, B.instructions_message("Be Codex."), hi]
    assert B.with_instructions_in_input(shaped, ident) is shaped
    assert B.with_instructions_in_input({"model": "m", "instructions": "", "input": [hi]}, ident)["input"] == [hi]
    field_config = CONFIG.model_copy(update={"body": CONFIG.body.model_copy(update={"instructions": "field"})})
    old_style = Identity.from_config(field_config, "codex-exec", release=RELEASE)
    thread = ThreadContext("i", "t", "c")
    body = B.responses_body({"model": "m", "instructions": "Be Codex.", "input": [hi]}, old_style, thread,
                            TurnContext("u", 1))
    assert list(body)[:4] == ["model", "stream", "instructions", "input"] and body["input"] == [hi]
