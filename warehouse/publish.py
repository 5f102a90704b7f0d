"""Publishing a drop's partition of a table, and what a crash can leave.

The tables are Delta Lake tables (`kesu.warehouse.tables`): a publish is one commit that replaces
the rows of one ``drop_date``, atomic on a local disk and on S3 alike, so a crash needs no undo.
What `recover` still clears is what a killed process left outside the tables: temporary files of
the raw zone and ledger writes, and work folders of the layout before Delta.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, cast

import polars as pl
from kesu.transforms.run_records import Action, PublishedFile, PublishedPartition
from kesu.warehouse import locks, paths, tables

if TYPE_CHECKING:
    from kesu.warehouse.warehouse import Warehouse


def publish_partition(
    wh: Warehouse,
    table: str,
    partition: str,
    files: Mapping[str, pl.DataFrame],
    *,
    run_id: str | None = None,
    inputs: Mapping[str, str] | None = None,
) -> PublishedPartition:
    """Replace the partition with the rows of `files` (one frame per source file; none: remove
    it) in one commit naming `run_id` and the `inputs` (sha256 by source file name)."""
    drop_date = _drop_date(partition)
    for name, frame in files.items():
        paths.check_part_file(name)
        if tables.PARTITION_COLUMN in frame.columns:
            raise ValueError(f"{name}: {tables.PARTITION_COLUMN!r} comes from the partition")
    frames = [files[name] for name in sorted(files)]
    rows = pl.concat(frames, how="diagonal_relaxed") if frames else None
    metadata = tables.commit_metadata(run_id, inputs or {})
    done = tables.publish(wh, table, drop_date, rows, metadata)
    files_now = [PublishedFile(*f) for f in done.files]
    action = cast(Action, done.action)  # delta-rs reports one of these five as text
    return PublishedPartition(table, partition, files_now, action, done.version)


def partition_intact(wh: Warehouse, table: str, partition: str, rows: int | None = None) -> bool:
    """Every data file the table's log lists for the partition is there, at its size; and, with
    `rows` (what the last publish left there), the log's files hold that many rows: a delete
    or restore committed by hand since, which leaves every listed file in place, is seen (a
    compaction by `kesu maintain` keeps the rows)."""
    current = tables.open_table(wh, table)
    if current is None:
        return not rows  # nothing published: nothing to miss, unless rows were
    store = wh.store
    drop_date = _drop_date(partition)
    listed = tables.partition_files(current).filter(pl.col(tables.PARTITION_COLUMN) == drop_date)
    if rows is not None and int(listed["rows"].sum()) != rows:
        return False
    for path, size in listed.select("path", "bytes").iter_rows():
        key = f"{paths.table_key(table)}/{path}"
        try:
            if store.size(key) != size:
                return False
        except FileNotFoundError:
            return False
    return True


def recover(wh: Warehouse) -> list[str]:
    """Clear what killed processes left outside the tables; run at the start of every run.

    Only while no other run is live (`locks.idle`): a live write's temp files look exactly like a
    crashed one's. A Delta commit is atomic, so the tables need nothing here: files a killed
    publish wrote but never committed are unreferenced, and `kesu maintain` vacuums them.
    """
    with locks.idle(wh) as idle:
        if not idle or wh.remote:
            return []
        store = wh.store
        done: list[str] = []
        for folder in (paths.TMP, paths.STAGING):
            leftovers = store.list_dir(folder)
            for name in leftovers:
                store.delete_tree(f"{folder}/{name}")
            if leftovers:
                done.append(f"removed {len(leftovers)} unfinished temp file(s) in {folder}")
        return done


def _drop_date(partition: str) -> date:
    column, _, value = paths.check_partition(partition).partition("=")
    if column != tables.PARTITION_COLUMN:
        raise ValueError(f"invalid partition: {partition!r}")
    return date.fromisoformat(value)
