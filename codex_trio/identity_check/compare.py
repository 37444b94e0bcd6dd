"""What two clients sent, side by side (sans-IO): the real Codex CLI's calls and the gateway's, as the stand-in
recorded them. Values that identify an account, a thread or a moment (tokens, ids, times) are never compared;
what a detector can see is: the TLS hello (JA4) of each path, the header names in order and case, and the JSON
bodies' field order and field set (top level and client_metadata).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .tls_fingerprint import fingerprint


@dataclass(frozen=True, slots=True)
class Call:
    """One request (or WebSocket `response.create` frame) as the stand-in saw it."""

    key: str  # "GET /backend-api/codex/models", "WS response.create (turn)", ...
    ja4: str | None
    header_names: tuple[str, ...]
    fields: tuple[str, ...]  # top-level JSON keys in order (empty for non-JSON bodies)
    metadata_keys: frozenset[str] = frozenset()


@dataclass(slots=True)
class Report:
    compared: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    only_codex: list[str] = field(default_factory=list)
    only_gateway: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not self.differences

    def render(self) -> str:
        lines = [f"compared: {', '.join(self.compared) or 'nothing'}"]
        if self.only_codex:
            lines.append(f"only the real client made (not compared): {', '.join(self.only_codex)}")
        if self.only_gateway:
            lines.append(f"only the gateway made (not compared): {', '.join(self.only_gateway)}")
        lines += [f"DIFF {d}" for d in self.differences] or ["no differences"]
        return "\n".join(lines)


def calls_of(records: list[Any]) -> list[Call]:
    """The stand-in's recorded requests (`codex_trio.sim` RecordedRequest) as calls; WebSocket frames after their
    upgrade, named prewarm / turn by their `generate` flag."""
    calls = []
    for record in records:
        hello = record.connection.client_hello if record.connection is not None else None
        ja4 = fingerprint(hello)["ja4"] if hello else None
        body = record.body if isinstance(record.body, dict) else {}
        metadata = body.get("client_metadata") if isinstance(body.get("client_metadata"), dict) else {}
        calls.append(Call(f"{record.method} {record.path}", ja4,
                          tuple(n for n, _ in record.headers if not n.startswith(":")), tuple(body),
                          frozenset(metadata)))
        for frame in record.ws_messages or []:
            if isinstance(frame, dict):
                kind = "prewarm" if frame.get("generate") is False else "turn"
                meta = frame.get("client_metadata") if isinstance(frame.get("client_metadata"), dict) else {}
                calls.append(Call(f"WS {frame.get('type')} ({kind})", ja4, (), tuple(frame), frozenset(meta)))
    return calls


def compare(codex: list[Call], gateway: list[Call]) -> Report:
    """Each kind of call both made is compared on its first occurrence."""
    report = Report()
    theirs = {c.key: c for c in reversed(codex)}
    ours = {c.key: c for c in reversed(gateway)}
    report.only_codex = sorted(set(theirs) - set(ours))
    report.only_gateway = sorted(set(ours) - set(theirs))
    for key in [c.key for c in codex if c.key in ours and c.key in theirs]:
        if key in report.compared:
            continue
        report.compared.append(key)
        a, b = theirs[key], ours[key]
        if a.ja4 != b.ja4:
            report.differences.append(f"{key}: TLS JA4 codex {a.ja4} != gateway {b.ja4}")
        if a.header_names != b.header_names:
            report.differences.append(f"{key}: headers\n    codex   {list(a.header_names)}\n"
                                      f"    gateway {list(b.header_names)}")
        if a.fields != b.fields:
            report.differences.append(f"{key}: body fields\n    codex   {list(a.fields)}\n    gateway {list(b.fields)}")
        if a.metadata_keys != b.metadata_keys:
            report.differences.append(f"{key}: client_metadata keys differ: codex only "
                                      f"{sorted(a.metadata_keys - b.metadata_keys)}, gateway only "
                                      f"{sorted(b.metadata_keys - a.metadata_keys)}")
    return report
