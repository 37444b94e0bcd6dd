"""Several gateways on one PostgreSQL hold a client key's requests-per-minute and concurrency limits with leases of
request slots: three instances sending the key's requests back to back admit, together, the limit plus at most one
lease per instance (without leases each instance admits the whole limit: three times it)."""

from __future__ import annotations

import trio

from codex_trio.sim import running_sim
from codex_trio.store.rate_leases import lease_size
from tests.store.test_budget_leases import _create_key
from tests.store.test_shared_state import CHAT, _gateways, _stop

LIMIT = 20


async def test_a_keys_requests_per_minute_hold_across_instances(tmp_path, pg_url):
    async with running_sim(accounts=3) as sim:
        gateways = await _gateways(tmp_path, sim, pg_url, 3)
        try:
            secret = await _create_key(tmp_path, pg_url, "team", "--rpm", str(LIMIT))
            await trio.sleep(1.5)  # the gateways poll the keys once a second
            admitted: list[int] = []

            async def send(number: int, gateway) -> None:
                refused = 0
                async with gateway.client() as client:
                    while refused < 5:
                        reply = await client.post("/v1/chat/completions", json=CHAT,
                                                  headers={"authorization": f"Bearer {secret}"})
                        if reply.status_code == 429:
                            assert reply.json()["error"]["code"] == "key_rate_limit", reply.text
                            refused += 1
                            await trio.sleep(0.2)
                        else:
                            assert reply.status_code == 200, reply.text
                            admitted.append(number)

            with trio.fail_after(50):  # well within the minute the limit counts
                async with trio.open_nursery() as nursery:
                    for number, gateway in enumerate(gateways):
                        nursery.start_soon(send, number, gateway)
        finally:
            await _stop(gateways)
    slack = len(gateways) * lease_size(LIMIT)
    assert LIMIT - slack <= len(admitted) <= LIMIT + slack, (len(admitted), [admitted.count(n) for n in range(3)])


CONCURRENCY = 10


async def _held_spans(gateway) -> list[tuple[float, float]]:
    """(start, end) in wall-clock seconds of every request `gateway` answered 200, from its request log."""
    async with gateway.client() as client:
        page = (await client.get("/admin/logs", params={"status": "200", "text": "/v1/chat/completions", "limit": "1000"})).json()
    assert page["total"] <= page["limit"], page["total"]
    return [(r["started_at"], r["started_at"] + r["duration_ms"] / 1000) for r in page["records"]]


async def test_a_keys_concurrency_holds_across_instances(tmp_path, pg_url):
    """Ten senders per instance on a key allowed 10 at once: at no moment more than 10 plus one lease per instance
    admitted; without leases 30. What each gateway held is read from its request log: a request from its arrival
    to its trace's end, where its key slot is given back. (The clients' own spans also cover the reply's delivery
    and their scheduling; on a loaded machine they overlapped by one more, 14 of the 13 allowed, on main as well.)"""
    async with running_sim(accounts=3) as sim:
        sim.script({"reply": {"text": "slow hello", "first_byte_delay_ms": 800}})
        gateways = await _gateways(tmp_path, sim, pg_url, 3)
        try:
            secret = await _create_key(tmp_path, pg_url, "team", "--max-concurrency", str(CONCURRENCY))
            await trio.sleep(1.5)  # the gateways poll the keys once a second
            served = [0]

            async def send(gateway) -> None:
                async with gateway.client() as client:
                    deadline = trio.current_time() + 6
                    while trio.current_time() < deadline:
                        reply = await client.post("/v1/chat/completions", json=CHAT,
                                                  headers={"authorization": f"Bearer {secret}"})
                        if reply.status_code == 429:
                            assert reply.json()["error"]["code"] == "key_concurrency_limit", reply.text
                            await trio.sleep(0.1)
                        else:
                            assert reply.status_code == 200, reply.text
                            served[0] += 1

            with trio.fail_after(60):
                async with trio.open_nursery() as nursery:
                    for gateway in gateways:
                        for _ in range(CONCURRENCY):
                            nursery.start_soon(send, gateway)
            spans = [span for gateway in gateways for span in await _held_spans(gateway)]
            assert len(spans) == served[0], (len(spans), served[0])
        finally:
            await _stop(gateways)
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    assert CONCURRENCY <= peak <= CONCURRENCY + len(gateways) * lease_size(CONCURRENCY), peak
