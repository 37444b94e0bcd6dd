"""Strict comparison of built requests against the captured Codex CLI requests.

Only three things may differ, and each is handled explicitly, never by a blanket mask:
* secrets: the fixtures replaced tokens by placeholders (`<ACCESS_TOKEN>` ...); the builders are given the
  placeholder itself, and wire lengths (content-length) are corrected by the recorded original lengths;
* ids and timestamps: read from the fixture and injected into the builders, so they must match exactly;
* client_metadata key order: the real client builds it from a hash map, so its order changes between runs
  (spec/chatgpt-mode.md §4); it is compared as a mapping, everything else byte for byte.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from tests.conftest import FIXTURES

FIXTURES = FIXTURES / "chatgpt-mode"
ACCOUNT_ID = "11111111-2222-4333-8444-555555555555"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def wire_growth(fixture: dict[str, Any]) -> int | None:
    """How many bytes longer the captured wire body was than its placeholder form (tokens and paths were
    substituted after capture). None for compressed bodies, whose wire length cannot be reconstructed."""
    wire = fixture.get("body_wire")
    if wire is None:
        return 0
    if wire.get("content_encoding"):
        return None
    if fixture.get("body_text") is not None:
        placeholder_form = fixture["body_text"].encode()
    else:
        placeholder_form = json.dumps(fixture["body"], separators=(",", ":"), ensure_ascii=False).encode()
    return wire["decoded_bytes"] - len(placeholder_form)


def diff_headers(built: list[tuple[str, str]], captured: list[list[str]], *,
                 content_length_growth: int | None = 0) -> list[str]:
    """Every difference in name, case, order or value; empty when identical. With `content_length_growth`
    None (a compressed body with substituted paths), content-length is only checked to be a number."""
    problems: list[str] = []
    built_names = [n for n, _ in built]
    captured_names = [n for n, _ in captured]
    if built_names != captured_names:
        problems.append(f"header names/order differ:\n  built:    {built_names}\n  captured: {captured_names}")
        return problems
    for (name, value), (_, expected) in zip(built, captured):
        if name.lower() == "content-length":
            if content_length_growth is None:
                assert value.isdigit() and expected.isdigit()
                continue
            value = str(int(value) + content_length_growth)
        if value != expected:
            problems.append(f"{name}: built {value!r} != captured {expected!r}")
    return problems


def assert_headers(built: list[tuple[str, str]], fixture: dict[str, Any]) -> None:
    problems = diff_headers(built, fixture["headers"], content_length_growth=wire_growth(fixture))
    assert not problems, "\n".join(problems)


def align_client_metadata(built: dict[str, Any], captured: dict[str, Any]) -> dict[str, Any]:
    """`built` with its client_metadata in the captured key order, after checking it is the same mapping."""
    ours, theirs = built.get("client_metadata"), captured.get("client_metadata")
    if ours is None or theirs is None:
        assert ours == theirs, f"client_metadata presence differs: built {ours!r}, captured {theirs!r}"
        return built
    assert set(ours) == set(theirs), f"client_metadata keys differ: {sorted(set(ours) ^ set(theirs))}"
    for key in theirs:
        assert ours[key] == theirs[key], f"client_metadata[{key!r}]: built {ours[key]!r} != captured {theirs[key]!r}"
    aligned = dict(built)
    aligned["client_metadata"] = {k: ours[k] for k in theirs}
    return aligned


def assert_body(built: dict[str, Any], captured: dict[str, Any]) -> bytes:
    """Byte-compare the compact serialisations; returns the aligned built bytes."""
    aligned = align_client_metadata(built, captured)
    ours = orjson.dumps(aligned)
    theirs = json.dumps(captured, separators=(",", ":"), ensure_ascii=False).encode()
    if ours != theirs:
        assert list(aligned) == list(captured), f"top-level order: built {list(aligned)} != captured {list(captured)}"
        for key in captured:
            a, b = orjson.dumps(aligned[key]), json.dumps(captured[key], separators=(",", ":"), ensure_ascii=False).encode()
            assert a == b, f"body field {key!r} differs:\n built    {a[:400]!r}\n captured {b[:400]!r}"
        raise AssertionError("bodies differ")  # pragma: no cover - the loop above names the field
    return ours


def metadata_of(fixture_headers: list[list[str]]) -> dict[str, Any]:
    value = dict((n.lower(), v) for n, v in fixture_headers)["x-codex-turn-metadata"]
    return json.loads(value)


def header(fixture: dict[str, Any], name: str) -> str:
    return next(v for n, v in fixture["headers"] if n.lower() == name)
