"""Benchmark: what a backfill costs per drop on top of the work itself (issue 5).

On N days already in a landing zone (e.g. `bench/out/landing-bank`, made by
`bench/backfill_scale.py`), each into a fresh warehouse, and prints seconds per drop of:
  steps     the plain step functions, one drop after the other (list, raw copy, stage +
            validate, publish per feed: the floor)
  drop      `kesu.flows.drop.ingest_drop`, one drop after the other (adds locks, ledger record and
            pointer, fingerprint, unchanged check, feeds on threads)
  backfill  the `backfill` flow on W thread workers (adds one Prefect task per drop, artifacts,
            the backfill's record), fresh and again with nothing to do (every drop skipped)
Fixed costs are paid before the clock starts: the imports, the suites, Prefect's ephemeral API.

    .venv/bin/python bench/backfill_overhead.py bench/out/landing-bank --days 7 [--workers 1 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def plain_steps(landing: Path, warehouse: Path, *, days: list[date]) -> None:
    from kesu.flows import ingest_steps as steps
    from kesu.flows.config import load_settings
    from kesu.flows.pii_key import resolve_pii_key
    from kesu.transforms.columns import FEEDS
    from kesu.warehouse import landing as landing_zone

    settings = load_settings(landing=str(landing), warehouse=str(warehouse))
    key = resolve_pii_key(settings)
    for day in days:
        for feed in FEEDS:
            files = [str(p) for p in landing_zone.list_drop(landing, feed, day).files]
            steps.keep_raw_files(settings, feed, day, files)
            staged = steps.stage_feed(settings, key, feed, day, files, warehouse / "_scratch")
            steps.publish_feed(settings, staged)


def drop_function(landing: Path, warehouse: Path, *, days: list[date]) -> None:
    from kesu.flows.config import load_settings
    from kesu.flows.drop import ingest_drop

    settings = load_settings(landing=str(landing), warehouse=str(warehouse))
    for day in days:
        ingest_drop(settings, day)


def backfill_flow(landing: Path, warehouse: Path, *, days: list[date], workers: int) -> None:
    from kesu.flows.backfill import backfill

    backfill(
        start=days[0],
        end=days[-1],
        landing_dir=str(landing),
        warehouse_dir=str(warehouse),
        workers=workers,
    )


def timed(
    what: str, days: list[date], repeat: int, run: Callable[[Path], None], base: Path, fresh: bool
) -> Path:
    """Best of `repeat` (like timeit): disk write-back and first-call warm-ups add noise, never
    speed. Each into a fresh warehouse beside `base`, or into `base` as it is; returns the last."""
    best, root = float("inf"), base
    for attempt in range(repeat):
        if fresh:
            root = base.with_name(f"{base.name}-{attempt}")
            shutil.rmtree(root, ignore_errors=True)
        started = time.perf_counter()
        run(root)
        best = min(best, time.perf_counter() - started)
    print(f"{what:<38} {best:8.2f} s  {best / len(days):6.2f} s/drop", flush=True)
    return root


def measure(
    landing: Path, scratch: Path, days: list[date], workers: list[int], repeat: int
) -> None:
    steps = partial(plain_steps, landing, days=days)
    timed("  plain step functions", days, repeat, steps, scratch / "steps", fresh=True)
    drops = partial(drop_function, landing, days=days)
    timed("  ingest_drop, one at a time", days, repeat, drops, scratch / "drop", fresh=True)
    for w in workers:
        run = partial(backfill_flow, landing, days=days, workers=w)
        label = f"  backfill flow, {w} thread worker(s)"
        done = timed(label, days, repeat, run, scratch / f"backfill{w}", fresh=True)
        timed("  ... again, every drop skipped", days, repeat, run, done, fresh=False)
    shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("landing", type=Path, help="landing zone holding the days")
    ap.add_argument("--start", type=date.fromisoformat, default=date(2025, 7, 1))
    ap.add_argument("--days", type=int, nargs="+", default=[7])
    ap.add_argument("--workers", type=int, nargs="+", default=[2])
    ap.add_argument("--repeat", type=int, default=2, help="runs of each variant; the best counts")
    args = ap.parse_args()
    os.environ.setdefault("KESU_PII_KEY", "benchmark-key-0123456789abcdef")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # one line per variant, not per feed
    import kesu.expectations.runner  # noqa: F401  (fixed costs, paid before any clock starts)
    from kesu.expectations.suites import suite_for
    from prefect import flow

    for table in ("stg_hotline", "stg_complaints", "stg_regulator_transfers"):
        suite_for(table)
    flow(lambda: None, name="warm-up")()  # starts the ephemeral API
    scratch = Path(tempfile.mkdtemp(prefix="kesu-overhead-"))
    try:
        for n in args.days:
            days = [args.start + timedelta(days=i) for i in range(n)]
            missing = [d for d in days if not (args.landing / "hotline" / d.isoformat()).is_dir()]
            if missing:
                raise SystemExit(f"{args.landing}: no hotline drop for {missing[0]}")
            print(f"{n} days from {days[0]}, best of {args.repeat}:")
            measure(args.landing, scratch / str(n), days, args.workers, args.repeat)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
