"""Run as a subprocess by test_store: inserts and updates accounts forever, printing each committed id."""

import sys
import uuid

import trio

from codex_trio.accounts.model import Account, Tokens
from codex_trio.accounts.store import AccountStore


async def main(path: str) -> None:
    store = await AccountStore.open(path)
    n = 0
    while True:
        account = Account(id=str(uuid.uuid4()), tokens=Tokens("at-" + str(n), "rt-" + str(n), None),
                          installation_id=str(uuid.uuid4()), quota={"n": n}, cookies=[{"name": "c", "value": "x" * 50}])
        await store.insert(account)
        await store.update(account.id, refresh_token=f"rt-{n}-rotated", label=f"L{n}")
        print(account.id, flush=True)
        n += 1


trio.run(main, sys.argv[1])
