"""Reading staged tables for reports: only the `drop_date` partitions a report needs.

`scan_table` lists the partition directories and hands Polars an explicit file list, so a
partition outside the window is never opened. It also returns what the report manifest records
for every partition read: its path, rows and a content checksum (from the partition manifest the
publisher wrote; recomputed from the files when that manifest is missing or disagrees with them).

On an object store the partition manifests are the pointers (`kesu.warehouse.versioned`): partitions
are found by listing the manifests, files are those a pointer names, and nothing else under a
table (a version being uploaded, the previous one) is ever opened. Polars reads the objects
itself, with the endpoint and credentials of the warehouse's `S3Storage`.
"""

from __future__ import annotations

import hashlib
import io
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from kesu.warehouse import paths
from kesu.warehouse.publish import VersionedPartition, read_partition_manifest
from kesu.warehouse.storage import Storage, is_remote, remote_storage, storage_for

if TYPE_CHECKING:
    from kesu.warehouse.s3 import S3Storage

STAGED_TABLES = ("stg_hotline", "stg_complaints", "stg_regulator_transfers")
PARTITION_COLUMN = "drop_date"


def partition_dates(root: Path | str, table: str) -> list[date]:
    """Drop dates of the table's live partitions, ascending."""
    store = storage_for(root)
    if is_remote(root):  # a partition is live when its pointer is
        names = [n.removesuffix(".json") for n in store.list_dir(paths.manifest_dir_key(table))]
    else:
        names = store.list_dir(paths.table_key(table))
    dates = []
    for name in names:
        column, _, value = name.partition("=")
        if column != PARTITION_COLUMN:
            continue  # not a partition directory
        try:
            dates.append(date.fromisoformat(value))
        except ValueError:
            continue
    return sorted(dates)


def latest_drop(root: Path | str) -> date | None:
    """The newest drop date over the staged tables (the default `--as-of`), None if empty."""
    newest = [d[-1] for t in STAGED_TABLES if (d := partition_dates(root, t))]
    return max(newest, default=None)


def scan_table(
    root: Path | str, table: str, lo: date | None, hi: date
) -> tuple[pl.LazyFrame, list[dict[str, Any]]]:
    """Lazy scan of the partitions with lo <= drop_date <= hi (lo None: from the first one).

    Returns the frame (with a `drop_date` Date column) and one record per partition read:
    ``{"table", "drop_date", "path", "rows", "sha256", "files": [{"path", "rows", "sha256"}]}``
    where the partition's sha256 is over its files' names and checksums.
    """
    store = storage_for(root)
    chosen = [d for d in partition_dates(root, table) if (lo is None or lo <= d) and d <= hi]
    files: list[str] = []
    records = []
    for day in chosen:
        record = _partition_record(root, store, table, day)
        if not record["files"]:
            continue  # an empty directory (e.g. left by hand): nothing to read
        files += [str(store.location(f["path"])) for f in record["files"]]
        records.append(record)
    if not files:
        return pl.LazyFrame(schema=_empty_schema(root, store, table)), records
    if is_remote(root):
        return _scan_remote(remote_storage(root), records), records
    frame = pl.scan_parquet(files, hive_partitioning=True, hive_schema={PARTITION_COLUMN: pl.Date})
    return frame, records


def _scan_remote(store: S3Storage, records: list[dict[str, Any]]) -> pl.LazyFrame:
    """The partitions' files, with `drop_date` added last as the hive scan does locally (the
    version folder in each key is not a hive segment, so the column is set per partition)."""
    options = store.polars_options()
    frames = [
        pl.scan_parquet(
            [store.location(f["path"]) for f in record["files"]],
            hive_partitioning=False,
            storage_options=options,
            credential_provider=None,  # exactly the credentials above, from the AWS chain
        ).with_columns(pl.lit(date.fromisoformat(record["drop_date"])).alias(PARTITION_COLUMN))
        for record in records
    ]
    return pl.concat(frames, how="vertical")


