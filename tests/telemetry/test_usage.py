"""Usage accounting through the real gateway on the simulator: one record per request, totals equal what the
simulator reported, rollups equal the raw rows, nothing lost on a clean shutdown."""

from __future__ import annotations

import httpx
import orjson
import pytest
import trio

from tests.telemetry.helpers import query_db, stack, wait_for_records

CHAT = "/v1/chat/completions"
ROUNDS = 333  # each: a streamed and a collected Chat turn, a streamed Responses turn (1,004 requests in all)
CANCELLED = 3


def chat(text: str, **extra):
    return {"model": "gpt-5.5", "messages": [{"role": "user", "content": text}], **extra}


async def streamed_usage(client: httpx.AsyncClient, text: str) -> dict:
    """A streamed Chat turn with include_usage; returns the usage chunk the client got."""
    usage = None
    async with client.stream("POST", CHAT, json=chat(text, stream=True, stream_options={"include_usage": True})) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line.startswith("data: {") and '"usage":{' in line:
                usage = orjson.loads(line[6:])["usage"]
    assert usage is not None
    return usage


async def test_usage_totals_equal_what_the_simulator_reported_for_a_mixed_batch(data_dir):
    expected = {"input": 0, "cached": 0, "output": 0}

    def add(usage: dict) -> None:
        expected["input"] += usage["prompt_tokens"]
        expected["cached"] += (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
        expected["output"] += usage["completion_tokens"]

    async with stack(data_dir, accounts=2, local={"logs": {"request_log_size": 2000}}) as (sim, gateway, client):
        sim.script({"match": {"user_text": "SLOW"}, "reply": {"text_length": 8000, "chunk_size": 4, "pacing_ms": 5}})
        sim.script({"match": {"user_text": "FAILOVER"}, "times": 1, "reply": {"rate_limit": {"resets_in_seconds": 30}}})
        sent = 0
        # failed over: the first account answers 429, the turn is served by the second
        response = await client.post(CHAT, json=chat("FAILOVER please"))
        assert response.status_code == 200
        add(response.json()["usage"])
        sent += 1
        for i in range(ROUNDS):
            add(await streamed_usage(client, f"streamed number {i} " + "word " * i))
            response = await client.post(CHAT, json=chat(f"collected number {i} " + "more " * (3 * i)))
            assert response.status_code == 200
            add(response.json()["usage"])
            completed = None
            async with client.stream("POST", "/v1/responses", json={"model": "gpt-5.5", "stream": True,
                                                                     "input": f"responses number {i}"}) as r:
                async for line in r.aiter_lines():
                    if line.startswith("data: ") and '"response.completed"' in line:
                        completed = orjson.loads(line[6:])["response"]["usage"]
            expected["input"] += completed["input_tokens"]
            expected["cached"] += completed["input_tokens_details"]["cached_tokens"]
            expected["output"] += completed["output_tokens"]
            sent += 3
        # a client error: answered by the gateway, no upstream turn
        assert (await client.post(CHAT, json={**chat("x"), "model": "no-such-model"})).status_code == 404
        sent += 1
        # cancelled mid-stream: the client reads the first bytes and hangs up; the sim never sends its usage
        for i in range(CANCELLED):
            async with client.stream("POST", CHAT, json=chat(f"SLOW reply {i}", stream=True)) as r:
                async for _ in r.aiter_bytes():
                    break
            sent += 1

        records = await wait_for_records(client, sent)
        assert len(records) == sent
        outcomes = sorted(r["outcome"] for r in records)
        assert outcomes.count("cancelled") == CANCELLED and outcomes.count("error") == 1
        assert sum(r["failovers"] for r in records) == 1
        cancelled = next(r for r in records if r["outcome"] == "cancelled")
        assert cancelled["output_tokens"] == 0 and cancelled["stream"] and cancelled["status"] == 200

        totals = (await client.get("/admin/usage-stats/summary")).json()["totals"]
        assert totals["requests"] == sent
        assert totals["errors"] == 1 + CANCELLED  # the 404 and the cancelled streams
        assert (totals["input_tokens"], totals["cached_tokens"], totals["output_tokens"]) == (
            expected["input"], expected["cached"], expected["output"])
        assert totals["cost_usd"] > 0  # gpt-5.5 matches the default gpt-5* price

    # after a clean shutdown every record is in the store, and each rollup equals the raw sums
    assert query_db(data_dir, "SELECT COUNT(*), SUM(input_tokens), SUM(output_tokens) FROM usage_records")[0] == (
        sent, expected["input"], expected["output"])
    sums = "COUNT(*), SUM(input_tokens), SUM(cached_tokens), SUM(output_tokens), SUM(reasoning_tokens), " \
           "ROUND(SUM(cost_usd), 9)"
    rolled_sums = "SUM(requests), SUM(input_tokens), SUM(cached_tokens), SUM(output_tokens), SUM(reasoning_tokens), " \
                  "ROUND(SUM(cost_usd), 9)"
    for dimension, column in (("", "''"), ("model", "model"), ("account", "account"), ("key", "key_id")):
        raw = query_db(data_dir, f"SELECT {column}, {sums} FROM usage_records GROUP BY 1 ORDER BY 1")
        for seconds in (60, 3600, 86400):
            rolled = query_db(data_dir, f"SELECT value, {rolled_sums} FROM usage_rollups WHERE granularity = ? AND "
                                        "dimension = ? GROUP BY 1 ORDER BY 1", seconds, dimension)
            assert rolled == raw, f"the {seconds}-second rollups by {dimension or 'nothing'} differ from the raw rows"
    assert ("",) in query_db(data_dir, "SELECT DISTINCT account FROM usage_records")  # the 404 had no account


def test_usage_command_prints_an_aligned_table(data_dir):
    import os
    import subprocess
    import sys

    from codex_trio.telemetry.record import RequestRecord
    from codex_trio.telemetry.store import OperatorStore, write_batch

    store = OperatorStore.open_sync(data_dir / "operator.sqlite3")
    now = __import__("time").time()
    records = [RequestRecord(id=f"r{i}", started_at=now - 3600 * i, protocol="openai", path=CHAT,
                             model="gpt-5.5" if i % 2 else "gpt-5.4-mini", account="acct1", status=200,
                             input_tokens=1000 * i, output_tokens=10 * i) for i in range(6)]
    records.append(RequestRecord(id="old", started_at=now - 10 * 86400, protocol="openai", path=CHAT, model="gpt-5.5",
                                 input_tokens=999_999))
    store.sync.transaction(lambda conn: write_batch(conn, records, []))
    store.sync.close()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run([sys.executable, "-m", "codex_trio.cli", "usage", "--since", "7d", "--by", "model",
                             "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": repo})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header, rows = lines[1], lines[2:]
    assert header.split() == ["MODEL", "REQUESTS", "ERRORS", "INPUT", "CACHED", "OUTPUT", "REASONING", "COST", "USD"]
    assert [r.split()[0] for r in rows] == ["gpt-5.4-mini", "gpt-5.5", "TOTAL"]
    assert len({len(line) for line in [header] + rows}) == 1  # every column right-aligned to the header
    total = rows[-1].split()
    assert total[1] == "6" and total[3] == f"{sum(1000 * i for i in range(6)):,}"  # the 10-day-old row is out
    bad = subprocess.run([sys.executable, "-m", "codex_trio.cli", "usage", "--since", "last week", "--data-dir",
                          str(data_dir)], capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": repo})
    assert bad.returncode == 2 and "--since" in bad.stderr


async def test_history_groups_by_model_account_and_key_and_checks_its_arguments(data_dir):
    async with stack(data_dir) as (sim, gateway, client):
        for i in range(3):
            assert (await client.post(CHAT, json=chat(f"hello {i}"))).status_code == 200
        await wait_for_records(client, 3)
        by_model = (await client.get("/admin/usage-stats/history",
                                     params={"from": "1h", "granularity": "minute", "group_by": "model"})).json()
        assert {p["model"] for p in by_model["points"]} == {"gpt-5.5"}
        assert sum(p["requests"] for p in by_model["points"]) == 3
        by_account = (await client.get("/admin/usage-stats/history", params={"group_by": "account"})).json()
        assert [p["account"] for p in by_account["points"]] == [gateway.services.pool.accounts()[0].id]
        for params, field in (({"granularity": "week"}, "granularity"), ({"group_by": "user"}, "group_by"),
                              ({"from": "yesterday"}, "from")):
            response = await client.get("/admin/usage-stats/history", params=params)
            assert response.status_code == 400 and response.json()["error"]["param"] == field


async def test_usage_accounting_off_writes_nothing_but_the_request_log_still_works(data_dir):
    async with stack(data_dir, local={"usage_stats": {"enabled": False}}) as (sim, gateway, client):
        assert (await client.post(CHAT, json=chat("hi"))).status_code == 200
        await wait_for_records(client, 1)
        await trio.sleep(1.2)
    assert query_db(data_dir, "SELECT COUNT(*) FROM usage_records") == [(0,)]


def test_cost_estimate_uses_the_exact_price_else_the_most_specific_pattern():
    from codex_trio.config.schema import ModelPrice
    from codex_trio.telemetry.prices import estimate_cost

    prices = {"gpt-5*": ModelPrice(input=1.0, cached_input=0.1, output=10.0),
              "gpt-5.5*": ModelPrice(input=2.0, cached_input=0.2, output=20.0),
              "gpt-5.5-exact": ModelPrice(input=3.0, cached_input=0.0, output=0.0)}
    # 1M input of which 400k cached, 100k output
    assert estimate_cost("gpt-5.5", 1_000_000, 400_000, 100_000, prices) == pytest.approx(1.2 + 0.08 + 2.0)
    assert estimate_cost("gpt-5.4", 1_000_000, 0, 0, prices) == pytest.approx(1.0)
    assert estimate_cost("gpt-5.5-exact", 1_000_000, 0, 0, prices) == pytest.approx(3.0)
    assert estimate_cost("o3", 1_000_000, 0, 0, prices) == 0.0
