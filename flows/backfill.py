"""The `backfill` flow: the nightly ingest for every drop date of a range, oldest first.

Each day is a `nightly` subflow, so every day gets its own ledger entry and artifact and a day
whose inputs are unchanged is skipped cheaply.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from prefect import flow, get_run_logger

from flows.ingest import nightly


def drop_dates(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


@flow(name="backfill")
def backfill(
    start: date,
    end: date,
    feeds: list[str] | None = None,
    landing_dir: str | None = None,
    warehouse_dir: str | None = None,
    config_file: str | None = None,
    force: bool = False,
) -> list[dict[str, Any]]:
    logger = get_run_logger()
    days = drop_dates(start, end)
    runs = []
    for i, day in enumerate(days, 1):
        run = nightly(
            drop_date=day,
            feeds=feeds,
            landing_dir=landing_dir,
            warehouse_dir=warehouse_dir,
            config_file=config_file,
            force=force,
        )
        loaded = sum(r["loaded"] for r in run["feeds"].values())
        logger.info("backfill %d/%d: %s done (%d rows loaded)", i, len(days), day, loaded)
        runs.append(run)
    return runs
