"""ChatGPT accounts: the SQLite store, logins (browser PKCE, paste-callback, device code, auth.json, tokens,
bulk import), single-flight token refresh, and the pool the request path takes accounts from.

Composition (services.run_accounts):

    store = await AccountStore.open(data_dir / "accounts.sqlite3")
    refresher = TokenRefresher(store, http, identity=identity, margin_seconds=300,   # real refresh headers/body
                               max_in_flight=4)             # refresh tokens being spent at once (crash bound)
    pool = AccountPool(store, refresher, PoolConfig(strategy=Strategy.LEAST_USED, …),
                       verify_quota=fetch_wham_usage,       # async (Account) -> QuotaSnapshot | None
                       on_warning=QuotaWarnings(clock))     # logs + keeps threshold crossings
    service = AccountService(store, pool, refresher, http, fetch_quota=fetch_wham_usage)
    await nursery.start(pool.run)                          # loads accounts, flushes counters
    await nursery.start(refresher.run)                     # confirms unknown refreshes, keeps idle ones fresh
    gateway.drain_hooks.append(refresher.drain)            # SIGTERM waits for refreshes in flight
    await nursery.start(partial(QuotaPoller(pool, interval=…).run,  # /wham/usage for stale accounts, after
                                first_round_after=gateway.serving))  # resets; first round once serving

Request path:

    async with pool.acquire(model=…, conversation_id=…, previous_response_id=…, exclude=tried) as lease:
        lease.account.tokens.access_token, lease.account.account_id, lease.account.installation_id, …
        await lease.update_quota(snapshot)               # any upstream.quota.QuotaSnapshot (headers, events)
        await lease.report_success(quota, response_id=…, input_tokens=…, output_tokens=…)
        # or before the first byte: mark_rate_limited / mark_banned / mark_token_invalid / report_failure
"""

from .http import DeliveryUnknown, HttpResponse, NotDelivered, OAuthHttp
from .login import BrowserLogin, LoginError, LoginServer, OAuthClient
from .model import Account, AccountStatus, Tokens
from .pool import AccountPool, Failure, Lease, PoolConfig, Strategy
from ..upstream.quota import QuotaSnapshot, QuotaWindow
from .refresh import AccountGone, RefreshFailed, TokenRefresher
from .service import AccountService
from .store import AccountStore, StoreError

__all__ = [
    "Account", "AccountGone", "AccountPool", "AccountService", "AccountStatus", "AccountStore", "BrowserLogin",
    "DeliveryUnknown", "Failure", "HttpResponse", "Lease", "LoginError", "LoginServer", "NotDelivered",
    "OAuthClient", "OAuthHttp", "PoolConfig", "QuotaSnapshot", "QuotaWindow", "RefreshFailed", "StoreError",
    "Strategy", "TokenRefresher", "Tokens",
]
