"""Several gateways on one PostgreSQL hold a client key's token budget with leases: three instances, each sending the
key's requests back to back, stop at the budget, exceeding it by no more than the requests in flight when it ran out
(the key's concurrency limit is 1, held across the instances by slot leases; an instance admits at most one request
of it before it holds a lease; once they hold leases, as when the budget runs out, one runs at once, and the bound
below allows three). Without leases each instance admits up to a second of traffic past the budget."""

from __future__ import annotations

import re

import trio

from codex_trio.sim import running_sim
from tests.store.test_shared_state import CHAT, _gateways, _stop
from tests.test_cli_errors import codex_trio


async def _create_key(tmp_path, pg_url: str, name: str, *limits: str) -> str:
    created = await trio.to_thread.run_sync(lambda: codex_trio(
        "keys", "create", name, *limits, "--data-dir", str(tmp_path / "data0"), env={"CODEX_TRIO__STORE__URL": pg_url}))
    assert created.returncode == 0, created.stderr
    return re.search(r"(ctk_\S+)", created.stdout).group(1)


async def test_a_key_budget_is_exceeded_across_instances_by_at_most_the_requests_in_flight(tmp_path, pg_url):
    async with running_sim(accounts=3) as sim:
        gateways = await _gateways(tmp_path, sim, pg_url, 3)
        try:
            async with gateways[0].client() as probe:
                reply = await probe.post("/v1/chat/completions", json=CHAT)
                per_request = reply.json()["usage"]["total_tokens"]
            budget = 30 * per_request
            secret = await _create_key(tmp_path, pg_url, "team", "--tokens-per-day", str(budget),
                                       "--max-concurrency", "1")
            await trio.sleep(1.5)  # the gateways poll the keys once a second
            used: list[int] = []

            async def send(gateway) -> None:
                refused = 0
                async with gateway.client() as client:
                    while refused < 3:
                        reply = await client.post("/v1/chat/completions", json=CHAT,
                                                  headers={"authorization": f"Bearer {secret}"})
                        if reply.status_code == 429 and reply.json()["error"]["code"] == "key_concurrency_limit":
                            await trio.sleep(0.05)  # the key's one slot is shared by the instances: wait for it
                        elif reply.status_code == 429:
                            assert reply.json()["error"]["code"] == "key_budget_exhausted", reply.text
                            refused += 1
                            await trio.sleep(0.3)
                        else:
                            assert reply.status_code == 200, reply.text
                            used.append(reply.json()["usage"]["total_tokens"])

            with trio.fail_after(120):
                async with trio.open_nursery() as nursery:
                    for gateway in gateways:
                        nursery.start_soon(send, gateway)
        finally:
            await _stop(gateways)
    in_flight_at_most = 3  # one per instance (concurrency 1 each)
    assert sum(used) <= budget + in_flight_at_most * per_request, (sum(used), budget, per_request)
    assert sum(used) >= budget - in_flight_at_most * per_request, (sum(used), budget, per_request)
