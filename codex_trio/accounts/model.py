"""The account record and its small value types (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AccountStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"  # tokens no longer usable: log in again (reason says why)
    BANNED = "banned"
    RATE_LIMITED = "rate_limited"  # until `cooldown_until`; re-verified after the reset
    DISABLED = "disabled"  # switched off by the user
    REFRESHING = "refreshing"  # a refresh is in flight or its outcome is being confirmed


@dataclass(slots=True)
class Tokens:
    access_token: str
    refresh_token: str | None = None
    id_token: str | None = None


@dataclass(slots=True)
class Account:
    """One ChatGPT login. `id` is ours (stable, used in URLs); `account_id` is ChatGPT's workspace id."""

    id: str
    tokens: Tokens
    account_id: str | None = None
    email: str | None = None
    plan: str | None = None
    user_id: str | None = None
    label: str | None = None
    enabled: bool = True
    status: AccountStatus = AccountStatus.ACTIVE
    status_reason: str | None = None
    status_changed_at: float | None = None
    cooldown_until: float | None = None  # rate limit: usable again after this unix time
    access_expires_at: float | None = None  # JWT `exp` of the access token
    last_refresh: float | None = None
    installation_id: str = ""
    proxy: str | None = None  # egress proxy assignment (URL or pool id), None = default route
    cookies: list[dict[str, Any]] = field(default_factory=list)
    quota: dict[str, Any] | None = None  # last QuotaSnapshot.to_dict()
    quota_updated_at: float | None = None
    request_count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    last_used_at: float | None = None
    auth_json_path: str | None = None  # linked ~/.codex/auth.json: refreshed tokens are written back
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def usable(self) -> bool:
        return self.enabled and self.status in (AccountStatus.ACTIVE, AccountStatus.RATE_LIMITED)
