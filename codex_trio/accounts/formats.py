"""Bulk import/export formats (pure functions).

Import understands, detected from the content:
* ours: `{"format": "codex-trio-accounts", "version": 1, "accounts": [{…, "tokens": {…}}]}`;
* the reference gateway's (seeds/codex-proxy-readme.txt): `{"accounts": [{"token"?, "refreshToken"?,
  "label"?}]}` or a bare list of such objects (its full export adds more camelCase fields, read when known);
* a Codex CLI auth.json object (`{"tokens": {…}}`);
* minimal: refresh tokens, one per line, or a JSON list of strings.
Export writes ours (full), the reference gateway's minimal shape (refreshToken + label), or the plain list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from .model import Account

OUR_FORMAT = "codex-trio-accounts"
# an exported account id is kept on import when free; anything that would not be a clean URL segment is not
_ACCOUNT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ImportFormatError(ValueError):
    pass


@dataclass(slots=True)
class ImportEntry:
    access_token: str | None = None
    refresh_token: str | None = None
    id_token: str | None = None
    label: str | None = None
    enabled: bool = True
    installation_id: str | None = None
    proxy: str | None = None
    cookies: list[dict[str, Any]] = field(default_factory=list)
    id: str | None = None  # the id it had where it was exported


def _s(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _entry_from_object(item: dict[str, Any]) -> ImportEntry:
    tokens = item.get("tokens") if isinstance(item.get("tokens"), dict) else {}
    entry = ImportEntry(
        access_token=_s(tokens.get("access_token")) or _s(item.get("access_token")) or _s(item.get("token"))
        or _s(item.get("accessToken")),
        refresh_token=_s(tokens.get("refresh_token")) or _s(item.get("refresh_token"))
        or _s(item.get("refreshToken")),
        id_token=_s(tokens.get("id_token")) or _s(item.get("id_token")) or _s(item.get("idToken")),
        label=_s(item.get("label")),
        enabled=item.get("enabled", True) is not False and item.get("status") != "disabled",
        installation_id=_s(item.get("installation_id")) or _s(item.get("installationId")),
        proxy=_s(item.get("proxy")),
        cookies=[c for c in item.get("cookies", []) if isinstance(c, dict) and isinstance(c.get("name"), str)
                 and isinstance(c.get("value"), str)] if isinstance(item.get("cookies"), list) else [],
        id=item["id"] if isinstance(item.get("id"), str) and _ACCOUNT_ID.fullmatch(item["id"]) else None,
    )
    if entry.access_token is None and entry.refresh_token is None:
        raise ImportFormatError("entry has neither an access token nor a refresh token")
    return entry


def parse_import(payload: bytes | str | Any) -> tuple[list[ImportEntry], list[str]]:
    """(entries, errors). One bad entry does not stop the others; its error names its position."""
    data: Any = payload
    if isinstance(payload, (bytes, str)):
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        stripped = text.strip()
        if not stripped:
            raise ImportFormatError("nothing to import")
        if stripped[0] in "[{":
            try:
                data = orjson.loads(stripped)
            except orjson.JSONDecodeError as exc:
                raise ImportFormatError(f"not valid JSON: {exc}") from None
        else:
            lines = [ln.strip() for ln in stripped.splitlines()]
            return [ImportEntry(refresh_token=ln) for ln in lines if ln and not ln.startswith("#")], []
    if isinstance(data, dict):
        if isinstance(data.get("accounts"), list):
            items = data["accounts"]
        elif "tokens" in data or "token" in data or "refreshToken" in data or "access_token" in data:
            items = [data]
        else:
            raise ImportFormatError("JSON object without an `accounts` list or tokens")
    elif isinstance(data, list):
        items = data
    else:
        raise ImportFormatError("expected a JSON object, a JSON list, or refresh tokens one per line")
    entries: list[ImportEntry] = []
    errors: list[str] = []
    for index, item in enumerate(items):
        if isinstance(item, str) and item.strip():
            entries.append(ImportEntry(refresh_token=item.strip()))
        elif isinstance(item, dict):
            try:
                entries.append(_entry_from_object(item))
            except ImportFormatError as exc:
                errors.append(f"accounts[{index}]: {exc}")
        else:
            errors.append(f"accounts[{index}]: expected an object or a refresh-token string")
    return entries, errors


def export_full(accounts: list[Account]) -> dict[str, Any]:
    """Everything needed to restore the accounts elsewhere. Contains live tokens: store it like a password.
    Each entry also carries the reference gateway's `token`/`refreshToken` keys, so it imports there too."""
    return {
        "format": OUR_FORMAT,
        "version": 1,
        "accounts": [
            {
                "id": a.id,
                "label": a.label,
                "email": a.email,
                "account_id": a.account_id,
                "user_id": a.user_id,
                "plan": a.plan,
                "enabled": a.enabled,
                "status": str(a.status),
                "installation_id": a.installation_id,
                "proxy": a.proxy,
                "cookies": a.cookies,
                "tokens": {"access_token": a.tokens.access_token, "refresh_token": a.tokens.refresh_token,
                           "id_token": a.tokens.id_token},
                "token": a.tokens.access_token,
                "refreshToken": a.tokens.refresh_token,
            }
            for a in accounts
        ],
    }


def export_minimal(accounts: list[Account]) -> dict[str, Any]:
    """The reference gateway's minimal export: refresh token + label only (accounts without one are left out)."""
    return {"accounts": [{"refreshToken": a.tokens.refresh_token, "label": a.label}
                         for a in accounts if a.tokens.refresh_token]}


def export_refresh_tokens(accounts: list[Account]) -> str:
    return "".join(a.tokens.refresh_token + "\n" for a in accounts if a.tokens.refresh_token)
