"""Benchmark: where a bank drop's CPU goes, step by step, beside the floor's two steps.

On the drops of `bench/backfill_scale.py` (`--profile bank`, generated there), in one thread
and one drop at a time, so that each step's CPU (all threads of this process: Polars' pool
too) is its own:
  floor   Polars reading the hotline CSV as text, and writing it as Parquet
  kesu    the steps of `ingest_drop`, in its order: the hotline's read, checksum, CSV, staging
          plan, repeated keys, expectations, quarantine split, publish (Parquet and the Delta
          commit) and raw copy; the complaints and transfers feeds whole; then `ingest_drop`
          itself on the same drops, whose CPU beyond the steps is its threads, ledger and locks
Also the wall-clock seconds of a drop through `ingest_drop` (the target: <= 1.0 s on the idle
machine) beside the floor's two steps' wall clock, which says how fast the machine runs today.
The hotline's counts are checked against `stage_feed`'s on the same file, so the steps here
cannot drift from the code they time. Prefect's share is not here: it is the backfill's
(`bench/backfill_overhead.py` times the orchestration on its own).

    .venv/bin/python bench/drop_steps.py [--drops 7] [--columns]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import TypeVar

# isort: off
import kesu  # noqa: F401 (before Polars: its allocator setting reaches Polars, as in `kesu`)

# isort: on
import polars as pl
from kesu.expectations.runner import row_failures
from kesu.flows import ingest_steps as st
from kesu.flows.config import Settings, load_settings
from kesu.flows.drop import ingest_drop
from kesu.flows.pii_key import PiiKey, resolve_pii_key
from kesu.flows.staging_inputs import staging_context
from kesu.transforms import drop_rows
from kesu.transforms.columns import COLUMNS, STAGED_TABLE
from kesu.transforms.staging import StagingContext, stage, staging_plan
from kesu.warehouse.landing_store import open_landing
from kesu.warehouse.raw import read_regular

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.backfill_scale import bank_drops  # noqa: E402

T = TypeVar("T")
WARM_UP = 2  # drops run before timing: imports, lookups, compiled suites, first table commits


class Steps:
    """CPU and wall-clock seconds of each named step, one list per step (a value per drop)."""

    def __init__(self) -> None:
        self.cpu: dict[str, list[float]] = {}
        self.wall: dict[str, list[float]] = {}
        self.timing = False

    def __call__(self, name: str, step: Callable[[], T]) -> T:
        start, start_wall = time.process_time(), time.perf_counter()
        result = step()
        if self.timing:
            self.cpu.setdefault(name, []).append(time.process_time() - start)
            self.wall.setdefault(name, []).append(time.perf_counter() - start_wall)
        return result

    def median(self, name: str) -> float:
        return statistics.median(self.cpu[name])

    def wall_median(self, name: str) -> float:
        return statistics.median(self.wall[name])


def floor_steps(steps: Steps, csv: Path, scratch: Path) -> None:
    data = csv.read_bytes()
    frame = steps(
        "floor: read the CSV as text", lambda: pl.read_csv(io.BytesIO(data), infer_schema=False)
    )
    steps("floor: write Parquet", lambda: frame.write_parquet(scratch / "floor.parquet"))


def hotline_steps(
    steps: Steps, settings: Settings, key: PiiKey, day: date, csv: Path, columns: Steps | None
) -> None:
    feed, name = "hotline", str(csv)
    data = steps("read the file", lambda: read_regular(csv))
    sums = steps("sha256", lambda: st.checksums({name: data}))
    source, outcome = steps(
        "CSV as text, record shapes", lambda: st._read_file(feed, csv, data, sums[name])
    )
    assert source is not None, outcome.message
    ctx = staging_context(settings, key, day)
    staged = steps("staging plan", lambda: stage(feed, source, outcome.name, ctx))
    if columns is not None:
        column_steps(columns, feed, source, ctx)
    rows = steps("repeated keys", lambda: drop_rows.combine(feed, [staged]))
    engine = settings.get("validation", "engine")
    failures = steps(
        "expectations",
        lambda: row_failures(rows.staged, STAGED_TABLE[feed], engine, rows.validated()),
    )
    loaded, held = steps("quarantine split", lambda: drop_rows.split(rows, failures))
    whole = st.stage_feed(settings, key, feed, day, [name], None, {name: data}, sums)
    assert (loaded.height, held.height) == (whole.files[0].loaded, whole.files[0].quarantined)
    steps("publish (Parquet, Delta commit)", lambda: st.publish_feed(settings, whole))
    steps("raw copy", lambda: st.keep_raw_files(settings, feed, day, [name], {name: data}, sums))


def column_steps(columns: Steps, feed: str, source: pl.DataFrame, ctx: StagingContext) -> None:
    """Each column's part of the staging plan: its text, typed value, problems and masked text,
    collected alone as `stage` collects the whole plan (the parts add up to about the whole)."""
    for col in COLUMNS[feed]:
        _, query = staging_plan(feed, source, ctx, (col,))
        columns(f"{col.name} ({col.kind})", partial(query.collect, engine="in-memory"))


def small_feeds(steps: Steps, settings: Settings, key: PiiKey, day: date) -> None:
    for feed in ("complaints", "regulator_transfers"):
        listing = open_landing(settings.landing, settings.landing_options).list_drop(feed, day)
        files = [str(p) for p in listing.files]

        def whole(feed: str = feed, files: list[str] = files) -> None:
            staged = st.stage_feed(settings, key, feed, day, files, None)
            st.publish_feed(settings, staged)
            st.keep_raw_files(settings, feed, day, files)

        steps(f"{feed}, whole", whole)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--drops", type=int, default=7, help="drops timed (after 2 to warm up)")
    ap.add_argument(
        "--columns", action="store_true", help="also the CPU of each column of the hotline's plan"
    )
    args = ap.parse_args()
    days, source, work = bank_drops(WARM_UP + args.drops, "drop-steps")
    settings = load_settings(landing=str(source), warehouse=str(work / "steps"))
    whole = load_settings(landing=str(source), warehouse=str(work / "ingest_drop"))
    key = resolve_pii_key(settings)
    steps = Steps()
    columns = Steps() if args.columns else None
    for i, day in enumerate(days):
        steps.timing = i >= WARM_UP
        if columns is not None:
            columns.timing = steps.timing
        csv = next((source / "hotline" / day.isoformat()).glob("*.csv"))
        floor_steps(steps, csv, work)
        hotline_steps(steps, settings, key, day, csv, columns)
        small_feeds(steps, settings, key, day)
        steps("ingest_drop, whole", lambda: ingest_drop(whole, day))  # noqa: B023 (called now)
        print(f"{day}: {'timed' if steps.timing else 'warm-up'}", flush=True)
    report(steps, args.drops)
    if columns is not None:
        report_columns(columns, args.drops)


def report(steps: Steps, drops: int) -> None:
    print(f"\nCPU seconds per bank drop, median of {drops} drops (all threads of the process)")
    kesu_steps = [n for n in steps.cpu if not n.startswith("floor") and n != "ingest_drop, whole"]
    for name in steps.cpu:
        if name.startswith("floor"):
            print(f"  {name:<36} {steps.median(name):6.3f}")
    floor = sum(steps.median(n) for n in steps.cpu if n.startswith("floor"))
    print(f"  {'floor, both steps':<36} {floor:6.3f}")
    for name in kesu_steps:
        print(f"  {name:<36} {steps.median(name):6.3f}")
    total = sum(steps.median(n) for n in kesu_steps)
    whole = steps.median("ingest_drop, whole")
    print(f"  {'sum of the steps':<36} {total:6.3f}  ({total / floor:.2f}x the floor's)")
    print(f"  {'ingest_drop, whole':<36} {whole:6.3f}  ({whole / floor:.2f}x the floor's)")
    print(f"  {'… beyond the steps':<36} {whole - total:6.3f}  (feed threads, ledger, locks)")
    floor_wall = sum(steps.wall_median(n) for n in steps.wall if n.startswith("floor"))
    drop_wall = steps.wall_median("ingest_drop, whole")
    walls = steps.wall["ingest_drop, whole"]
    print(
        f"\nWall-clock seconds per bank drop, median of {drops} ({min(walls):.2f}-{max(walls):.2f})"
    )
    print(f"  {'floor, both steps':<36} {floor_wall:6.3f}")
    ratio = drop_wall / floor_wall
    print(f"  {'ingest_drop, whole (target <= 1.0)':<36} {drop_wall:6.3f}  ({ratio:.2f}x)")


def report_columns(columns: Steps, drops: int) -> None:
    print(f"\nThe hotline's staging plan by column, CPU-ms per bank drop, median of {drops}")
    for name in columns.cpu:
        print(f"  {name:<36} {1000 * columns.median(name):6.1f}")
    total = sum(columns.median(n) for n in columns.cpu)
    print(f"  {'sum of the columns':<36} {1000 * total:6.1f}")


if __name__ == "__main__":
    main()
