"""5,000 accounts (issue #20, goal 5): RSS, start-up and the cost of choosing an account per request.

1. A data directory with `--accounts` accounts (realistic JWT-sized tokens, half with a quota snapshot) is
   written through the account store's own bulk import.
2. `codex-trio run` on it, as a subprocess, its upstream a closed local port (refused at once; without it the
   catalog fetch before serving waits for a DNS answer that this offline VM never gives): seconds until /health
   answers and until the admin API lists every account, its RSS then and after 5 listings of all accounts
   (goal: start-up <= 2 s, RSS <= 100 MB); then the same with one account: idle RSS (goal <= 60 MiB).
   Every `--tree` (a checkout, e.g. `git worktree add /tmp/base main`) is started in turn, so a before/after
   pair sees the same machine.
3. In this process: the pool loaded from that store (seconds, RSS growth), then `--picks` acquire/release
   pairs with `report_success` for each strategy: microseconds per request (goal <= 50 us).

    python -m benches.account_pool [--accounts 5000] [--picks 2000] [--tree DIR ...] [--passes 2]

(from the repository root, about 20 s.)
"""

from __future__ import annotations

import argparse
import base64
import compileall
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import trio

HERE = Path(__file__).resolve().parent.parent
ACCOUNTS_DB = "accounts.sqlite3"  # services.ACCOUNTS_DB, the file `codex-trio run` opens


def rss_mib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def token(claims: dict) -> str:
    part = lambda data: base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()  # noqa: E731
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{base64.urlsafe_b64encode(os.urandom(256)).decode()}"


def accounts(count: int, now: float) -> list:
    from codex_trio.accounts.model import Account, Tokens

    out = []
    for i in range(count):
        account_id = str(uuid.uuid4())
        claims = {"exp": int(now) + 864000, "iat": int(now), "iss": "https://auth.openai.com",
                  "https://api.openai.com/auth": {"chatgpt_account_id": account_id, "chatgpt_plan_type": "plus",
                                                  "chatgpt_user_id": f"user-{i}"},
                  "https://api.openai.com/profile": {"email": f"user{i}@example.com"}}
        quota = None
        if i % 2:
            quota = {"primary": {"used_percent": i % 97, "window_minutes": 300, "resets_at": now + 600 + i},
                     "secondary": {"used_percent": i % 53, "window_minutes": 10080, "resets_at": now + 86400 + i}}
        out.append(Account(id=f"acct-{i:05d}", tokens=Tokens(token(claims), "rt_" + os.urandom(24).hex(), token(claims)),
                           account_id=account_id, email=f"user{i}@example.com", plan="plus", user_id=f"user-{i}",
                           access_expires_at=now + 864000, installation_id=str(uuid.uuid4()), quota=quota,
                           created_at=now + i))
    return out


async def write_store(data_dir: Path, count: int) -> None:
    from codex_trio.accounts.store import AccountStore

    store = await AccountStore.open(data_dir / ACCOUNTS_DB)
    try:
        await store.insert_many(accounts(count, time.time()))
    finally:
        await store.close()


def gateway_start(data_dir: Path, count: int, tree: Path = HERE) -> tuple[float, float, float, float, float]:
    """`codex-trio run` of the checkout `tree` on `data_dir`: (seconds until /health answers, until GET
    /auth/accounts lists all `count` accounts, RSS MiB at each of the two, RSS MiB after 5 account listings)."""
    import subprocess

    import httpx

    sys.path.insert(0, str(HERE))
    from codex_trio.config.writer import update_local_file
    from tests.foundation.test_serving import _free_port

    key = "bench-admin-key"
    # No network here: the catalog fetch before serving and the quota poller's checks would wait for DNS (5 s
    # each on this VM). A closed local port refuses at once, as a reachable backend would answer at once.
    update_local_file(data_dir / "local.yaml", {"server": {"proxy_api_key": key},
                                                "api": {"base_url": "https://127.0.0.1:9/backend-api",
                                                        "auth_base_url": "https://127.0.0.1:9"}})
    port = _free_port()
    env = {**os.environ, "CODEX_TRIO_DATA_DIR": str(data_dir), "PORT": str(port), "PYTHONPATH": str(tree)}
    base = f"http://127.0.0.1:{port}"
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "codex_trio.cli", "run"], cwd=tree, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() - start > 60:
                    raise SystemExit("the gateway did not start")
                time.sleep(0.02)
        healthy = time.monotonic() - start
        rss_healthy = rss_mib(proc.pid)
        headers = {"authorization": f"Bearer {key}"}
        while True:
            listed = httpx.get(f"{base}/auth/accounts", headers=headers, timeout=120).json()
            listed = listed.get("accounts", listed) if isinstance(listed, dict) else listed
            if len(listed) >= count or time.monotonic() - start > 120:
                break
            time.sleep(0.05)
        ready = time.monotonic() - start
        rss_ready = rss_mib(proc.pid)
        for _ in range(5):
            httpx.get(f"{base}/auth/accounts", headers=headers, timeout=120)
        return healthy, ready, rss_healthy, rss_ready, rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(20)


