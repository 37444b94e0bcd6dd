"""What a provider is: one vendor endpoint with its API keys and models, and the presets users pick from."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

from ..errors import invalid_request

# The protocol a provider speaks upstream. OpenAI-compatible providers speak Chat Completions or Responses.
WIRES = ("chat", "responses", "anthropic", "gemini")
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MASK = "********"


@dataclass(frozen=True)
class Preset:
    kind: str  # what the admin API calls it (the reference gateway's `provider` field)
    wire: str
    base_url: str
    models: tuple[str, ...] = ()


# Built-in vendors (GET /auth/api-keys/catalog). "custom" is any OpenAI-compatible base URL.
PRESETS: dict[str, Preset] = {
    "openai": Preset("openai", "chat", "https://api.openai.com/v1", ("gpt-4o", "gpt-4o-mini", "text-embedding-3-small")),
    "openrouter": Preset("openrouter", "chat", "https://openrouter.ai/api/v1"),
    "deepseek": Preset("deepseek", "chat", "https://api.deepseek.com/v1", ("deepseek-chat", "deepseek-reasoner")),
    "anthropic": Preset("anthropic", "anthropic", "https://api.anthropic.com",
                        ("claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5")),
    "gemini": Preset("gemini", "gemini", "https://generativelanguage.googleapis.com",
                     ("gemini-2.5-pro", "gemini-2.5-flash")),
    "custom": Preset("custom", "chat", ""),
}


@dataclass(frozen=True)
class Provider:
    id: str
    label: str  # unique; also the explicit model prefix (`<label>/<model>`)
    kind: str  # a PRESETS key
    wire: str  # a WIRES value
    base_url: str
    keys: tuple[str, ...]
    models: tuple[str, ...] = ()
    enabled: bool = True
    priority: int = 0  # lower first when several providers offer a model
    proxy: str | None = None  # egress proxy URL for this provider's calls; None: direct
    created_at: float = 0.0
    updated_at: float = 0.0

    def public(self, *, reveal: bool = False) -> dict[str, Any]:
        """The admin API / export view; keys masked unless `reveal`."""
        return {"id": self.id, "label": self.label, "provider": self.kind, "wire": self.wire,
                "baseUrl": self.base_url, "keys": list(self.keys) if reveal else [mask(k) for k in self.keys],
                "models": list(self.models), "enabled": self.enabled, "status": "active" if self.enabled else "disabled",
                "priority": self.priority, "proxy": self.proxy if reveal else mask_proxy(self.proxy),
                "createdAt": self.created_at,
                "updatedAt": self.updated_at}


def mask(key: str) -> str:
    return MASK if len(key) < 12 else f"{key[:3]}{MASK}{key[-4:]}"


def mask_proxy(url: str | None) -> str | None:
    """A proxy URL with its password masked (its credentials are as secret as the keys)."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:{MASK}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _first(body: Mapping[str, Any], *names: str) -> Any:
    return next((body[n] for n in names if body.get(n) is not None), None)


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise invalid_request(f"`{name}` must be a list of non-empty strings", param=name)
    return tuple(dict.fromkeys(v.strip() for v in value))


def provider_from_body(body: Mapping[str, Any], *, provider_id: str, now: float,
                       existing: Provider | None = None) -> Provider:
    """A provider from an admin request or an import entry (the reference gateway's camelCase or our
    snake_case). With `existing`, absent fields keep their value (keys given are added, not replacing)."""
    kind = _first(body, "provider", "kind") or (existing.kind if existing else None)
    if kind not in PRESETS:
        raise invalid_request(f"`provider` must be one of {', '.join(PRESETS)}", param="provider")
    preset = PRESETS[kind]
    wire = _first(body, "wire", "protocol") or (existing.wire if existing else preset.wire)
    if wire not in WIRES or (kind in ("anthropic", "gemini") and wire != preset.wire):
        raise invalid_request(f"`wire` must be one of {', '.join(WIRES)} (chat or responses for OpenAI-compatible "
                              "providers)", param="wire")
    base_url = (_first(body, "baseUrl", "base_url") or (existing.base_url if existing else preset.base_url) or "")
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise invalid_request("`baseUrl` must be an http(s) URL (a custom provider needs one)", param="baseUrl")
    keys = _strings(_first(body, "keys", "apiKeys", "api_keys"), "keys") + _strings(
        _first(body, "apiKey", "api_key", "key"), "apiKey")
    keys = tuple(dict.fromkeys((existing.keys if existing else ()) + keys))
    if not keys:
        raise invalid_request("send the provider's API key as `apiKey` (or several as `keys`)", param="apiKey")
    label = _first(body, "label", "name") or (existing.label if existing else kind)
    if not isinstance(label, str) or not LABEL_PATTERN.match(label):
        raise invalid_request("`label` must be 1-64 letters, digits, '.', '_' or '-' (it is also the model prefix)",
                              param="label")
    models = _first(body, "models")
    models = _strings(models, "models") if models is not None else (existing.models if existing else preset.models)
    enabled = body.get("enabled", existing.enabled if existing else True)
    if "status" in body:
        enabled = body["status"] in ("active", "enabled", True)
    priority = body.get("priority", existing.priority if existing else 0)
    if not isinstance(enabled, bool) or not isinstance(priority, int) or isinstance(priority, bool):
        raise invalid_request("`enabled` must be a boolean and `priority` an integer")
    proxy = body.get("proxy", existing.proxy if existing else None)
    if proxy is not None and (not isinstance(proxy, str) or "://" not in proxy):
        raise invalid_request("`proxy` must be a proxy URL such as http://host:port or socks5://host:port",
                              param="proxy")
    return Provider(id=provider_id, label=label, kind=kind, wire=wire, base_url=base_url.rstrip("/"), keys=keys,
                    models=models, enabled=enabled, priority=priority, proxy=proxy or None,
                    created_at=existing.created_at if existing else now, updated_at=now)


def with_status(provider: Provider, enabled: bool, now: float) -> Provider:
    return replace(provider, enabled=enabled, updated_at=now)
