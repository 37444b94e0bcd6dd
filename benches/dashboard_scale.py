"""The dashboard at scale (issue #15): 5,000 accounts and 1,000,000 usage rows over 30 days in a real
`codex-trio demo` data directory, then (1) every admin call the pages make, timed over HTTP with the admin key, and
(2) each page's time to interactive in Chromium (full load of `/#/<page>` until the page has rendered its data).

    python -m benches.dashboard_scale [--accounts 5000] [--rows 1000000] [--repeat 5]

Goals: no admin call over 100 ms, every page interactive within 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from benches.usage_history import fill
from codex_trio.accounts.model import Account, Tokens
from codex_trio.accounts.store import _insert, _SyncStore
from codex_trio.config.writer import update_local_file
from codex_trio.telemetry.store import OPERATOR_DB, OperatorStore

PAGE_CALLS = {
    "overview": ["/admin/overview"],
    "accounts": ["/admin/accounts-page?offset=0&limit=100", "/admin/accounts-page?offset=4900&limit=100&q=bench",
                 "/admin/accounts-page?offset=0&limit=1&ids=1"],
    "keys": ["/admin/client-keys", "/admin/usage-stats/history?granularity=day&group_by=key&from=30d"],
    "usage": ["/admin/usage-stats/history?granularity=hour&group_by=model&from=24h",
              "/admin/usage-stats/history?granularity=day&group_by=account&from=30d",
              "/admin/usage-stats/history?granularity=hour&group_by=key&from=7d"],
    "logs": ["/admin/logs?limit=100", "/admin/logs?limit=100&source=errors"],
    "settings": ["/admin/settings", "/admin/ollama-status"],
    "setup": ["/admin/settings"],
}


def quota(now: float, used: float) -> dict:
    window = lambda minutes, pct: {"used_percent": pct, "window_minutes": minutes, "resets_at": now + minutes * 30}
    return {"limit_id": "codex", "primary": window(300, used), "secondary": window(10080, used / 2),
            "limit_reached": used >= 100, "credits": {"has_credits": False, "unlimited": False, "balance": "0"},
            "plan": "plus"}


def fill_accounts(data_dir: Path, count: int) -> float:
    now = time.time()
    accounts = [Account(id=f"bench{i:05d}", tokens=Tokens(access_token=f"at-{i}", refresh_token=f"rt-{i}"),
                        account_id=str(uuid.UUID(int=i + 1)), email=f"user{i}@example.com",
                        plan=("plus", "pro", "team")[i % 3], user_id=f"user-{i}", label=f"bench {i}",
                        access_expires_at=now + 10 * 86400, installation_id=str(uuid.UUID(int=10**9 + i)),
                        quota=quota(now, float(i % 101)), quota_updated_at=now, created_at=now, updated_at=now)
                for i in range(count)]
    began = time.perf_counter()
    store = _SyncStore(data_dir / "accounts.sqlite3")
    store.transaction(lambda conn: [_insert(conn, account) for account in accounts])
    store.close()
    return time.perf_counter() - began


def start_demo(data_dir: Path):
    from tests.web.conftest import start_demo as start

    return start(data_dir)


def time_calls(demo, repeat: int) -> list[tuple[str, float, float, int]]:
    rows = []
    extra = ["/auth/accounts?quota=true", "/admin/usage-stats/summary"]  # not made by the pages; for comparison
    with httpx.Client(base_url=demo.url, headers={"authorization": f"Bearer {demo.key}"}, timeout=60) as client:
        for path in dict.fromkeys([*(p for calls in PAGE_CALLS.values() for p in calls), *extra]):
            timings, size = [], 0
            for _ in range(repeat):
                began = time.perf_counter()
                response = client.get(path)
                timings.append((time.perf_counter() - began) * 1000)
                assert response.status_code == 200, (path, response.text[:300])
                size = len(response.content)
            rows.append((path, min(timings), statistics.median(timings), size))
    return rows


def time_pages(demo, repeat: int) -> list[tuple[str, float, float]]:
    from playwright.sync_api import sync_playwright

    from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS

    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=demo.url)
        page = context.new_page()
        page.goto(demo.link)
        page.wait_for_selector("main[data-ready]")
        for name in PAGE_CALLS:
            timings = []
            for _ in range(repeat):
                page.goto("about:blank")
                began = time.perf_counter()
                page.goto(f"/#/{name}")
                page.wait_for_selector(f"main[data-ready='{name}']", timeout=60_000)
                timings.append((time.perf_counter() - began) * 1000)
            rows.append((name, min(timings), statistics.median(timings)))
        browser.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dashboard-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir(mode=0o700)
        # every account's quota was just read: no polling round starts while we measure
        update_local_file(data_dir / "local.yaml", {"quota": {"refresh_interval_minutes": 1440}})
        seconds = fill_accounts(data_dir, args.accounts)
        print(f"{args.accounts:,} accounts written in {seconds:.1f} s")
        store = OperatorStore.open_sync(data_dir / OPERATOR_DB)
        seconds = fill(store, args.rows, models=6, accounts=min(args.accounts, 200), keys=20,
                       end=time.time() // 60 * 60)
        store.sync.close()
        print(f"{args.rows:,} usage rows written in {seconds:.1f} s")
        demo = start_demo(data_dir)
        try:
            print(f"\n{'admin call':<70}{'best ms':>9}{'median ms':>11}{'bytes':>11}")
            for path, best, median, size in time_calls(demo, args.repeat):
                print(f"{path:<70}{best:>9.1f}{median:>11.1f}{size:>11,}")
            print(f"\n{'page (full load to rendered data)':<40}{'best ms':>9}{'median ms':>11}")
            for name, best, median in time_pages(demo, max(1, args.repeat // 2)):
                print(f"{name:<40}{best:>9.0f}{median:>11.0f}")
        finally:
            demo.process.terminate()
            demo.process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
