"""Responses input items as the backend takes them back: what the Responses passthrough and Responses-shaped Chat
Completions bodies (Cursor) share. Sans-IO."""

from __future__ import annotations

from typing import Any

from codex_trio.protocols.validators import expect_type


def _sanitize_reasoning(item: dict[str, Any]) -> dict[str, Any] | None:
    """A reasoning item reduced to what the backend replays; None when it cannot be replayed (no id)."""
    if not isinstance(item.get("id"), str) or not item["id"]:
        return None
    summary = item.get("summary")
    if not isinstance(summary, list):
        return None
    out: dict[str, Any] = {"type": "reasoning", "id": item["id"],
                           "summary": [{"type": "summary_text", "text": p["text"]} for p in summary
                                       if isinstance(p, dict) and p.get("type") == "summary_text"
                                       and isinstance(p.get("text"), str)]}
    if isinstance(item.get("status"), str):
        out["status"] = item["status"]
    if isinstance(item.get("encrypted_content"), str) and item["encrypted_content"]:
        out["encrypted_content"] = item["encrypted_content"]
    content = item.get("content")
    if isinstance(content, list):
        kept = [{"type": "reasoning_text", "text": p["text"]} for p in content
                if isinstance(p, dict) and p.get("type") == "reasoning_text" and isinstance(p.get("text"), str)]
        if kept:
            out["content"] = kept
    return out


def sanitize_input(raw: Any, param: str = "input") -> list[dict[str, Any]]:
    """The client's `input` as backend items: a string becomes one user message; items are kept except that
    reasoning and compaction items are reduced (and dropped when they cannot be replayed)."""
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}]
    expect_type(raw, list, param, "a string or an array of input items")
    items: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        item = expect_type(item, dict, f"{param}[{i}]", "an input item object")
        kind = item.get("type")
        if kind == "reasoning":
            reduced = _sanitize_reasoning(item)
            if reduced is not None:
                items.append(reduced)
        elif kind == "compaction":
            if isinstance(item.get("encrypted_content"), str) and item["encrypted_content"]:
                items.append({k: item[k] for k in ("type", "id", "encrypted_content") if isinstance(item.get(k), str)})
        else:
            items.append(item)
    return items
