"""Per-account Cloudflare cookies: the jar the dispatcher sends and feeds, persisted in the account record
(`account.cookies`, the jar's export), so each account keeps its own cf_clearance / __cf_bm across restarts
and never lends them to another account (spec/upstream.md §9 identity isolation)."""

from __future__ import annotations

from typing import Any

from ..cookies import BACKEND_DOMAINS, CookieJar, StoredCookie
from .model import Account
from .pool import AccountPool
from .store import AccountStore

_FIELDS = frozenset(StoredCookie.__dataclass_fields__)


def _jar_entry(cookie: dict[str, Any], now: float) -> dict[str, Any] | None:
    """A stored cookie in the jar's export form. Cookies set by hand or imported ({name, value}) apply to
    the whole backend domain as session cookies."""
    if _FIELDS <= cookie.keys():
        return cookie
    if isinstance(cookie.get("name"), str) and isinstance(cookie.get("value"), str):
        return {"name": cookie["name"], "value": cookie["value"], "domain": BACKEND_DOMAINS[0], "host_only": False,
                "path": "/", "expires": None, "created": now}
    return None


class AccountCookies:
    def __init__(self, store: AccountStore, pool: AccountPool) -> None:
        self._store = store
        self._pool = pool

    def jar_for(self, account: Account) -> CookieJar:
        current = self._pool.get(account.id) or account  # the pool's copy sees cleared cookies (empty 404)
        now = self._pool.clock()
        entries = [e for c in current.cookies if (e := _jar_entry(c, now)) is not None]
        return CookieJar.from_export(entries, now=self._pool.clock)

    async def save(self, account: Account, jar: CookieJar) -> None:
        cookies = jar.export()
        current = self._pool.get(account.id) or account
        if cookies == current.cookies:
            return
        current.cookies = account.cookies = cookies
        await self._store.update(account.id, cookies=cookies)
