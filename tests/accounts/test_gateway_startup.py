"""What the gateway does with its accounts before it serves (issue #20, 5,000 accounts: start-up <= 2 s).

Each full read of the store builds every `Account` (5,000 accounts: 0.3 s, and heap that stays with the process
once freed), and the quota poller's first round took most of the start-up's Python time when every snapshot was
stale. So: one read, shared by the proxy rebalance and the pool, the catalog choosing its accounts from the pool,
and the poller's first round once the gateway serves."""

from __future__ import annotations

import socket
import sys
import time
import uuid
from pathlib import Path

import trio

from codex_trio.accounts.model import Account, Tokens
from codex_trio.accounts.pool import AccountPool
from codex_trio.accounts.store import AccountStore
from codex_trio.app import Gateway
from codex_trio.config.store import ConfigStore
from codex_trio.config.writer import update_local_file
from codex_trio.services import ACCOUNTS_DB
from codex_trio.surfaces import install_surfaces

PLANS = ("plus", "pro", "team")


def closed_port() -> int:
    """A local port nobody listens on: upstream calls are refused at once (no DNS, no simulator needed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def write_accounts(data_dir: Path, count: int) -> list[str]:
    now = time.time()
    accounts = [Account(id=f"acct-{i}", tokens=Tokens(f"access-{i}", f"rt-{i}", None), account_id=str(uuid.uuid4()),
                        plan=PLANS[i % len(PLANS)], access_expires_at=now + 86400, installation_id=str(uuid.uuid4()),
                        quota={"primary": {"used_percent": 10.0 + i, "window_minutes": 300, "resets_at": now + 600}},
                        created_at=now + i)
                for i in range(count)]
    store = await AccountStore.open(data_dir / ACCOUNTS_DB)
    try:
        await store.insert_many(accounts)
    finally:
        await store.close()
    return [account.id for account in accounts]


def gateway_on_closed_port(data_dir: Path) -> Gateway:
    base = f"https://127.0.0.1:{closed_port()}"
    update_local_file(data_dir / "local.yaml", {"api": {"base_url": f"{base}/backend-api", "auth_base_url": base}})
    config = ConfigStore(data_dir, environ={})
    config.ensure_first_start()
    gateway = Gateway(config=config)
    install_surfaces(gateway)
    return gateway


async def test_start_up_reads_the_accounts_once(data_dir: Path, monkeypatch):
    ids = await write_accounts(data_dir, 7)
    readers: list[str] = []
    real_list = AccountStore.list

    async def counted_list(self):
        readers.append(sys._getframe(1).f_code.co_qualname)
        return await real_list(self)

    monkeypatch.setattr(AccountStore, "list", counted_list)
    gateway = gateway_on_closed_port(data_dir)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: gateway.run(port=0, task_status=task_status))
        assert sorted(account.id for account in gateway.services.pool.accounts()) == sorted(ids)
        await trio.sleep(0.2)  # the token refresher's first pass (started just before serving) walks the pool
        assert readers == ["run_accounts"]
        gateway.stop_requested.set()


async def test_the_quota_pollers_first_round_waits_until_the_gateway_serves(data_dir: Path, monkeypatch):
    ids = await write_accounts(data_dir, 7)
    gateway = gateway_on_closed_port(data_dir)
    checked_while_serving: list[bool] = []
    real_check = AccountPool.check_quota

    async def recorded_check(self, account_id):
        checked_while_serving.append(gateway.serving.is_set())
        return await real_check(self, account_id)

    monkeypatch.setattr(AccountPool, "check_quota", recorded_check)
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: gateway.run(port=0, task_status=task_status))
        with trio.fail_after(30):  # every snapshot is stale (never checked): the first round checks them all
            while len(checked_while_serving) < len(ids):
                await trio.sleep(0.05)
        gateway.stop_requested.set()
    assert all(checked_while_serving)