def _partition_record(root: Path | str, store: Storage, table: str, day: date) -> dict[str, Any]:
    if is_remote(root):
        return _pointer_record(root, table, day)
    partition = paths.partition_key(day)
    live = paths.partition_dir_key(table, partition)
    names = [n for n in store.list_dir(live) if n.endswith(".parquet")]
    manifest = read_partition_manifest(root, table, partition)
    known = {f.name: f for f in manifest.files} if manifest else {}
    files: list[dict[str, Any]] = []
    for name in names:
        key = f"{live}/{name}"
        entry = known.get(name)
        if entry is not None and entry.bytes == store.size(key):
            rows, sha256 = entry.rows, entry.sha256
        else:  # no manifest, or it describes other files: recompute from the file itself
            data = store.read_bytes(key)
            sha256 = hashlib.sha256(data).hexdigest()
            rows = pl.scan_parquet(io.BytesIO(data)).select(pl.len()).collect().item()
        files.append({"path": key, "rows": rows, "sha256": sha256})
    combined = hashlib.sha256(
        "".join(f"{name}\t{f['sha256']}\n" for name, f in zip(names, files, strict=True)).encode()
    ).hexdigest()
    return {
        "table": table,
        "drop_date": day.isoformat(),
        "path": live,
        "rows": sum(f["rows"] for f in files),
        "sha256": combined,
        "files": files,
    }


def _pointer_record(root: Path | str, table: str, day: date) -> dict[str, Any]:
    """What `_partition_record` says, from the pointer alone (it is the truth on a store)."""
    partition = paths.partition_key(day)
    manifest = read_partition_manifest(root, table, partition)
    pointer = manifest if isinstance(manifest, VersionedPartition) else None
    entries = pointer.files if pointer else []
    folder = paths.version_dir_key(table, partition, pointer.version) if pointer else ""
    files = [{"path": f"{folder}/{f.name}", "rows": f.rows, "sha256": f.sha256} for f in entries]
    combined = hashlib.sha256("".join(f"{f.name}\t{f.sha256}\n" for f in entries).encode())
    return {
        "table": table,
        "drop_date": day.isoformat(),
        "path": paths.partition_dir_key(table, partition),
        "rows": sum(f["rows"] for f in files),
        "sha256": combined.hexdigest(),
        "files": files,
    }


def _empty_schema(root: Path | str, store: Storage, table: str) -> dict[str, pl.DataType]:
    """Schema for an empty selection: that of any partition of the table, else the staging one."""
    if is_remote(root):
        for day in partition_dates(root, table):
            record = _pointer_record(root, table, day)
            if record["files"]:
                return dict(_scan_remote(remote_storage(root), [record]).collect_schema())
        return staged_schema(table) | {PARTITION_COLUMN: pl.Date()}
    for day in partition_dates(root, table):
        live = paths.partition_dir_key(table, paths.partition_key(day))
        for name in store.list_dir(live):
            if name.endswith(".parquet"):
                schema = dict(pl.read_parquet_schema(store.path(f"{live}/{name}")))
                return schema | {PARTITION_COLUMN: pl.Date()}
    return staged_schema(table) | {PARTITION_COLUMN: pl.Date()}


def staged_schema(table: str) -> dict[str, pl.DataType]:
    """The staged table's column types, from the staging spec (for a table never loaded).

    Typed columns get the dtype their parser returns on an empty column; every other staged
    column (ids, labels, codes, tokens, masked text) is text, and `source_line` an integer.
    """
    from kesu.transforms import staging
    from kesu.transforms.columns import COLUMNS, STAGED_TABLE

    feed = {v: k for k, v in STAGED_TABLE.items()}[table]
    empty = pl.Series([], dtype=pl.String)
    typed = {c.name: staging.PARSERS[c.kind](empty)[0].dtype for c in COLUMNS[feed]
             if c.kind in staging.PARSERS}  # fmt: skip
    typed[staging.SOURCE_LINE] = pl.Int64()
    return {name: typed.get(name, pl.String()) for name in staging.STAGED_COLUMNS[feed]}
