"""`ProviderService`: the providers of one gateway (or one CLI run) — the store and its in-memory snapshot, key
rotation, one HTTP client per egress proxy — and the operations the admin API and the CLI share."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import trio

from ..errors import ErrorKind, GatewayError, invalid_request, not_found
from .keyring import KeyRing
from .relay import load_httpx
from .model import MASK, PRESETS, Provider, provider_from_body, with_status
from .store import ProviderStore, ProviderStoreError

if TYPE_CHECKING:
    from ..store.location import StoreLocation
from .wire import auth_headers, model_ids, models_url

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)
MODELS_TIMEOUT = 20.0
POLL_SECONDS = 0.5  # another instance's (or the CLI's) change is adopted within this

class ProviderService:
    def __init__(self, data_dir: Path, location: "StoreLocation | None" = None, *, clock: Callable[[], float] = time.time,
                 timeout: Callable[[], float] = lambda: 600.0,
                 key_cooldown: Callable[[], float] = lambda: 60.0) -> None:
        self.data_dir = data_dir
        self.location = location  # the store (`store.url`); None: the SQLite files in the data dir
        self.clock = clock
        self.timeout = timeout  # seconds a provider may take to answer, and stay silent mid-stream
        self.key_cooldown = key_cooldown  # seconds a rate-limited key rests without Retry-After
        self.keys = KeyRing(clock)
        self._store: ProviderStore | None = None
        self._snapshot: list[Provider] = []
        self._clients: dict[str | None, httpx.AsyncClient] = {}

    # ---- lifetime ---------------------------------------------------------------------------------------

    def open(self) -> "ProviderService":
        """Blocking (the store may be a database): the gateway calls it on a worker thread."""
        self._store = ProviderStore(self.data_dir, self.location)
        self._snapshot = self._store.all()
        return self

    async def follow(self, interval: float = POLL_SECONDS) -> None:
        """Adopt changes by any process or instance: the rows re-read every `interval` (a handful of rows). While
        the store is away the snapshot stays as it is."""
        while True:
            await trio.sleep(interval)
            store = self._store
            if store is None:
                continue
            try:
                changed = await trio.to_thread.run_sync(store.rows_changed)
            except Exception as exc:  # the store away: keep serving what we hold  # noqa: BLE001

                log.debug("providers not re-read: %s", exc)
                continue
            if changed is not None:
                self._snapshot = changed

    async def aclose(self) -> None:
        for client in self._clients.values():
            with trio.CancelScope(shield=True):
                await client.aclose()
        self._clients.clear()
        if self._store is not None:
            self._store.close()
            self._store = None

    def _opened(self) -> ProviderStore:
        if self._store is None:
            raise GatewayError(503, "the provider store is not open yet; try again in a moment", ErrorKind.OVERLOADED)
        return self._store

    # ---- reading ----------------------------------------------------------------------------------------

    def providers(self) -> list[Provider]:
        """The current providers: the snapshot `follow` keeps (no store round trip on the request path)."""
        return list(self._snapshot)

    def get(self, provider_id: str) -> Provider:
        found = next((p for p in self.providers() if provider_id in (p.id, p.label)), None)
        if found is None:
            raise not_found(f"no provider {provider_id!r}; GET /auth/api-keys lists them", code="provider_not_found")
        return found

    def client_for(self, provider: Provider) -> httpx.AsyncClient:
        """One pooled client per egress proxy. Compression off, so a passthrough relays the provider's bytes."""
        client = self._clients.get(provider.proxy)
        if client is None:
            import httpx  # here, not at start-up: a gateway without providers never loads it

            client = httpx.AsyncClient(proxy=provider.proxy, timeout=httpx.Timeout(self.timeout(), connect=20.0),
                                       headers={"accept-encoding": "identity"}, follow_redirects=False)
            self._clients[provider.proxy] = client
        return client

    # ---- writing ----------------------------------------------------------------------------------------

    async def _write(self, action: Callable[[ProviderStore], Any]) -> Any:
        store = self._opened()
        try:
            result = await trio.to_thread.run_sync(action, store)
        except ProviderStoreError as exc:
            raise GatewayError(409, str(exc), ErrorKind.INVALID_REQUEST, code="provider_conflict") from None
        self._snapshot = await trio.to_thread.run_sync(store.all)
        return result

    async def add(self, body: dict[str, Any]) -> Provider:
        provider = provider_from_body(body, provider_id=uuid.uuid4().hex[:12], now=self.clock())
        if not provider.models and body.get("fetchModels", body.get("fetch_models", True)):
            try:
                provider = replace(provider, models=tuple(await self.fetch_models(provider)))
            except GatewayError as exc:
                log.warning("provider %s: model list not fetched: %s", provider.label, exc.message)
        await self._write(lambda store: store.put(provider))
        return provider

    async def update(self, provider_id: str, body: dict[str, Any]) -> Provider:
        existing = self.get(provider_id)
        updated = provider_from_body({**body, "provider": existing.kind}, provider_id=existing.id, now=self.clock(),
                                     existing=existing)
        await self._write(lambda store: store.put(updated))
        return updated

    async def set_enabled(self, provider_id: str, enabled: bool) -> Provider:
        updated = with_status(self.get(provider_id), enabled, self.clock())
        await self._write(lambda store: store.put(updated))
        return updated

    async def remove(self, provider_ids: Iterable[str]) -> int:
        ids = [self.get(pid).id for pid in provider_ids]
        return await self._write(lambda store: store.delete(ids))

    async def import_entries(self, entries: Any) -> dict[str, Any]:
        """Import an export (ours or a list of the reference gateway's entries): by label, new ones added,
        existing ones updated. Keys given masked are ignored (an export without `?reveal=true`)."""
        if isinstance(entries, dict):
            entries = entries.get("providers", entries.get("keys", entries.get("apiKeys")))
        if not isinstance(entries, list):
            raise invalid_request("send a list of providers, or {\"providers\": [...]} as exported")
        added = updated = 0
        errors: list[str] = []
        for position, entry in enumerate(entries):
            if not isinstance(entry, dict):
                errors.append(f"entry {position}: not an object")
                continue
            entry = {**entry, "keys": [k for k in entry.get("keys") or [] if isinstance(k, str) and MASK not in k]}
            if isinstance(entry.get("proxy"), str) and MASK in entry["proxy"]:
                del entry["proxy"]  # masked in the export: keep the one we have
            existing = next((p for p in self.providers() if p.label == entry.get("label")), None)
            try:
                if existing is not None:
                    await self.update(existing.id, entry)
                    updated += 1
                else:
                    await self.add({**entry, "fetchModels": False})
                    added += 1
            except GatewayError as exc:
                errors.append(f"entry {position}: {exc.message}")
        return {"added": added, "updated": updated, "failed": len(errors), "errors": errors}

    def export(self, *, reveal: bool) -> dict[str, Any]:
        return {"providers": [p.public(reveal=reveal) for p in self.providers()]}

    # ---- the provider's own API -----------------------------------------------------------------------------

    async def fetch_models(self, provider: Provider) -> list[str]:
        """The provider's model list (its models endpoint), with the first key that is accepted."""
        last = "no API key"
        for key in provider.keys:
            try:
                response = await self.client_for(provider).get(models_url(provider), headers=auth_headers(provider, key),
                                                               timeout=MODELS_TIMEOUT)
            except load_httpx().HTTPError as exc:
                last = f"could not reach {provider.base_url}: {type(exc).__name__}"
                continue
            if response.status_code == 200:
                try:
                    return model_ids(provider, response.json())
                except ValueError:
                    last = "the model list is not JSON"
                    continue
            last = f"HTTP {response.status_code}"
        raise GatewayError(502, f"the model list of provider {provider.label} could not be fetched ({last})",
                           ErrorKind.UPSTREAM, code="provider_models_failed")

    async def refresh_models(self, provider_id: str) -> Provider:
        provider = self.get(provider_id)
        return await self.update(provider.id, {"models": await self.fetch_models(provider)})

    def status(self) -> list[dict[str, Any]]:
        return [{**p.public(), "keysResting": self.keys.status(p.id, p.keys)} for p in self.providers()]

def catalog() -> list[dict[str, Any]]:
    """Built-in providers and their suggested models (GET /auth/api-keys/catalog)."""
    return [{"provider": p.kind, "wire": p.wire, "baseUrl": p.base_url, "models": list(p.models)}
            for p in PRESETS.values()]
