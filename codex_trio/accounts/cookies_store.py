"""Per-account Cloudflare cookies: the jar the dispatcher sends and feeds, persisted in the account record
(`account.cookies`, the jar's export), so each account keeps its own cf_clearance / __cf_bm across restarts
and never lends them to another account (spec/upstream.md §9 identity isolation)."""

from __future__ import annotations

from ..cookies import CookieJar
from .model import Account
from .pool import AccountPool
from .store import AccountStore


class AccountCookies:
    def __init__(self, store: AccountStore, pool: AccountPool) -> None:
        self._store = store
        self._pool = pool

    def jar_for(self, account: Account) -> CookieJar:
        current = self._pool.get(account.id) or account  # the pool's copy sees cleared cookies (empty 404)
        return CookieJar.from_export(current.cookies)

    async def save(self, account: Account, jar: CookieJar) -> None:
        cookies = jar.export()
        current = self._pool.get(account.id) or account
        if cookies == current.cookies:
            return
        current.cookies = account.cookies = cookies
        await self._store.update(account.id, cookies=cookies)
