"""What the admin API and the CLI do with the proxy pool: add / change / remove proxies, assign accounts to
routes (one, many, all), check health. Routes and commands only map their input onto these calls."""

from __future__ import annotations

import fnmatch
import io
from typing import TYPE_CHECKING, Any, Callable

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ..errors import ErrorKind, GatewayError, invalid_request
from .fields import checked_proxy, text_field
from .proxies import ID_PREFIX, NoRoute, ProxyPool, auto_group, checked_proxy_url

if TYPE_CHECKING:
    from .model import Account
    from .service import AccountService
    from .proxy_health import ProxyChecker

PROXY_FIELDS = ("url", "label", "group", "enabled")


def _proxy_fields(body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    unknown = sorted(set(body) - set(PROXY_FIELDS))
    if unknown:
        raise invalid_request(f"a proxy has the fields {', '.join(PROXY_FIELDS)}; unknown: {', '.join(unknown)}")
    if creating and "url" not in body:
        raise invalid_request("`url` is required (http://, https://, socks5:// or socks5h://, credentials as "
                              "user:password@)", param="url")
    if "enabled" in body and not isinstance(body["enabled"], bool):
        raise invalid_request("`enabled` must be true or false", param="enabled")
    fields: dict[str, Any] = {}
    if "url" in body:
        fields["url"] = checked_proxy_url(body["url"])
    if "label" in body:
        fields["label"] = text_field(body, "label")
    if "group" in body:
        fields["group"] = text_field(body, "group") or "default"
    if "enabled" in body:
        fields["enabled"] = body["enabled"]
    return fields


class ProxyService:
    def __init__(self, proxies: ProxyPool, accounts: "AccountService", checker: "ProxyChecker | None" = None) -> None:
        self.proxies = proxies
        self.accounts = accounts
        self.checker = checker
        # called with the ids of accounts whose egress route changed: their open upstream sockets still go
        # through the old route, so the dispatcher retires them
        self.route_listeners: list[Callable[[list[str]], None]] = []
        self._last_routes: dict[str, str | None] = {}  # as of the last rebalance or assignment

    async def _all_accounts(self) -> list["Account"]:
        return await self.accounts.store.list()

    def _routes(self, accounts: list["Account"]) -> dict[str, str | None]:
        routes: dict[str, str | None] = {}
        for account in accounts:
            try:
                routes[account.id] = self.proxies.route_for(account)
            except NoRoute:
                routes[account.id] = "\0paused"
        return routes

    def _announce(self, before: dict[str, str | None], after: dict[str, str | None]) -> None:
        changed = [account_id for account_id, route in after.items() if before.get(account_id, route) != route]
        if changed:
            for listener in self.route_listeners:
                listener(changed)

    async def rebalance(self, accounts: list["Account"] | None = None) -> None:
        """Give auto accounts whose proxy went away (removed, disabled, excluded) a usable one; persist.
        `accounts`: every account of the store, when the caller has just read them (start-up)."""
        accounts = await self._all_accounts() if accounts is None else accounts
        self.proxies.place(accounts)
        await self.proxies.flush()
        self._announce(self._last_routes, routes := self._routes(accounts))
        self._last_routes = routes

    # ---- proxies

    async def list(self) -> dict[str, Any]:
        self.proxies.count_pinned(await self._all_accounts())
        return {"proxies": self.proxies.list()}

    async def get(self, proxy_id: str) -> dict[str, Any]:
        proxy = self.proxies.get(proxy_id)
        self.proxies.count_pinned(await self._all_accounts())
        return proxy.view(self.proxies.counts().get(proxy_id, 0))

    async def add(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = _proxy_fields(body, creating=True)
        proxy = await self.proxies.add(fields.pop("url"), **fields)
        await self.rebalance()  # auto accounts that had no usable proxy get this one
        return await self.get(proxy.id)

    async def update(self, proxy_id: str, body: dict[str, Any]) -> dict[str, Any]:
        fields = _proxy_fields(body, creating=False)
        if not fields:
            raise invalid_request(f"send one of {', '.join(PROXY_FIELDS)}")
        await self.proxies.update(proxy_id, **fields)
        await self.rebalance()
        return await self.get(proxy_id)

    async def remove(self, proxy_id: str) -> dict[str, Any]:
        proxy = await self.proxies.remove(proxy_id)
        await self.rebalance()  # its auto accounts move; accounts assigned to it by id are paused (reason shown)
        pinned = [a.id for a in await self._all_accounts() if a.proxy == proxy_id]
        return {"removed": proxy.view(), "paused_accounts": pinned}

    # ---- export / import (YAML; the URLs carry their credentials: treat the file like an account export)

    def export_yaml(self) -> str:
        entries = [{"url": p.url, "label": p.label, "group": p.group, "enabled": p.enabled}
                   for p in self.proxies.proxies.values()]
        out = io.StringIO()
        YAML(typ="safe", pure=True).dump({"proxies": entries}, out)
        return out.getvalue()

    async def import_yaml(self, text: str) -> dict[str, Any]:
        """Add the proxies of an export (or `{"proxies": [...]}` / a bare list; a bare URL string per entry
        is fine); a URL already in the pool gets the entry's label, group and enabled. All entries are checked
        before anything changes: a bad one is a 400 naming it."""
        try:
            data = YAML(typ="safe", pure=True).load(text)
        except YAMLError as exc:
            raise invalid_request(f"the proxy list is not valid YAML: {str(exc).splitlines()[0]}") from None
        entries = data.get("proxies") if isinstance(data, dict) else data
        if not isinstance(entries, list):
            raise invalid_request("send a YAML list of proxies, or {proxies: [...]} as `proxies export` writes")
        checked = []
        for index, entry in enumerate(entries):
            entry = {"url": entry} if isinstance(entry, str) else entry
            if not isinstance(entry, dict):
                raise invalid_request(f"proxy #{index + 1}: an entry is a URL or {{url, label, group, enabled}}")
            try:
                checked.append(_proxy_fields({k: v for k, v in entry.items() if v is not None}, creating=True))
            except GatewayError as exc:
                raise invalid_request(f"proxy #{index + 1}: {exc.message}", param=exc.param) from None
        by_url = {p.url: p for p in self.proxies.proxies.values()}
        added = updated = 0
        for fields in checked:
            url = fields.pop("url")
            existing = by_url.get(url)
            if existing is None:
                by_url[url] = await self.proxies.add(url, **fields)
                added += 1
            else:
                if fields:
                    await self.proxies.update(existing.id, **fields)
                updated += 1
        await self.rebalance()
        return {"added": added, "updated": updated, "proxies": self.proxies.list()}

    # ---- assignments

    async def assignments(self) -> dict[str, Any]:
        return {"assignments": [self.proxies.account_route(a) for a in await self._all_accounts()]}

    async def matching(self, rule: Any) -> list[str]:
        """Ids of the accounts a rule picks: `{"label": glob, "email": glob, "plan": name}` (all given must match;
        globs as in a shell, case-insensitive). Rule-based assignment puts them all on one route."""
        if not isinstance(rule, dict) or not rule or set(rule) - {"label", "email", "plan"}:
            raise invalid_request("`match` is an object with any of label (glob), email (glob), plan", param="match")
        if not all(isinstance(v, str) and v for v in rule.values()):
            raise invalid_request("each `match` field is a non-empty string", param="match")

        def fits(account: "Account") -> bool:
            return all(fnmatch.fnmatchcase((getattr(account, name) or "").lower(), pattern.lower())
                       for name, pattern in rule.items())

        ids = [a.id for a in await self._all_accounts() if fits(a)]
        if not ids:
            raise GatewayError(404, f"no account matches {rule}", ErrorKind.NOT_FOUND, code="account_not_found")
        return ids

    async def assign(self, account_ids: list[str], route: Any) -> dict[str, Any]:
        """Put these accounts on one route (default, direct, auto, auto:<group>, a pool proxy id, a URL): one
        write for all of them (bulk assignment of hundreds of accounts is one transaction)."""
        assignment = checked_proxy(route)
        if assignment and assignment.startswith(ID_PREFIX):
            self.proxies.get(assignment)  # 404 for a proxy that is not in the pool
        wanted = list(dict.fromkeys(account_ids))
        accounts = await self._all_accounts()
        known = {a.id for a in accounts}
        missing = [i for i in wanted if i not in known]
        if missing:
            raise GatewayError(404, f"no account with id {missing[0]!r}" + (f" (and {len(missing) - 1} more)"
                               if len(missing) > 1 else ""), ErrorKind.NOT_FOUND, code="account_not_found")
        before = self._routes(accounts)
        await self.accounts.store.update_many(wanted, proxy=assignment)
        if auto_group(assignment) is not False:  # a new auto assignment chooses afresh: fewest accounts first
            for account_id in wanted:
                self.proxies.choices.pop(account_id, None)
        accounts = await self._all_accounts()
        chosen = set(wanted)
        for account in accounts:
            if account.id in chosen:
                self.accounts.pool.upsert(account)
        self.proxies.place(accounts)
        await self.proxies.flush()
        self._last_routes = self._routes(accounts)
        self._announce(before, self._last_routes)
        return {"assigned": len(wanted),
                "assignments": [self.proxies.account_route(a) for a in accounts if a.id in chosen]}

    # ---- health

    async def check(self, proxy_id: str) -> dict[str, Any]:
        assert self.checker is not None, "no checker"
        proxy = self.proxies.get(proxy_id)
        await self.checker.check(proxy)
        await self.rebalance()
        return await self.get(proxy_id)

    async def check_all(self) -> dict[str, Any]:
        assert self.checker is not None, "no checker"
        await self.checker.check_all(list(self.proxies.proxies.values()))
        await self.rebalance()
        return await self.list()