async def pool_costs(data_dir: Path, picks: int) -> None:
    from codex_trio.accounts.pool import AccountPool, PoolConfig, Strategy
    from codex_trio.accounts.refresh import TokenRefresher
    from codex_trio.accounts.store import AccountStore
    from codex_trio.upstream.identity import Identity, load_fingerprint

    before = rss_mib()
    start = time.perf_counter()
    store = await AccountStore.open(data_dir / ACCOUNTS_DB)
    refresher = TokenRefresher(store, None, identity=Identity.from_config(load_fingerprint(), "codex-exec"))  # type: ignore[arg-type]
    pool = AccountPool(store, refresher, PoolConfig(max_concurrent_per_account=8))
    await pool.load()
    loaded = time.perf_counter() - start
    print(f"pool loaded in {loaded:.2f} s, RSS +{rss_mib() - before:.1f} MiB ({len(pool.accounts())} accounts)")
    for strategy in Strategy:
        pool.reconfigure(PoolConfig(strategy=strategy, max_concurrent_per_account=8))
        times = []
        for i in range(picks):
            began = time.perf_counter_ns()
            async with pool.acquire(model="gpt-5.5", conversation_id=f"conv-{i}") as lease:
                await lease.report_success(response_id=f"resp-{i}", input_tokens=10, output_tokens=20)
            times.append(time.perf_counter_ns() - began)
        times.sort()
        print(f"  {strategy:<12} acquire + report_success + release: p50 {times[len(times) // 2] / 1000:8.1f} us, "
              f"p99 {times[int(len(times) * .99)] / 1000:8.1f} us")
    print(f"RSS after the picks: +{rss_mib() - before:.1f} MiB over this process before loading")
    await store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--picks", type=int, default=2000)
    parser.add_argument("--tree", action="append", type=Path, help="a checkout whose gateway to start (repeatable)")
    parser.add_argument("--passes", type=int, default=2, help="starts of each tree's gateway per data directory")
    args = parser.parse_args()
    trees = [tree.resolve() for tree in (args.tree or [HERE])]
    for tree in trees:  # compiled as an installed package is: a shell with PYTHONDONTWRITEBYTECODE compiled the
        # changed modules at every start (~0.7 s on this VM)
        compileall.compile_dir(tree / "codex_trio", quiet=1)
    print(f"load average: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="pool-bench-") as tmp:
        for count in dict.fromkeys((args.accounts, 1)):  # `--accounts 1`: the one-account start once
            data_dir = Path(tmp) / f"data-{count}"
            data_dir.mkdir(mode=0o700)
            trio.run(write_store, data_dir, count)
            for _ in range(args.passes):
                for tree in trees:
                    healthy, ready, rss_healthy, rss, rss_after = gateway_start(data_dir, count, tree)
                    print(f"{str(tree)[-20:]:>20}: codex-trio run with {count} account(s): /health after {healthy:.2f} s "
                          f"(RSS {rss_healthy:.1f} MiB), all listed after {ready:.2f} s (RSS {rss:.1f} MiB), "
                          f"after 5 listings {rss_after:.1f} MiB")
        data_dir = Path(tmp) / f"data-{args.accounts}"
        trio.run(pool_costs, data_dir, args.picks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
