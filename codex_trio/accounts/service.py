"""`AccountService`: what the CLI and the admin routes call. Every method returns plain dicts in the shapes of
the reference gateway's endpoint tables (seeds/codex-proxy-readme.txt, "Auth & Accounts"); the routes only
map HTTP to these calls. Listings never contain tokens; only `export` does.

Bad input raises `GatewayError` (4xx) with a message that says what to do.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable

import trio

from codex_trio.errors import ErrorKind, GatewayError, invalid_request

from . import oauth
from .authjson import AuthJsonError, is_auth_json, read_auth_json
from .fields import checked_proxy, text_field
from .proxies import mask_assignment
from .formats import ImportEntry, ImportFormatError, export_full, export_minimal, export_refresh_tokens, parse_import
from .http import OAuthHttp
from .jwt import identity_from_tokens
from .model import Account, AccountStatus, Tokens
from .pool import AccountPool
from ..heap import release_free_heap
from ..upstream.quota import QuotaSnapshot
from .refresh import IssuerSilent, RefreshFailed, TokenRefresher
from .store import AccountStore

QuotaFetcher = Callable[[Account], Awaitable[QuotaSnapshot | None]]


def _link_target(payload: Any, entries: list[ImportEntry], source_path: Path | None) -> Path | None:
    """Where an imported Codex CLI auth.json lives, if the import is one (None otherwise)."""
    if len(entries) != 1 or not is_auth_json(payload):
        return None
    if source_path is not None:
        return source_path.expanduser().resolve()
    try:
        local = read_auth_json()
    except AuthJsonError:
        return None
    return local.path.resolve() if local.refresh_token == entries[0].refresh_token else None


def _new_account_id() -> str:
    return uuid.uuid4().hex[:12]


def _not_found(account_id: str) -> GatewayError:
    return GatewayError(404, f"no account with id {account_id!r}", ErrorKind.NOT_FOUND, code="account_not_found")


class AccountService:
    def __init__(self, store: AccountStore, pool: AccountPool, refresher: TokenRefresher, http: OAuthHttp, *,
                 token_url: str = oauth.token_url(), fetch_quota: QuotaFetcher | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.pool = pool
        self.refresher = refresher
        self._http = http
        self._token_url = token_url
        self._fetch_quota = fetch_quota
        self._clock = clock

    # ---- views ----------------------------------------------------------------------------------------

    def describe(self, account: Account, *, quota: bool = True) -> dict[str, Any]:
        info = self.pool.runtime_info(account.id)
        now = self._clock()
        out: dict[str, Any] = {
            "id": account.id,
            "label": account.label,
            "email": account.email,
            "account_id": account.account_id,
            "user_id": account.user_id,
            "plan_type": account.plan,
            "status": str(account.status),
            "status_reason": account.status_reason,
            "status_changed_at": account.status_changed_at,
            "enabled": account.enabled,
            "cooldown_until": account.cooldown_until if (account.cooldown_until or 0) > now else None,
            "expires_at": account.access_expires_at,
            "last_refresh": account.last_refresh,
            "has_refresh_token": bool(account.tokens.refresh_token),
            "installation_id": account.installation_id,
            "proxy": mask_assignment(account.proxy),
            "auth_json_path": account.auth_json_path,
            "usage": {"request_count": account.request_count, "input_tokens": account.input_tokens,
                      "output_tokens": account.output_tokens, "last_used_at": account.last_used_at},
            "in_flight": info.get("in_flight", 0),
            "last_failure": info.get("last_failure"),
            "created_at": account.created_at,
        }
        if quota:
            out["quota"] = info.get("quota") if info.get("quota") is not None else account.quota
            out["quota_updated_at"] = account.quota_updated_at
        return out

    async def _account(self, account_id: str) -> Account:
        account = await self.store.get(account_id)
        if account is None:
            raise _not_found(account_id)
        return account

    async def list(self, *, quota: str | bool = False) -> dict[str, Any]:
        """GET /auth/accounts (?quota=true shows cached quota, ?quota=fresh asks /wham/usage first)."""
        accounts = await self.store.list()
        check_failed: dict[str, str] = {}
        if quota == "fresh" and self._fetch_quota is not None:
            for account in accounts:
                if not account.usable:
                    continue
                try:
                    await self._probe_quota(account)
                except Exception as exc:  # noqa: BLE001 - one account's failed check must not hide the others
                    check_failed[account.id] = exc.message if isinstance(exc, GatewayError) else \
                        f"{type(exc).__name__}: {exc}"
            accounts = await self.store.list()
        listing = []
        accounts.reverse()
        while accounts:  # each record read is dropped once described, so the views reuse its memory
            account = accounts.pop()
            # The pool's copy carries counters not flushed yet. A record equal to the pool's is not swapped in:
            # replacing every record moved the pool's 5,000 accounts to new memory at each listing and left the
            # old place behind as holes the process kept (5,000 accounts: +9 to +26 MiB after 5 listings).
            if self.pool.get(account.id) != account:
                self.pool.upsert(account)
            view = self.describe(self.pool.get(account.id) or account, quota=bool(quota))
            if account.id in check_failed:
                view["quota_error"] = check_failed[account.id]
            listing.append(view)
        release_free_heap()  # what the records read held goes back (glibc's part; see heap.py)
        return {"accounts": listing, "skipped": self.store.skipped_rows}

    async def get(self, account_id: str) -> dict[str, Any]:
        return self.describe(await self._account(account_id))

    # ---- adding ---------------------------------------------------------------------------------------

    async def _redeem_refresh_token(self, refresh_token: str) -> oauth.TokenGrant:
        """Turn a bare refresh token into tokens (one request: a lost answer is reported, never resent)."""
        await self.store.ping()  # without the store the new tokens could not be kept: do not spend this one
        headers, body = self.refresher.refresh_request(refresh_token, oauth.RefreshReason.PROACTIVE_EXPIRY)
        try:
            response = await self._http.post(self._token_url, headers, body)
        except Exception as exc:  # noqa: BLE001
            raise GatewayError(502, f"could not reach the issuer to redeem the refresh token ({exc}); if it "
                               "was delivered the token is now used — log in again in that case",
                               ErrorKind.UPSTREAM, code="refresh_unreachable") from None
        try:
            return oauth.parse_token_grant(response.status, response.body)
        except oauth.OAuthError as err:
            raise invalid_request(f"the refresh token was rejected ({err.code}); it may be used or expired",
                                  param="refreshToken", code=err.code) from None

    async def add_tokens(self, *, access_token: str | None = None, refresh_token: str | None = None,
                         id_token: str | None = None, label: str | None = None, enabled: bool = True,
                         installation_id: str | None = None, proxy: str | None = None,
                         cookies: list[dict[str, Any]] | None = None, auth_json_path: str | None = None,
                         preferred_id: str | None = None) -> tuple[Account, bool]:
        """Add an account, or update the one with the same ChatGPT account + user (the store makes that one
        transaction, so concurrent adds of one login make one row). `preferred_id` (an export's id) is kept
        when no other account has it. Returns (account, created)."""
        if not access_token and not refresh_token:
            raise invalid_request("give an access token (`token`) or a refresh token (`refreshToken`)",
                                  param="token")
        details = dict(label=label, enabled=enabled, installation_id=installation_id, proxy=proxy, cookies=cookies,
                       auth_json_path=auth_json_path, preferred_id=preferred_id)
        if access_token:
            return await self._store_login(access_token, refresh_token, id_token, **details)

        async def redeem_and_store() -> tuple[Account, bool]:
            grant = await self._redeem_refresh_token(refresh_token)  # type: ignore[arg-type]
            return await self._store_login(grant.access_token, grant.refresh_token or refresh_token,
                                           grant.id_token or id_token, **details)

        # the bare refresh token is spent by the redeem: like every refresh, in one of the few in-flight slots
        try:
            return await self.refresher.spend(redeem_and_store)
        except IssuerSilent as exc:
            raise GatewayError(502, f"{exc}: if the refresh token arrived it is now used — log in again in that "
                               "case", ErrorKind.UPSTREAM, code="refresh_unreachable") from None
        except RefreshFailed as exc:  # shutting down
            raise GatewayError(503, f"the refresh token was not redeemed: {exc}", ErrorKind.OVERLOADED,
                               code="refresh_unavailable") from None

    async def _store_login(self, access_token: str, refresh_token: str | None, id_token: str | None, *,
                           label: str | None, enabled: bool, installation_id: str | None, proxy: str | None,
                           cookies: list[dict[str, Any]] | None, auth_json_path: str | None,
                           preferred_id: str | None) -> tuple[Account, bool]:
        ident = identity_from_tokens(access_token, id_token)
        if ident.account_id is None:
            raise invalid_request("the access token is not a ChatGPT JWT (no chatgpt_account_id claim)",
                                  param="token", code="invalid_token")
        now = self._clock()

        def changes(existing: Account) -> dict[str, Any]:
            fields: dict[str, Any] = {"label": label or existing.label, "enabled": enabled or existing.enabled}
            if (ident.expires_at or 0) >= (existing.access_expires_at or 0):  # ours is the newer login
                fields.update(access_token=access_token, refresh_token=refresh_token or existing.tokens.refresh_token,
                              id_token=id_token or existing.tokens.id_token, access_expires_at=ident.expires_at,
                              plan=ident.plan or existing.plan, email=ident.email or existing.email,
                              status=AccountStatus.ACTIVE, status_reason=None, status_changed_at=now)
            if auth_json_path:
                fields["auth_json_path"] = auth_json_path
            return fields

        candidate = Account(
            id=preferred_id or _new_account_id(), tokens=Tokens(access_token, refresh_token, id_token),
            account_id=ident.account_id, email=ident.email, plan=ident.plan, user_id=ident.user_id, label=label,
            enabled=enabled, status=AccountStatus.ACTIVE if enabled else AccountStatus.DISABLED,
            status_changed_at=now, access_expires_at=ident.expires_at,
            last_refresh=now if refresh_token and not id_token else None,
            installation_id=installation_id or str(uuid.uuid4()), proxy=proxy, cookies=cookies or [],
            auth_json_path=auth_json_path)
        account, created = await self.store.upsert_identity(candidate, changes, _new_account_id)
        self.pool.upsert(account)
        return account, created

    async def add_by_token(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /auth/accounts with {"token"} and/or {"refreshToken"}, optional "label"."""
        if not isinstance(body, dict):
            raise invalid_request("expected a JSON object with `token` or `refreshToken`")
        account, created = await self.add_tokens(access_token=text_field(body, "token", "access_token"),
                                                 refresh_token=text_field(body, "refreshToken", "refresh_token"),
                                                 label=text_field(body, "label"))
        return {"success": True, "created": created, "account": self.describe(account)}

    async def add_from_grant(self, grant: oauth.TokenGrant, *, label: str | None = None) -> dict[str, Any]:
        """After a browser / paste / device login."""
        account, created = await self.add_tokens(access_token=grant.access_token,
                                                 refresh_token=grant.refresh_token, id_token=grant.id_token,
                                                 label=label)
        return {"success": True, "created": created, "account": self.describe(account)}

    async def import_file(self, path: str | Path, *, link: bool = True, json_only: bool = False,
                          on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Import a file of this machine (`codex-trio accounts import FILE`, admin `{"path"}`): any import
        format; a Codex CLI auth.json is linked to this path unless `link` is False. `json_only` (the admin
        route) refuses anything but JSON, so no other file of the machine is read as refresh tokens and sent
        to the issuer line by line."""
        file = Path(path).expanduser()
        try:
            payload = await trio.to_thread.run_sync(file.read_bytes)
        except FileNotFoundError:
            message = f"cannot read {file}: no such file"
            if file.name == "auth.json":
                try:
                    read_auth_json(file)
                except AuthJsonError as exc:  # says where the Codex CLI keeps its login instead
                    message = str(exc)
            raise invalid_request(message, code="import_file_unreadable") from None
        except OSError as exc:
            raise invalid_request(f"cannot read {file}: {exc.strerror}", code="import_file_unreadable") from None
        if json_only and payload.lstrip()[:1] not in (b"{", b"["):
            raise invalid_request(f"{file} is not a JSON export or auth.json", param="path")
        return await self.import_accounts(payload, source_path=file, link=link, on_progress=on_progress)

    async def import_accounts(self, payload: bytes | str | Any, *, source_path: Path | None = None,
                              link: bool = True,
                              on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """POST /auth/accounts/import → {"added","updated","failed","errors","linked"}.

        Entries are added concurrently; those that are bare refresh tokens are redeemed a few at a time
        (the refresher's in-flight bound). `on_progress(done, total)` is called as entries finish.
        A Codex CLI auth.json is linked (refreshed tokens are written back to it) unless `link` is False:
        to `source_path` when the file came from there, else to this machine's `$CODEX_HOME/auth.json` when
        that file holds the same login (an uploaded copy of it)."""
        try:
            entries, errors = parse_import(payload)
        except ImportFormatError as exc:
            raise invalid_request(f"cannot import: {exc}") from None
        link_to = await trio.to_thread.run_sync(_link_target, payload, entries, source_path) if link else None
        outcomes: dict[int, tuple[Account, bool] | str] = {}

        async def add(index: int, entry: ImportEntry) -> None:
            try:
                checked_proxy(entry.proxy)
                outcomes[index] = await self.add_tokens(
                    access_token=entry.access_token, refresh_token=entry.refresh_token, id_token=entry.id_token,
                    label=entry.label, enabled=entry.enabled, installation_id=entry.installation_id,
                    proxy=entry.proxy, cookies=entry.cookies, preferred_id=entry.id,
                    auth_json_path=str(link_to) if link_to else None)
            except GatewayError as exc:
                outcomes[index] = f"entry {index}: {exc.message}"
            if on_progress is not None:
                on_progress(len(outcomes) - 1, len(entries))

        async with trio.open_nursery() as nursery:
            for index, entry in enumerate(entries):
                nursery.start_soon(add, index, entry)
        added = updated = 0
        linked = []
        for index in sorted(outcomes):
            outcome = outcomes[index]
            if isinstance(outcome, str):
                errors.append(outcome)
                continue
            account, created = outcome
            added += created
            updated += not created
            if account.auth_json_path and link_to:
                linked.append({"id": account.id, "auth_json_path": account.auth_json_path})
        return {"added": added, "updated": updated, "failed": len(errors), "errors": errors, "linked": linked}

    async def export(self, *, format: str = "full", ids: Iterable[str] | None = None) -> dict[str, Any] | str:
        """GET /auth/accounts/export (?format=minimal: refreshToken + label; ?format=tokens: one per line)."""
        accounts = await self.store.list()
        if ids is not None:
            wanted = set(ids)
            accounts = [a for a in accounts if a.id in wanted]
        if format == "full":
            return export_full(accounts)
        if format == "minimal":
            return export_minimal(accounts)
        if format == "tokens":
            return export_refresh_tokens(accounts)
        raise invalid_request("format must be full, minimal or tokens", param="format")

    # ---- changing -------------------------------------------------------------------------------------

    async def remove(self, account_id: str) -> dict[str, Any]:
        if await self.store.delete([account_id]) == 0:
            raise _not_found(account_id)
        self.pool.remove([account_id])
        return {"success": True}

    async def batch_delete(self, ids: list[str]) -> dict[str, Any]:
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise invalid_request("`ids` must be a list of account ids", param="ids")
        deleted = await self.store.delete(ids)
        self.pool.remove(ids)
        return {"success": True, "deleted": deleted}

    async def batch_status(self, ids: list[str], status: str) -> dict[str, Any]:
        """Enable (`active`) or disable (`disabled`) accounts."""
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise invalid_request("`ids` must be a list of account ids", param="ids")
        if status not in ("active", "disabled"):
            raise invalid_request("status must be `active` or `disabled`", param="status")
        enabled = status == "active"
        now = self._clock()
        updated = await self.store.update_many(ids, enabled=enabled, status=AccountStatus(status),
                                               status_reason=None if enabled else "disabled by the user",
                                               status_changed_at=now, cooldown_until=None)
        for account_id in ids:
            account = await self.store.get(account_id)
            if account is not None:
                self.pool.upsert(account)
        return {"success": True, "updated": updated}

    async def set_label(self, account_id: str, label: str | None) -> dict[str, Any]:
        if not await self.store.update(account_id, label=label or None):
            raise _not_found(account_id)
        account = await self._account(account_id)
        self.pool.upsert(account)
        return {"success": True, "account": self.describe(account)}

    async def set_enabled(self, account_id: str, enabled: bool) -> dict[str, Any]:
        await self._account(account_id)
        await self.batch_status([account_id], "active" if enabled else "disabled")
        return {"success": True, "account": self.describe(await self._account(account_id))}

    async def set_proxy(self, account_id: str, proxy: str | None) -> dict[str, Any]:
        if not await self.store.update(account_id, proxy=proxy or None):
            raise _not_found(account_id)
        account = await self._account(account_id)
        self.pool.upsert(account)
        return {"success": True, "account_id": account_id, "proxy": mask_assignment(account.proxy)}

    # ---- probing --------------------------------------------------------------------------------------

    async def _probe_quota(self, account: Account) -> dict[str, Any] | None:
        if self._fetch_quota is None:
            return None
        snapshot = await self._fetch_quota(account)
        if snapshot is None:
            return None
        if self.pool.get(account.id) is None:
            self.pool.upsert(account)
        await self.pool.record_quota(account.id, snapshot)  # warnings, cooldown or release, persisted
        return snapshot.to_dict()

    async def refresh(self, account_id: str) -> dict[str, Any]:
        """POST /auth/accounts/:id/refresh: refresh the tokens now, then probe the quota."""
        await self._account(account_id)
        try:
            account = await self.refresher.refresh(account_id, oauth.RefreshReason.PROACTIVE_EXPIRY, force=True)
        except RefreshFailed as exc:
            account = await self._account(account_id)
            self.pool.upsert(account)
            return {"success": False, "error": str(exc), "permanent": exc.permanent,
                    "account": self.describe(account)}
        quota = await self._probe_quota(account)
        account = await self._account(account_id)
        self.pool.upsert(account)
        return {"success": True, "account": self.describe(account), "quota": quota}

    async def quota(self, account_id: str) -> dict[str, Any]:
        """GET /auth/accounts/:id/quota (asks the backend)."""
        account = await self._account(account_id)
        if self._fetch_quota is None:
            raise GatewayError(503, "quota checks are not available", ErrorKind.OVERLOADED)
        return {"id": account_id, "quota": await self._probe_quota(account)}

    async def health_check(self, ids: list[str] | None = None) -> dict[str, Any]:
        """POST /auth/accounts/health-check: for each account, make sure the tokens are fresh and probe quota."""
        accounts = await self.store.list()
        results = []
        if ids is not None:
            known = {a.id for a in accounts}
            results = [{"id": i, "ok": False, "status": None, "error": _not_found(i).message}
                       for i in dict.fromkeys(ids) if i not in known]
            accounts = [a for a in accounts if a.id in set(ids)]
        for account in accounts:
            if not account.enabled:
                results.append({"id": account.id, "ok": False, "status": str(account.status),
                                "error": "disabled"})
                continue
            try:
                fresh = await self.refresher.ensure_fresh(account)
                quota = await self._probe_quota(fresh)
                results.append({"id": account.id, "ok": True, "status": str(fresh.status), "quota": quota})
            except RefreshFailed as exc:
                results.append({"id": account.id, "ok": False, "status": str((await self._account(account.id)).status),
                                "error": str(exc)})
            except Exception as exc:  # noqa: BLE001 - one account's probe failing must not stop the batch
                results.append({"id": account.id, "ok": False, "status": str(account.status),
                                "error": f"{type(exc).__name__}: {exc}"})
            latest = await self.store.get(account.id)
            if latest is not None:
                self.pool.upsert(latest)
        return {"results": results}

    # ---- cookies --------------------------------------------------------------------------------------

    async def cookies(self, account_id: str) -> dict[str, Any]:
        return {"id": account_id, "cookies": (await self._account(account_id)).cookies}

    async def set_cookies(self, account_id: str, cookies: Any) -> dict[str, Any]:
        """POST: merge cookies by name ({"name","value",…} objects, or a {"name": "value"} map)."""
        if isinstance(cookies, dict):
            cookies = [{"name": k, "value": v} for k, v in cookies.items()]
        if not isinstance(cookies, list) or not all(
                isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("value"), str)
                for c in cookies):
            raise invalid_request("cookies must be a list of {name, value} objects or a name→value map",
                                  param="cookies")
        account = await self._account(account_id)
        merged = {c["name"]: c for c in account.cookies}
        merged.update({c["name"]: c for c in cookies})
        await self.store.update(account_id, cookies=list(merged.values()))
        self.pool.upsert(await self._account(account_id))
        return {"success": True, "id": account_id, "cookies": list(merged.values())}

    async def delete_cookies(self, account_id: str) -> dict[str, Any]:
        if not await self.store.update(account_id, cookies=[]):
            raise _not_found(account_id)
        self.pool.upsert(await self._account(account_id))
        return {"success": True, "id": account_id, "cookies": []}
