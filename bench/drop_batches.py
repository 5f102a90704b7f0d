"""Benchmark: what drops in batches would save — a what-if for issue 13, not how kesu runs.

kesu's unit of work is one drop: a Prefect task, a staging plan per feed and a Delta commit per
table. Two of those costs are fixed per drop whatever its rows, so a batch of drops would pay
them once:
  small feeds   `stage_feed` (read, stage, expectations, quarantine split; one thread, no
                publish) of a bank day's complaints and transfers, given B days' files at once
                (they share one plan, as a day's several small files do), CPU-ms per drop
  commits       delta-rs alone, a table of 30 text columns partitioned by date: B drops' files
                committed as one overwrite of their B partitions (an app transaction each, as
                kesu claims a drop) and the table updated after it, CPU-ms per drop and table;
                a checkpoint every 10 commits, as kesu's tables
On the drops of `bench/backfill_scale.py` (`--profile bank`, generated there if missing).
Prefect's share per drop is `bench/backfill_overhead.py`'s.

    .venv/bin/python bench/drop_batches.py [--sizes 1 2 4 8] [--batches 10]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

# isort: off
import kesu  # noqa: F401 (before Polars: its allocator setting reaches Polars, as in `kesu`)

# isort: on
import polars as pl
from deltalake import DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.transaction import AddAction, CommitProperties, RemoveAction, Transaction
from kesu.flows import ingest_steps
from kesu.flows.config import load_settings
from kesu.flows.pii_key import resolve_pii_key
from kesu.warehouse.landing_store import open_landing

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.backfill_scale import OUT, bank_drops  # noqa: E402

SMALL_FEEDS = ("complaints", "regulator_transfers")
WARM_UP = 2  # days staged before timing: imports, lookups, compiled suites
COMMITS = 60  # drops committed per batch size


def small_feeds(size: int, batches: int) -> dict[str, float]:
    """Median CPU-ms per drop of each small feed's `stage_feed`, `size` days' files at once."""
    days, source, work = bank_drops(WARM_UP + size * batches, "drop-batches")
    settings = load_settings(landing=str(source), warehouse=str(work))
    key = resolve_pii_key(settings)
    landing = open_landing(settings.landing, settings.landing_options)
    result = {}
    for feed in SMALL_FEEDS:
        for day in days[:WARM_UP]:
            files = [str(p) for p in landing.list_drop(feed, day).files]
            ingest_steps.stage_feed(settings, key, feed, day, files, None)
        per_drop = []
        for i in range(WARM_UP, len(days), size):
            batch = days[i : i + size]
            files = [str(p) for d in batch for p in landing.list_drop(feed, d).files]
            start = time.process_time()
            ingest_steps.stage_feed(settings, key, feed, batch[-1], files, None)
            per_drop.append(1000 * (time.process_time() - start) / len(batch))
        result[feed] = statistics.median(per_drop)
    return result


def commits(size: int) -> float:
    """Mean CPU-ms per drop of committing `COMMITS` drops to one table, `size` a commit."""
    root = OUT / "drop-batches" / f"delta-{size}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    frame = pl.DataFrame({f"c{i}": [f"v{j}" for j in range(50)] for i in range(30)})
    schema = frame.head(0).with_columns(pl.lit(None, pl.Date).alias("drop_date")).to_arrow()
    DeltaTable.create(
        str(root),
        DeltaSchema.from_arrow(schema.schema),
        partition_by=["drop_date"],
        configuration={"delta.checkpointInterval": "10"},
    )
    table = DeltaTable(str(root))
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", compression_level=1)
    data = buffer.getvalue()
    days = [date(2025, 1, 1) + timedelta(days=i) for i in range(COMMITS)]
    per_drop = []
    for i in range(0, COMMITS, size):
        batch = [d.isoformat() for d in days[i : i + size]]
        adds: list[AddAction | RemoveAction] = []
        for day in batch:
            relative = f"drop_date={day}/part-00000-{uuid.uuid4()}-c000.parquet"
            (root / f"drop_date={day}").mkdir()
            (root / relative).write_bytes(data)
            adds.append(
                AddAction(
                    path=relative,
                    size=len(data),
                    partition_values={"drop_date": day},
                    modification_time=int(time.time() * 1000),
                    data_change=True,
                    stats=json.dumps({"numRecords": frame.height}),
                )
            )
        start = time.process_time()
        claims = [Transaction(f"kesu:t:{day}", table.version() + 1) for day in batch]
        table.create_write_transaction(
            adds,
            mode="overwrite",
            schema=table.schema(),
            partition_by=["drop_date"],
            partition_filters=[("drop_date", "in", batch)],
            commit_properties=CommitProperties(app_transactions=claims),
        )
        table.update_incremental()
        per_drop.append(1000 * (time.process_time() - start) / len(batch))
    # the first two batches warm up; checkpoints stay in the mean: they are part of the cost
    return statistics.mean(per_drop[2:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8], help="drops a batch")
    ap.add_argument("--batches", type=int, default=10, help="batches timed per size")
    args = ap.parse_args()
    print("CPU-ms per drop: small feeds' stage_feed (median), one table's commits (mean)")
    print(f"  {'drops a batch':>13}  {'complaints':>10}  {'transfers':>9}  {'commit':>6}")
    for size in args.sizes:
        small = small_feeds(size, args.batches)
        commit = commits(size)
        print(
            f"  {size:>13}  {small['complaints']:>10.1f}  {small['regulator_transfers']:>9.1f}"
            f"  {commit:>6.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
