"""Reading staged tables for reports: only the `drop_date` partitions a report needs.

The tables are Delta tables (`kesu.warehouse.tables`): `scan_table` reads one version of the
table (the latest, or the one a report manifest recorded) and prunes the partitions outside the
window from the log's partition values, so their files are never opened. It also returns what
the report manifest records for every partition read: its path, rows, the table version, and a
checksum over the data files' names and sizes (Delta never rewrites a file in place, and its
file names are unique, so those name the content).
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import TYPE_CHECKING

import polars as pl
from kesu.transforms.columns import STAGED_TABLE
from kesu.transforms.run_records import PartitionFile, PartitionRead
from kesu.warehouse import paths, tables

if TYPE_CHECKING:
    from kesu.warehouse.warehouse import Warehouse

STAGED_TABLES = tuple(STAGED_TABLE.values())
PARTITION_COLUMN = tables.PARTITION_COLUMN


def partition_dates(wh: Warehouse, table: str, version: int | None = None) -> list[date]:
    """Drop dates of the table's live partitions (those holding a file), ascending."""
    current = tables.open_table(wh, table, version)
    if current is None:
        return []
    listed = tables.partition_files(current)[PARTITION_COLUMN].unique().sort()
    return listed.to_list()


def latest_drop(wh: Warehouse, on_or_before: date | None = None) -> date | None:
    """The newest drop date over the staged tables (the default `--as-of`), or the newest on or
    before `on_or_before`: what was known at the end of that day. None if there is none."""
    newest = [
        max((d for d in dates if on_or_before is None or d <= on_or_before), default=None)
        for t in STAGED_TABLES
        if (dates := partition_dates(wh, t))
    ]
    return max((d for d in newest if d is not None), default=None)


def table_version(wh: Warehouse, table: str) -> int | None:
    """The table's latest version, None while it was never written."""
    current = tables.open_table(wh, table)
    return None if current is None else current.version()


def scan_table(
    wh: Warehouse, table: str, lo: date | None, hi: date, version: int | None = None
) -> tuple[pl.LazyFrame, list[PartitionRead]]:
    """Lazy scan of the partitions with lo <= drop_date <= hi (lo None: from the first one), of
    the table at `version` (default: the latest).

    Returns the frame (with a `drop_date` Date column, last) and a `PartitionRead` per partition
    read, whose sha256 is over its files' names and sizes.
    """
    schema = staged_schema(table) if table in STAGED_TABLES else None
    current = tables.open_table(wh, table, version)
    if current is None:
        empty = (schema or {}) | {PARTITION_COLUMN: pl.Date()}
        return pl.LazyFrame(schema=empty), []
    window = _window(lo, hi)
    chosen = tables.partition_files(current).filter(window)
    records = [
        _partition_record(table, current.version(), day, group)
        for (day,), group in chosen.group_by(PARTITION_COLUMN, maintain_order=True)
    ]
    frame = tables.scan(current, wh.storage_options()).filter(window)
    if schema is not None:
        frame = tables.conform(frame, schema)
    return frame, records


def check_readable(wh: Warehouse, table: str, version: int, lo: date | None, hi: date) -> None:
    """Raises `tables.VersionUnavailable` unless `scan_table` can read the table's `version`
    over lo..hi: `kesu maintain` expires old log entries, and vacuums the files a later version
    replaced once they are older than `[warehouse] vacuum_days` (Polars then fails on the first
    missing file, naming only it)."""
    current = tables.open_table(wh, table, version)
    assert current is not None  # a version asked for: a table, or VersionUnavailable
    chosen = tables.partition_files(current).filter(_window(lo, hi))
    key = paths.table_key(table)
    missing = [not wh.store.exists(f"{key}/{path}") for path in chosen["path"]]
    gone = chosen.filter(pl.Series(missing, dtype=pl.Boolean))
    if gone.height:
        raise tables.VersionUnavailable(
            f"{table} version {version} has been vacuumed: kesu maintain deleted {gone.height} "
            f"of the {chosen.height} files it reads (drop {gone[PARTITION_COLUMN][0]}), as it "
            "does with replaced files older than [warehouse] vacuum_days"
        )


def _window(lo: date | None, hi: date) -> pl.Expr:
    window = pl.col(PARTITION_COLUMN) <= hi
    return window if lo is None else window & (pl.col(PARTITION_COLUMN) >= lo)


def _partition_record(table: str, version: int, day: date, files: pl.DataFrame) -> PartitionRead:
    partition = paths.partition_dir_key(table, paths.partition_key(day))
    entries = [
        PartitionFile(f"{paths.table_key(table)}/{p}", r, b)
        for p, r, b in files.select("path", "rows", "bytes").iter_rows()
    ]
    combined = "".join(f"{e.path}\t{e.bytes}\n" for e in entries)
    return PartitionRead(
        table,
        version,
        day,
        partition,
        sum(e.rows for e in entries),
        hashlib.sha256(combined.encode()).hexdigest(),
        entries,
    )


def staged_schema(table: str) -> dict[str, pl.DataType]:
    """The staged table's column types, from the staging spec (for a table never loaded).

    Typed columns get the dtype their parser returns on an empty column; every other staged
    column (ids, labels, codes, tokens, masked text) is text, and `source_line` an integer.
    """
    from kesu.transforms import staging
    from kesu.transforms.columns import COLUMNS

    feed = {v: k for k, v in STAGED_TABLE.items()}[table]
    empty = pl.Series([], dtype=pl.String)
    typed = {c.name: staging.PARSERS[c.kind](empty)[0].dtype for c in COLUMNS[feed]
             if c.kind in staging.PARSERS}  # fmt: skip
    typed[staging.SOURCE_LINE] = pl.Int64()
    return {name: typed.get(name, pl.String()) for name in staging.STAGED_COLUMNS[feed]}
