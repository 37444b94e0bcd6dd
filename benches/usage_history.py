"""The usage store at scale (issue #14): 1,000,000 usage rows over 30 days, written through the same batch
writer the gateway uses (raw rows + minute/hour/day rollups), then the queries the dashboard and the CLI make:
a 30-day hourly history (all, and grouped by model / account / key) and the 30-day summary.

    python -m benches.usage_history [--rows 1000000] [--models 6] [--accounts 10] [--keys 20]

Goal: the 30-day hourly history answers in under 100 ms.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from codex_trio.telemetry.record import RequestRecord
from codex_trio.telemetry.store import HistoryQuery, OperatorStore, read_history, read_summary, write_batch

DAYS = 30
BATCH = 20_000


def fill(store: OperatorStore, rows: int, models: int, accounts: int, keys: int, end: float) -> float:
    rng = random.Random(14)
    start = end - DAYS * 86400
    step = (end - start) / rows
    model_ids = [f"gpt-5.{i}" for i in range(models)]
    account_ids = [f"acct{i:02d}" for i in range(accounts)]
    key_ids = [""] + [f"key_{i:04d}" for i in range(keys - 1)]
    began = time.perf_counter()
    for first in range(0, rows, BATCH):
        batch = []
        for n in range(first, min(rows, first + BATCH)):
            inp = rng.randint(50, 20_000)
            batch.append(RequestRecord(id=f"r{n}", started_at=start + n * step, protocol="openai", path="/v1/chat/completions",
                                       model=rng.choice(model_ids), account=rng.choice(account_ids),
                                       key_id=rng.choice(key_ids), status=200, input_tokens=inp,
                                       cached_tokens=inp // 2, output_tokens=rng.randint(1, 2000),
                                       duration_ms=rng.uniform(100, 9000), cost_usd=0.001))
        store.sync.transaction(lambda conn: write_batch(conn, batch, []))
    return time.perf_counter() - began


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - began)
    return best * 1000, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=6)
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--keys", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="usage-bench-") as tmp:
        store = OperatorStore.open_sync(Path(tmp) / "operator.sqlite3")
        end = time.time() // 3600 * 3600
        seconds = fill(store, args.rows, args.models, args.accounts, args.keys, end)
        rollups = store.sync.reader.execute("SELECT granularity, COUNT(*) FROM usage_rollups GROUP BY 1").fetchall()
        size = (Path(tmp) / "operator.sqlite3").stat().st_size + (Path(tmp) / "operator.sqlite3-wal").stat().st_size
        print(f"wrote {args.rows:,} rows in {seconds:.1f} s ({args.rows / seconds:,.0f} rows/s, batches of {BATCH:,}); "
              f"rollup rows {dict((g, n) for g, n in rollups)}; file {size / 1e6:.0f} MB")
        reader = store.sync.reader
        print(f"{'query (30 days)':<34}{'best of 5 ms':>14}{'points':>9}")
        for group_by in (None, "model", "account", "key"):
            query = HistoryQuery(end - DAYS * 86400, end, "hour", group_by)
            ms, points = timed(lambda: read_history(reader, query))
            print(f"{'history hourly, group_by=' + str(group_by):<34}{ms:>14.1f}{len(points):>9}")
        ms, points = timed(lambda: read_history(reader, HistoryQuery(end - DAYS * 86400, end, "day", "model")))
        print(f"{'history daily, group_by=model':<34}{ms:>14.1f}{len(points):>9}")
        ms, _ = timed(lambda: read_summary(reader, end - DAYS * 86400 - 1800, end))
        print(f"{'summary (totals + 3 groupings)':<34}{ms:>14.1f}")
        store.sync.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
