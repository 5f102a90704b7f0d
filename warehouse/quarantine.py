"""Reading a drop's quarantined rows back for review (`kesu quarantine`).

The ingest rebuilds `quarantine/<feed>/drop_date=D/` whole on every run of drop D, so what is
read here is always what the last run of that drop rejected: a corrected source file re-ingested
takes its fixed rows out of quarantine.
"""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
from kesu.warehouse import ledger, paths
from kesu.warehouse.storage import is_remote, storage_for

QUARANTINE = "quarantine"
LEAD_SCHEMA = {
    "source_file": pl.String(),
    "source_line": pl.Int64(),
    "field": pl.String(),
    "rule": pl.String(),
    "reason": pl.String(),
}


def quarantine_table(feed: str) -> str:
    return paths.table_key(f"{QUARANTINE}/{paths.feed_key(feed)}")


def read_quarantine(root: Path | str, feed: str, drop_date: date) -> pl.DataFrame:
    """One row per rejected source row of the feed's drop, in file and line order.

    Columns: source_file, source_line, field, rule, reason, then the source columns as text
    (canonical names, personal data masked). No partition (nothing rejected, or the drop was
    never ingested) gives an empty frame with the first five columns.
    """
    store = storage_for(root)
    table, partition = quarantine_table(feed), paths.partition_key(drop_date)
    if is_remote(root):  # the files the partition's pointer names (warehouse.versioned)
        frames = [
            pl.read_parquet(io.BytesIO(store.read_bytes(k)))
            for k in _live_keys(root, table, partition)
        ]
    else:
        live = paths.partition_dir_key(table, partition)
        names = [n for n in store.list_dir(live) if n.endswith(".parquet")]
        frames = [pl.read_parquet(store.path(f"{live}/{n}")) for n in names]
    if not frames:
        return pl.DataFrame(schema=LEAD_SCHEMA)
    return pl.concat(frames, how="diagonal_relaxed").sort(
        "source_file", "source_line", maintain_order=True
    )


def _live_keys(root: Path | str, table: str, partition: str) -> list[str]:
    from kesu.warehouse import versioned

    pointer = versioned.pointer(storage_for(root), table, partition)
    return versioned.file_keys(pointer) if pointer else []


def last_ingests(root: Path | str, drop_date: date) -> dict[str, dict[str, Any]]:
    """Per feed, its record in the newest completed run of this drop (ledger), with `run_id`."""
    found: dict[str, dict[str, Any]] = {}
    for run in ledger.list_runs(root):  # newest first
        if run.get("status") != "completed" or run.get("drop_date") != drop_date.isoformat():
            continue
        for feed, record in (run.get("feeds") or {}).items():
            found.setdefault(feed, record | {"run_id": run["run_id"]})
    return found
