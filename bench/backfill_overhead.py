"""Benchmark: what a backfill costs per drop on top of the work itself (issues 5 and 13).

On N days already in a landing zone (e.g. `bench/out/landing-bank`, made by
`bench/backfill_scale.py`), each into a fresh warehouse, and prints per drop the wall-clock
seconds, and the CPU of this process and of Prefect's API server (the ephemeral server, a
process of its own on the same cores), of:
  steps     the plain step functions, one drop after the other (list, raw copy, stage +
            validate, publish per feed: the floor)
  drop      `kesu.flows.drop.ingest_drop`, one drop after the other (adds locks, ledger record and
            pointer, fingerprint, unchanged check, feeds on threads)
  threads   `ingest_drop` on W threads, fresh and again with nothing to do (every drop skipped)
  backfill  the `backfill` flow on W thread workers, run as `kesu backfill` runs it (no
            heartbeats, Prefect's console quiet, its task logs sent to the API): adds one
            Prefect task per drop, the drop's artifact and log, the backfill's record; fresh and
            again with every drop skipped
and then Prefect's cost per drop: the backfill flow less `ingest_drop` on the same threads. The
skipped drops tell it best: their own work is small and the same on both sides, so the noise of a
bank drop's ~1 s does not hide a tenth of a second.
Fixed costs are paid before the clock starts: the imports, the suites, Prefect's ephemeral API.

    .venv/bin/python bench/backfill_overhead.py bench/out/landing-bank --days 7 [--workers 1 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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


def drop_function(landing: Path, warehouse: Path, *, days: list[date], workers: int = 1) -> None:
    from kesu.flows.config import load_settings
    from kesu.flows.drop import ingest_drop

    settings = load_settings(landing=str(landing), warehouse=str(warehouse))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda day: ingest_drop(settings, day), days))


def backfill_flow(landing: Path, warehouse: Path, *, days: list[date], workers: int) -> None:
    from kesu.flows.backfill import backfill
    from kesu.flows.terminal import Terminal, prefect_quiet

    with prefect_quiet(Terminal(tty=False)):  # as `kesu backfill` off a terminal
        backfill(
            start=days[0],
            end=days[-1],
            landing_dir=str(landing),
            warehouse_dir=str(warehouse),
            workers=workers,
        )


@dataclass(frozen=True)
class Cost:
    """Per drop: the best wall clock of the runs (like timeit: noise never speeds a run up),
    and the median CPU-s of this process and of Prefect's API server."""

    wall: float
    here: float
    api: float

    def __sub__(self, other: Cost) -> Cost:
        return Cost(self.wall - other.wall, self.here - other.here, self.api - other.api)

    def line(self) -> str:
        return (
            f"{self.wall:6.3f} s/drop   CPU-ms/drop: {1000 * self.here:5.0f} here, "
            f"{1000 * self.api:4.0f} API server, {1000 * (self.here + self.api):5.0f} in all"
        )


def api_cpu() -> float:
    """CPU-s so far of this process's children: Prefect's ephemeral API server."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:  # a process that just ended
            continue
        total += times.user + times.system
    return total


def timed(
    what: str, days: list[date], repeat: int, run: Callable[[Path], None], base: Path, fresh: bool
) -> tuple[Path, Cost]:
    """Each run into a fresh warehouse beside `base`, or into `base` as it is; returns the last
    warehouse and the cost per drop."""
    root = base
    walls, here, api = [], [], []
    for attempt in range(repeat):
        if fresh:
            root = base.with_name(f"{base.name}-{attempt}")
            shutil.rmtree(root, ignore_errors=True)
        cpu, server, started = time.process_time(), api_cpu(), time.perf_counter()
        run(root)
        walls.append(time.perf_counter() - started)
        here.append(time.process_time() - cpu)
        api.append(api_cpu() - server)
    n = len(days)
    cost = Cost(min(walls) / n, statistics.median(here) / n, statistics.median(api) / n)
    print(f"  {what:<40} {cost.line()}", flush=True)
    return root, cost


def measure(
    landing: Path, scratch: Path, days: list[date], workers: list[int], repeat: int
) -> None:
    steps = partial(plain_steps, landing, days=days)
    timed("plain step functions", days, repeat, steps, scratch / "steps", fresh=True)
    drops = partial(drop_function, landing, days=days)
    timed("ingest_drop, one at a time", days, repeat, drops, scratch / "drop", fresh=True)
    for w in workers:
        costs: dict[str, Cost] = {}
        for name, fn in (("ingest_drop", drop_function), ("backfill flow", backfill_flow)):
            run = partial(fn, landing, days=days, workers=w)
            label = f"{name} on {w} thread(s)"
            done, costs[name] = timed(label, days, repeat, run, scratch / f"{name[:5]}{w}", True)
            _, costs[f"{name}, skipped"] = timed(
                "... again, every drop skipped", days, repeat, run, done, fresh=False
            )
        print(f"  Prefect on {w} thread(s), the flow less ingest_drop:")
        for kind in ("", ", skipped"):
            extra = costs[f"backfill flow{kind}"] - costs[f"ingest_drop{kind}"]
            print(f"    {'drops skipped' if kind else 'drops ingested':<38} {extra.line()}")
    shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("landing", type=Path, help="landing zone holding the days")
    ap.add_argument("--start", type=date.fromisoformat, default=date(2025, 7, 1))
    ap.add_argument("--days", type=int, nargs="+", default=[7])
    ap.add_argument("--workers", type=int, nargs="+", default=[2])
    ap.add_argument("--repeat", type=int, default=3, help="runs of each variant")
    args = ap.parse_args()
    os.environ.setdefault("KESU_PII_KEY", "benchmark-key-0123456789abcdef")
    import kesu.expectations.runner  # noqa: F401  (fixed costs, paid before any clock starts)
    from kesu.expectations.suites import suite_for
    from kesu.flows.cli_args import prefect_defaults
    from prefect import flow

    prefect_defaults(local_server=False)  # as `kesu backfill`; the API: temporary, here
    for table in ("stg_hotline", "stg_complaints", "stg_regulator_transfers"):
        suite_for(table)

    @flow(name="warm-up")
    def warm_up() -> None:
        """Starts the ephemeral API."""

    warm_up()
    scratch = Path(tempfile.mkdtemp(prefix="kesu-overhead-"))
    try:
        for n in args.days:
            days = [args.start + timedelta(days=i) for i in range(n)]
            missing = [d for d in days if not (args.landing / "hotline" / d.isoformat()).is_dir()]
            if missing:
                raise SystemExit(f"{args.landing}: no hotline drop for {missing[0]}")
            print(f"{n} days from {days[0]}; wall: best of {args.repeat}, CPU: median")
            measure(args.landing, scratch / str(n), days, args.workers, args.repeat)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
