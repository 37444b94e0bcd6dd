"""Where each provider wire sends what, and how it authenticates. Pure: URLs and headers only."""

from __future__ import annotations

from urllib.parse import quote

from .model import Provider

ANTHROPIC_VERSION = "2023-06-01"


def auth_headers(provider: Provider, key: str) -> dict[str, str]:
    if provider.wire == "anthropic":
        return {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
    if provider.wire == "gemini":
        return {"x-goog-api-key": key}
    return {"authorization": f"Bearer {key}"}


def turn_url(provider: Provider, model: str, *, stream: bool) -> str:
    base = provider.base_url
    if provider.wire == "chat":
        return f"{base}/chat/completions"
    if provider.wire == "responses":
        return f"{base}/responses"
    if provider.wire == "anthropic":
        return f"{base}/v1/messages"
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"{base}/v1beta/models/{quote(model, safe='')}:{action}"


def models_url(provider: Provider) -> str:
    if provider.wire == "anthropic":
        return f"{provider.base_url}/v1/models"
    if provider.wire == "gemini":
        return f"{provider.base_url}/v1beta/models"
    return f"{provider.base_url}/models"


def model_ids(provider: Provider, body: object) -> list[str]:
    """The model ids in a provider's model-list answer."""
    if not isinstance(body, dict):
        return []
    if provider.wire == "gemini":
        names = [m.get("name") for m in body.get("models") or [] if isinstance(m, dict)]
        return [n.removeprefix("models/") for n in names if isinstance(n, str)]
    return [m["id"] for m in body.get("data") or [] if isinstance(m, dict) and isinstance(m.get("id"), str)]


def offers_embeddings(provider: Provider) -> bool:
    return provider.wire in ("chat", "responses")


def embeddings_url(provider: Provider) -> str:
    return f"{provider.base_url}/embeddings"
