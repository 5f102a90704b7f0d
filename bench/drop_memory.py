"""Benchmark: a worker's memory through a bank drop, step by step.

The hotline's drops of `bench/backfill_scale.py` (`--profile bank`, generated there) through
`ingest_drop`, one at a time in this process, as a backfill's worker runs them. A thread reads
the process's RSS every millisecond and keeps, for each drop, the RSS it entered with (what the
last drop left held) and the largest RSS in each step:
  read, ledger   the landing file read and hashed, the unchanged-input check, the ledger
  CSV            the file read as text with its record shapes
  staging plan   the plan collected
  repeated keys, expectations, split
  publish        the Parquet file written and the Delta commit
The raw copy runs beside staging on a thread of its own: its memory counts in whatever step
runs then. The small feeds are left out, so that each moment belongs to one step.

The allocator's hold of freed pages is kesu's (`kesu.ALLOCATOR`) unless `_RJEM_MALLOC_CONF` is
set: with `dirty_decay_ms:0,muzzy_decay_ms:0` every freed page goes back at once, and the
figures are then the drop's live memory.

    .venv/bin/python bench/drop_memory.py [--drops 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# isort: off
import kesu  # noqa: F401 (before Polars: its allocator setting reaches Polars, as in `kesu`)

# isort: on
from kesu.flows import ingest_steps as st
from kesu.flows.config import load_settings
from kesu.flows.drop import ingest_drop
from kesu.transforms import drop_rows

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.backfill_scale import bank_drops  # noqa: E402

OUTSIDE = "read, ledger"  # a drop's moments outside the steps below
WARM_UP = 2  # drops run before measuring: imports, lookups, the tables' creation
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20
STEPS = (
    (st, "_read_file", "CSV"),
    (st, "_stage_group", "staging plan"),
    (drop_rows, "combine", "repeated keys"),
    (st, "row_failures", "expectations"),
    (drop_rows, "split", "split"),
    (st, "publish_feed", "publish"),
)


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * PAGE_MB


class Sampler:
    """The largest RSS in each step, while `step` names the one running."""

    def __init__(self) -> None:
        self.step = OUTSIDE
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.001):
            rss, step = rss_mb(), self.step
            if rss > self.peaks.get(step, 0.0):
                self.peaks[step] = rss

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def marked(self, name: str, step: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            before, self.step = self.step, name
            try:
                return step(*args, **kwargs)
            finally:
                self.step = before

        return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--drops", type=int, default=8, help="drops measured (after 2 to warm up)")
    args = ap.parse_args()
    days, source, work = bank_drops(WARM_UP + args.drops, "drop-memory")
    settings = load_settings(landing=str(source), warehouse=str(work / "wh"))
    sampler = Sampler()
    for module, name, step in STEPS:  # the names `ingest_drop` looks up when it runs
        setattr(module, name, sampler.marked(step, getattr(module, name)))
    sampler.start()
    entered: list[float] = []
    peaks: dict[str, list[float]] = {}
    walls: list[float] = []
    whole: list[float] = []
    for i, day in enumerate(days):
        sampler.peaks, sampler.step = {}, OUTSIDE
        start, clock = rss_mb(), time.perf_counter()
        ingest_drop(settings, day, feeds=["hotline"])
        wall = time.perf_counter() - clock
        time.sleep(0.005)  # the sampler's last reading
        if i < WARM_UP:
            continue
        entered.append(start)
        walls.append(wall)
        for step, peak in sampler.peaks.items():
            peaks.setdefault(step, []).append(peak)
        top = max(sampler.peaks, key=sampler.peaks.__getitem__)
        whole.append(sampler.peaks[top])
        print(f"{day}: entered {start:5.0f} MB, peak {whole[-1]:5.0f} in {top}, {wall:.2f} s")
    sampler.stop()
    # Polars puts its own defaults first; the later settings win
    setting = os.environ.get("_RJEM_MALLOC_CONF", "")
    print(f"\nRSS of this process, MB, medians of {args.drops} drops (allocator: {setting})")
    print(f"  {'entering the drop':<28} {statistics.median(entered):6.0f}")
    for step in (OUTSIDE, *(s for _, _, s in STEPS)):
        if step in peaks:
            print(f"  {'peak in ' + step:<28} {statistics.median(peaks[step]):6.0f}")
    print(f"  {'peak of the drop':<28} {statistics.median(whole):6.0f}  (largest {max(whole):.0f})")
    print(f"  {'wall clock, s':<28} {statistics.median(walls):6.2f}")


if __name__ == "__main__":
    main()
