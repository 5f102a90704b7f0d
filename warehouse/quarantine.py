"""Reading a drop's quarantined rows back for review (`kesu quarantine`).

The ingest rebuilds `quarantine/<feed>/drop_date=D/` whole on every run of drop D, so what is
read here is always what the last run of that drop rejected: a corrected source file re-ingested
takes its fixed rows out of quarantine.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import polars as pl
from kesu.transforms.quarantine import QUARANTINE_LEAD_SCHEMA
from kesu.transforms.run_records import IngestRun, completed_ingest, holds_feed
from kesu.warehouse import ledger, paths, tables

if TYPE_CHECKING:
    from kesu.warehouse.warehouse import Warehouse


def read_quarantine(
    wh: Warehouse, feed: str, drop_date: date, version: int | None = None
) -> pl.DataFrame:
    """One row per rejected source row of the feed's drop, in file and line order.

    Columns: source_file, source_line, field, rule, reason, then the source columns as text
    (canonical names, personal data masked). No partition (nothing rejected, or the drop was
    never ingested) gives an empty frame with the first five columns. `version`: the table as
    it was then (default: now).
    """
    return read_quarantine_drops(wh, feed, [drop_date], version)[drop_date]


def read_quarantine_drops(
    wh: Warehouse, feed: str, drops: list[date], version: int | None = None
) -> dict[date, pl.DataFrame]:
    """`read_quarantine` of each of `drops`, from one opening and one scan of the table (a
    report reads every drop's held complaints: opening the table per drop cost ~1 s a month)."""
    current = tables.open_table(wh, paths.quarantine_table(feed), version)
    if current is None:
        return {day: pl.DataFrame(schema=QUARANTINE_LEAD_SCHEMA) for day in drops}
    column = tables.PARTITION_COLUMN
    wanted = tables.scan(current, wh.storage_options()).filter(pl.col(column).is_in(drops))
    found = wanted.collect().partition_by(column, as_dict=True, include_key=False)
    return {day: _review_rows(found.get((day,))) for day in drops}


def _review_rows(found: pl.DataFrame | None) -> pl.DataFrame:
    if found is None or found.height == 0:
        return pl.DataFrame(schema=QUARANTINE_LEAD_SCHEMA)
    # the table's columns are those of every drop: keep the source columns this drop had
    present = [
        c
        for c in found.columns
        if c in QUARANTINE_LEAD_SCHEMA or found[c].null_count() < found.height
    ]
    return found.select(present).sort("source_file", "source_line", maintain_order=True)


def last_ingests(wh: Warehouse, drop_date: date) -> dict[str, IngestRun]:
    """Per feed, the newest completed run of this drop that found its folder (`holds_feed`: its
    record says what the drop holds), else the newest that found none (ledger)."""
    found: dict[str, IngestRun] = {}
    no_folder: dict[str, IngestRun] = {}
    for run in ledger.list_runs(wh):  # newest first
        if completed_ingest(run, drop_date):
            for feed in run.feeds:
                held = found if holds_feed(run, drop_date, feed) else no_folder
                held.setdefault(feed, run)
    return no_folder | found
