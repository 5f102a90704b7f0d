"""Benchmark: one `--profile bank` drop (~300k calls, ~3k ticket rows, ~300 transfers).

Prints: sample generation time; the ingest per feed without Prefect (read, stage, validate,
tokenize, publish); the whole `nightly` flow on Prefect's ephemeral API, with the API's start-up
measured on its own line; rows/s; peak memory (RSS) of this process.

    .venv/bin/python bench/ingest_bank_day.py [--day 2025-07-01] [--engine polars|gx]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OUT = Path(__file__).resolve().parent / "out"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--day", type=date.fromisoformat, default=date(2025, 7, 1))
    ap.add_argument("--engine", choices=("polars", "gx"), default="polars")
    args = ap.parse_args()
    os.environ.setdefault("KESU_PII_KEY", "benchmark-key-0123456789abcdef")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    landing, warehouse = OUT / "landing", OUT / "warehouse"
    from kesu.samplegen.generate import generate

    t = time.perf_counter()
    if not (landing / "hotline" / args.day.isoformat()).is_dir():
        generate(args.day, args.day, landing, profile="bank", seed=1)
    print(f"sample generation (bank day)          {time.perf_counter() - t:8.2f} s")

    from kesu.flows import ingest_steps as steps
    from kesu.flows.config import load_settings
    from kesu.flows.pii_key import resolve_pii_key
    from kesu.warehouse import landing as landing_zone

    shutil.rmtree(warehouse, ignore_errors=True)
    settings = load_settings(landing=str(landing), warehouse=str(warehouse))
    settings.values["validation"]["engine"] = args.engine
    key = resolve_pii_key(settings)
    t = time.perf_counter()
    from kesu.expectations import compiled

    for table in ("stg_hotline", "stg_complaints", "stg_regulator_transfers"):
        compiled.expectations(table)  # the compiled suites: GX itself is not imported
    print(f"load compiled suites (fixed)          {time.perf_counter() - t:8.2f} s")
    total_rows, total_s = 0, 0.0
    for feed in ("hotline", "complaints", "regulator_transfers"):
        files = [str(p) for p in landing_zone.list_drop(landing, feed, args.day).files]
        t = time.perf_counter()
        staged = steps.stage_feed(settings, key, feed, args.day, files, warehouse / "_scratch")
        t_stage = time.perf_counter() - t
        t = time.perf_counter()
        steps.publish_feed(settings, staged)
        t_pub = time.perf_counter() - t
        rows = sum(f.rows_in for f in staged.files)
        total_rows, total_s = total_rows + rows, total_s + t_stage + t_pub
        print(
            f"{feed:<22} rows {rows:>8}  stage+validate {t_stage:6.2f} s  publish {t_pub:5.2f} s"
            f"  {rows / (t_stage + t_pub):>10,.0f} rows/s"
        )
    print(
        f"ingest without Prefect                 {total_s:8.2f} s"
        f"  {total_rows / total_s:>10,.0f} rows/s"
    )
    print(f"peak RSS so far                        {peak_rss_mb():8.0f} MB")

    from kesu.flows.ingest import nightly
    from prefect import flow

    @flow
    def warm_up() -> None:
        return None

    t = time.perf_counter()
    warm_up()
    print(f"Prefect ephemeral API start (fixed)    {time.perf_counter() - t:8.2f} s")
    shutil.rmtree(warehouse, ignore_errors=True)
    t = time.perf_counter()
    nightly(drop_date=args.day, landing_dir=str(landing), warehouse_dir=str(warehouse))
    t_flow = time.perf_counter() - t
    print(
        f"nightly flow (fresh warehouse)         {t_flow:8.2f} s"
        f"  {total_rows / t_flow:>10,.0f} rows/s"
    )
    t = time.perf_counter()
    nightly(drop_date=args.day, landing_dir=str(landing), warehouse_dir=str(warehouse))
    print(f"nightly flow again (unchanged input)   {time.perf_counter() - t:8.2f} s")
    print(f"peak RSS                               {peak_rss_mb():8.0f} MB")


if __name__ == "__main__":
    main()
