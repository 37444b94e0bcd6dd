"""Identity profiles, user-agent derivation and the strictness of the golden comparison itself."""

from __future__ import annotations

import pytest

from codex_trio.upstream import body as B
from codex_trio.upstream import headers as H
from codex_trio.upstream.context import AccountAuth, ThreadContext, TurnContext, uuid7
from codex_trio.upstream.identity import (
    Identity, Platform, PlatformConfig, load_fingerprint, newest_release, os_from_os_release, presented_release,
    sanitize_header_value, terminal_from_env, verified_releases,
)

from .golden import ACCOUNT_ID, assert_headers, diff_headers, load

CONFIG = load_fingerprint()


def test_default_profile_is_the_tui_of_the_newest_release() -> None:
    ident = Identity.from_config(CONFIG)
    assert ident.profile == "codex-tui" and ident.version == "0.171.0" == newest_release(CONFIG)
    assert ident.user_agent() == "codex-tui/0.171.0 (Debian 12.0.0; x86_64) xterm (codex-tui; 0.171.0)"
    assert ident.user_agent(initialised=False) == "codex_cli_rs/0.171.0 (Debian 12.0.0; x86_64) xterm"
    assert ident.accept_encoding == "zstd,gzip" and ident.decompress


def test_a_release_is_one_setting_and_brings_its_own_wire() -> None:
    old = Identity.from_config(CONFIG, "codex-exec", release="0.169.0")
    assert old.user_agent() == "codex_exec/0.169.0 (Debian 12.0.0; x86_64) xterm (codex_exec; 0.169.0)"
    assert old.accept_encoding is None and not old.decompress
    auth = AccountAuth("t", "a")
    assert H.models_headers(old, auth)[0] == ("version", "0.169.0")
    assert B.mcp_initialize_body(old).endswith(b'"version":"0.169.0"}}}')
    assert verified_releases(CONFIG) == ["0.169.0", "0.171.0"]


def test_a_version_without_a_verified_profile_is_never_presented() -> None:
    with pytest.raises(ValueError, match="Codex 0.170.0 has no verified profile; known releases: 0.169.0, 0.171.0"):
        Identity.from_config(CONFIG, "codex-exec", release="0.170.0")
    assert presented_release(CONFIG, "0.171.0") == ("0.171.0", None)
    assert presented_release(CONFIG, None) == (CONFIG.default_release, None)
    release, problem = presented_release(CONFIG, "0.172.0")
    assert release == "0.171.0" and "0.172.0 has no verified profile" in (problem or "")


def test_app_server_profile_takes_the_client_name() -> None:
    ident = Identity.from_config(CONFIG, "app-server", client_name="Codex Desktop", client_version="26.5.1")
    assert ident.originator == "Codex Desktop"
    assert ident.user_agent() == "Codex Desktop/0.171.0 (Debian 12.0.0; x86_64) xterm (Codex Desktop; 26.5.1)"


def test_unknown_profile_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown client profile 'nope'"):
        Identity.from_config(CONFIG, "nope")


@pytest.mark.parametrize("text,expected", [
    ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n', ("Debian", "12.0.0")),
    ('ID=ubuntu\nVERSION_ID="22.04"\n', ("Ubuntu", "22.4.0")),
    ("ID=arch\n", ("Arch Linux", "Rolling Release")),
    ("ID=somethingelse\nVERSION_ID=3.19.1\n", ("Linux", "3.19.1")),
    (None, ("Linux", "Rolling Release")),
])
def test_os_derivation(text: str | None, expected: tuple[str, str]) -> None:
    assert os_from_os_release(text) == expected


def test_terminal_derivation() -> None:
    assert terminal_from_env({"TERM_PROGRAM": "iTerm.app", "TERM_PROGRAM_VERSION": "3.5", "TERM": "xterm"}) == "iTerm.app/3.5"
    assert terminal_from_env({"TERM_PROGRAM": "vscode", "TERM": "xterm"}) == "vscode"
    assert terminal_from_env({"WT_SESSION": "x", "TERM": "xterm"}) == "WindowsTerminal"
    assert terminal_from_env({"TERM": "xterm-256color"}) == "xterm-256color"
    assert terminal_from_env({}) == "unknown"


def test_auto_platform_and_sanitising() -> None:
    platform = Platform.resolve(PlatformConfig(), os_release="ID=debian\nVERSION_ID=12\n", machine="aarch64",
                                env={"TERM_PROGRAM": "Apple\u2122Terminal"})
    ident = Identity.from_config(CONFIG, "codex-exec", platform=platform)
    assert ident.user_agent(initialised=False) == "codex_exec/0.171.0 (Debian 12.0.0; aarch64) Apple_Terminal"
    assert sanitize_header_value("a\tb\u00e9") == "a_b_"


def test_uuid7_shape() -> None:
    value = uuid7(1795318452691)
    assert value[14] == "7" and value[19] in "89ab"
    assert int(value.replace("-", "")[:12], 16) == 1795318452691
    assert ThreadContext.new("inst", now_ms=1).window_id.endswith(":0")
    assert TurnContext.new(now_ms=5).turn_id != TurnContext.new(now_ms=5).turn_id
    turn = TurnContext("t1", 5)
    assert turn.root == "t1" and TurnContext("t2", 5, "t1").root == "t1"


def test_comparison_helper_is_strict() -> None:
    fixture = load("exec-sse/07-wham-settings-user.json")
    ident = Identity.from_config(CONFIG, "codex-exec", release="0.169.0")
    good = H.http1_wire(H.settings_user_headers(ident, AccountAuth("<ACCESS_TOKEN>", ACCOUNT_ID)), "chatgpt.com")
    assert_headers(good, fixture)
    swapped = [good[1], good[0], *good[2:]]
    assert diff_headers(swapped, fixture["headers"])
    recased = [(good[0][0].title(), good[0][1]), *good[1:]]
    assert diff_headers(recased, fixture["headers"])
    changed = [*good[:-1], ("host", "chatgpt.co")]
    assert diff_headers(changed, fixture["headers"])


def test_body_rules() -> None:
    ident = Identity.from_config(CONFIG, "codex-exec")
    thread, turn = ThreadContext("inst", "thr", "ctx"), TurnContext("turn", 5)
    request = {"service_tier": "fast", "include": ["message.output_text.logprobs"], "reasoning": {"summary": "auto", "effort": "high"},
               "input": [], "model": "gpt-5.5", "stop": ["x"], "top_p": 1, "store": True, "stream": False,
               "instructions": "", "tools": [], "metadata": {"a": "b"}, "prompt_cache_key": "client"}
    body = B.responses_body(request, ident, thread, turn)
    assert list(body) == ["model", "stream", "input", "tool_choice", "parallel_tool_calls", "reasoning", "store",
                          "include", "service_tier", "prompt_cache_key", "client_metadata"]
    assert body["stream"] is True and body["store"] is False and body["tool_choice"] == "auto"
    assert body["include"] == ["message.output_text.logprobs", "reasoning.encrypted_content"]
    assert body["reasoning"] == {"effort": "high", "summary": "auto"} and list(body["reasoning"]) == ["effort", "summary"]
    assert body["service_tier"] == "priority" and body["prompt_cache_key"] == "thr"
    assert "include" not in B.responses_body({"model": "m", "input": []}, ident, thread, turn)
    with pytest.raises(ValueError):
        B.responses_body({"model": "m"}, ident, thread, turn, previous_response_id="resp_1")
    with pytest.raises(ValueError):
        B.responses_body({"input": []}, ident, thread, turn)
    assert request["store"] is True  # the caller's dict is not modified
