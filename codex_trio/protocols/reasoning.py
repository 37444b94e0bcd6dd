"""Reasoning across protocols: the carrier that lets an upstream reasoning item travel through a client's signature
field and come back (Anthropic thinking signatures, Gemini thought signatures), and the effort a thinking budget
means. Sans-IO."""

from __future__ import annotations

import base64
import binascii
from typing import Any

REASONING_SIGNATURE_PREFIX = "ctr1."


def encode_reasoning_signature(item_id: str, encrypted_content: str) -> str:
    """Compact, reversible carrier of an upstream reasoning item inside a client-visible signature field."""
    token = base64.urlsafe_b64encode(item_id.encode()).rstrip(b"=").decode()
    return f"{REASONING_SIGNATURE_PREFIX}{token}.{encrypted_content}"


def decode_reasoning_signature(signature: Any) -> dict[str, Any] | None:
    """The `reasoning` input item a signature carries, or None for signatures we did not mint."""
    if not isinstance(signature, str) or not signature.startswith(REASONING_SIGNATURE_PREFIX):
        return None
    token, sep, encrypted = signature[len(REASONING_SIGNATURE_PREFIX):].partition(".")
    if not sep or not token or not encrypted:
        return None
    try:
        item_id = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not item_id:
        return None
    return {"type": "reasoning", "id": item_id, "summary": [], "encrypted_content": encrypted}


def effort_from_budget(budget: int | None) -> str | None:
    """Thinking-token budget → Codex effort (≤0 or absent: no explicit effort)."""
    if budget is None or budget <= 0:
        return None
    if budget < 2000:
        return "low"
    if budget < 8000:
        return "medium"
    if budget < 20000:
        return "high"
    return "xhigh"
