"""Benchmark: a small feed's drop landed as many files, staged in shared plans or file by file.

A bank's complaints export can come in parts, or as one file per branch (feeds.md: "one or more
files per day"). Each staging plan has a fixed cost of ~15-20 ms of CPU, most of a small file's
staging, so consecutive small files of the same columns share one plan
(`kesu.flows.ingest_steps.SHARED_PLAN_ROWS`). This splits each of D bank days of complaints
(`bench/backfill_scale.py`'s sample, generated there if missing) into N files and times
`stage_feed` (read, stage, expectations, quarantine split; one thread, no publish) both ways, in
turn on the same files, and prints the median CPU and wall seconds per drop of each.

    .venv/bin/python bench/small_files.py [--parts 1 2 10 30 100] [--days 8]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from datetime import date
from pathlib import Path

# isort: off
import kesu  # noqa: F401 (before Polars: its allocator setting reaches Polars, as in `kesu`)

# isort: on
import polars as pl
from kesu.flows import ingest_steps
from kesu.flows.config import load_settings
from kesu.flows.pii_key import resolve_pii_key
from kesu.warehouse import landing

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.backfill_scale import KEY, OUT, days_from, ensure_sample  # noqa: E402

FEED = "complaints"


def split_days(sample: Path, root: Path, parts: int, days: int) -> list[str]:
    """Each day's complaints rewritten as `parts` files of about equal rows under `root`."""
    shutil.rmtree(root, ignore_errors=True)
    for day in days_from(days):
        folder = sample / FEED / day.isoformat()
        # kesu's reader: any encoding the sample writes (some days are GB18030, as banks do)
        read = [landing.read_source(p).frame for p in sorted(folder.iterdir())]
        rows = pl.concat(f.drop(landing.LINE, landing.RAGGED) for f in read)
        out = root / FEED / day.isoformat()
        out.mkdir(parents=True)
        size = -(-rows.height // parts)
        for i in range(parts):
            rows.slice(i * size, size).write_csv(out / f"complaints_{day:%Y%m%d}_{i:03d}.csv")
    return [d.isoformat() for d in days_from(days)]


def measure(root: Path, days: list[str]) -> dict[str, list[tuple[float, float]]]:
    """(CPU, wall) seconds of `stage_feed` per day, grouped and file by file, in turn."""
    settings = load_settings(landing=str(root), warehouse=str(root / "_warehouse"))
    key = resolve_pii_key(settings)
    limits = {"shared plans": ingest_steps.SHARED_PLAN_ROWS, "file by file": 0}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in limits}
    try:
        for i, day in enumerate(days):
            files = sorted(str(p) for p in (root / FEED / day).iterdir())
            order = list(limits) if i % 2 else list(reversed(limits))
            for name in order:
                ingest_steps.SHARED_PLAN_ROWS = limits[name]
                cpu, wall = time.process_time(), time.perf_counter()
                staged = ingest_steps.stage_feed(
                    settings, key, FEED, date.fromisoformat(day), files, None
                )
                if i > 0:  # the first day warms up imports, suites and lookups
                    runs[name].append((time.process_time() - cpu, time.perf_counter() - wall))
                assert all(f.status == "ok" for f in staged.files), staged.files
    finally:
        ingest_steps.SHARED_PLAN_ROWS = limits["shared plans"]
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, nargs="+", default=[1, 2, 10, 30, 100])
    parser.add_argument("--days", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("KESU_PII_KEY", KEY)
    sample = ensure_sample(args.days)
    print("| files a drop | rows a file | shared plans: CPU s / wall s | file by file | ratio |")
    print("|---:|---:|---:|---:|---:|")
    for parts in args.parts:
        root = OUT / "small-files" / str(parts)
        days = split_days(sample, root, parts, args.days)
        rows = pl.scan_csv(next((root / FEED / days[0]).iterdir())).select(pl.len()).collect()
        runs = measure(root, days)
        med = {
            name: [statistics.median(r[k] for r in got) for k in (0, 1)]
            for name, got in runs.items()
        }
        shared, alone = med["shared plans"], med["file by file"]
        print(
            f"| {parts} | {rows.item():,} | {shared[0]:.3f} / {shared[1]:.3f} "
            f"| {alone[0]:.3f} / {alone[1]:.3f} | {shared[0] / alone[0]:.2f}x |"
        )
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
