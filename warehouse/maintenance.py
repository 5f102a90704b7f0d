"""Looking after the Delta tables: compaction, checkpoints, vacuum; and the one-off migration of
a warehouse written before the tables were Delta tables.

`maintain` may run while drops are ingested: compaction commits like any writer (a conflict
with a publish of the same drop fails the compaction of that table, which the next run redoes),
and vacuum deletes only files that no version younger than the retention still reads, and files
no commit names (what a killed publish wrote) once they are older than the retention. A publish
writes its data file before the commit that names it, so a retention shorter than a publish
could delete a file about to be committed: under `SAFE_RETENTION_DAYS` (vacuum_days 0) `maintain`
runs only while no other run is live, holding new ones off (`locks.idle`), and is refused
otherwise, and always on an object store (runs on other machines take no local lock). Vacuum
commits only when a file is there to delete: re-running it finds the same tombstones again.

Both refuse a warehouse that still holds tables of the first release's folder layout
(`unmigrated`): Delta would call their files unreferenced, so a vacuum deleted them for good.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import polars as pl
from deltalake import DeltaTable, Field, Schema, convert_to_deltalake
from deltalake.schema import PrimitiveType
from kesu.warehouse import locks, paths, tables

if TYPE_CHECKING:
    from kesu.warehouse.warehouse import Warehouse


@dataclass(frozen=True)
class Maintained:
    """What `maintain` did to one table."""

    table: str
    version: int  # after compaction
    files_compacted: int  # data files rewritten into fewer, larger ones
    files_vacuumed: int  # data files deleted
    checkpoint: bool


# A retention at least this long never reaches a file a publish has written and not committed
# yet (a publish takes seconds to minutes): `maintain` runs beside live runs. Shorter: alone.
SAFE_RETENTION_DAYS = 1


def maintain(wh: Warehouse, vacuum_days: int) -> list[Maintained]:
    """Compact, checkpoint and vacuum every table of the warehouse that exists."""
    if vacuum_days < 0:
        raise ValueError(f"vacuum retention must be 0 or more days, not {vacuum_days}")
    refuse_unmigrated(wh)
    if vacuum_days >= SAFE_RETENTION_DAYS:
        return _maintain_all(wh, vacuum_days)
    if wh.remote:
        raise ValueError(
            f"{wh}: a vacuum retention of {vacuum_days} days could delete a file a publish on "
            f"another machine is about to commit; keep {SAFE_RETENTION_DAYS} day or more"
        )
    with locks.idle(wh) as idle:  # held to the end: a run that starts meanwhile waits
        if not idle:
            raise locks.WarehouseBusy(
                f"a vacuum retention of {vacuum_days} days could delete a file a live run is "
                f"about to commit, so it runs only while no other kesu run is live (one holds "
                f"{wh.state.path(paths.LOCK)}): run it again later, or keep "
                f"{SAFE_RETENTION_DAYS} day or more"
            )
        return _maintain_all(wh, vacuum_days)


def _maintain_all(wh: Warehouse, vacuum_days: int) -> list[Maintained]:
    done = []
    for table in paths.TABLE_DIRS:
        current = tables.open_table(wh, table)
        if current is not None:
            done.append(_maintain(wh, table, current, vacuum_days))
    return done


def _maintain(wh: Warehouse, table: str, current: DeltaTable, vacuum_days: int) -> Maintained:
    if _lacks_properties(current):  # a table created before kesu set them
        current.alter.set_table_properties(tables.TABLE_PROPERTIES)
    metrics = current.optimize.compact()  # commits only when it rewrote files
    current.create_checkpoint()
    vacuumed = _vacuum(wh, table, current, vacuum_days)
    current.cleanup_metadata()  # log files older than the log retention (30 days)
    removed = int(metrics.get("numFilesRemoved", 0))
    return Maintained(table, current.version(), removed, vacuumed, True)


def _vacuum(wh: Warehouse, table: str, current: DeltaTable, vacuum_days: int) -> int:
    """Delete what no version younger than the retention reads; returns how many files went.

    delta-rs lists a replaced file as long as the log keeps its tombstone (a week), deleted or
    not, and a vacuum that lists any file commits twice (its start and its end): so the files
    are looked for first, and a vacuum with none there to delete is not run.
    """

    def vacuum(dry_run: bool) -> list[str]:
        return current.vacuum(
            retention_hours=vacuum_days * 24,
            dry_run=dry_run,
            enforce_retention_duration=False,  # the retention is kesu's setting, not Delta's
            full=True,  # also the files a killed publish wrote and no commit names
        )

    key = paths.table_key(table)
    there = [name for name in vacuum(dry_run=True) if wh.store.exists(f"{key}/{name}")]
    if not there:
        return 0
    vacuum(dry_run=False)
    return sum(not wh.store.exists(f"{key}/{name}") for name in there)


def _lacks_properties(table: DeltaTable) -> bool:
    configuration = table.metadata().configuration
    return any(configuration.get(k) != v for k, v in tables.TABLE_PROPERTIES.items())


class Unmigrated(ValueError):
    """The warehouse holds tables of the first release's folder layout (`unmigrated`)."""


def unmigrated(wh: Warehouse) -> list[str]:
    """The tables still in the first release's folder layout: their manifests
    (``_ledger/partitions/<table>``) are there until `migrate` has made them Delta tables. A
    local warehouse's only (an object store's old layout is re-ingested, not migrated)."""
    if wh.remote:  # checked first: building an S3 store imports boto3
        return []
    return _first_release_tables(wh)


def _first_release_tables(wh: Warehouse) -> list[str]:
    """The tables whose first-release manifests (``_ledger/partitions/<table>``) are there."""
    store = wh.store
    if not store.is_dir(f"{paths.LEDGER}/partitions"):
        return []
    return [t for t in paths.TABLE_DIRS if store.is_dir(paths.manifest_dir_key(t))]


def refuse_unmigrated(wh: Warehouse) -> None:
    """Raise `Unmigrated` (one line) while any table awaits `migrate`."""
    waiting = unmigrated(wh)
    if waiting:
        raise Unmigrated(
            f"{wh} holds tables of the first release not yet converted to Delta tables "
            f"({', '.join(waiting)}): run kesu migrate first"
        )


def migrate(wh: Warehouse) -> list[str]:
    """Turn every table of the folder layout (``<table>/drop_date=D/*.parquet``, one manifest per
    partition in ``_ledger/partitions``) into a Delta table in place.

    `convert_to_deltalake` adopts the files as they are where Delta can hold their types; files
    with zoned timestamps (Delta keeps UTC) are rewritten instead, one drop per commit. Each
    table's old manifests go last, so a killed migration is finished by running it again (a
    rewritten drop is then found unchanged). Local warehouses only: the object-store layout kept
    version folders behind pointers, which a table cannot adopt (re-ingest its drops instead);
    an object-store warehouse without such tables has nothing to convert.
    """
    if wh.remote:
        waiting = _first_release_tables(wh)
        if waiting:
            raise ValueError(
                f"{wh}: kesu migrate converts local warehouses; re-ingest an S3 warehouse's "
                f"drops (kesu backfill --force) to write its Delta tables ({', '.join(waiting)})"
            )
        return []
    store = wh.store
    done = []
    for table in paths.TABLE_DIRS:
        key = paths.table_key(table)
        if not store.is_dir(paths.manifest_dir_key(table)):
            continue  # never published in the old layout, or migrated already
        partitions = [n for n in store.list_dir(key) if n.startswith(tables.PARTITION_COLUMN)]
        how = "adopted"
        if not store.is_dir(f"{key}/_delta_log"):
            try:
                convert_to_deltalake(
                    wh.table_uri(table),
                    partition_by=Schema([Field(tables.PARTITION_COLUMN, PrimitiveType("date"))]),
                    partition_strategy="hive",
                    configuration=tables.TABLE_PROPERTIES,
                )
            except Exception:  # deltalake raises a bare Exception for a type it cannot hold
                how = "rewritten"
        if how == "rewritten" or store.is_dir(f"{key}/_delta_log") and _has_strays(wh, table):
            how = "rewritten"
            for name in partitions:
                _rewrite(wh, table, name)
        version = DeltaTable(wh.table_uri(table)).version()
        done.append(f"{table}: {len(partitions)} partition(s) {how} as a Delta table (v{version})")
        store.delete_tree(paths.manifest_dir_key(table))  # the old layout's pointers
    return done


def _live_paths(wh: Warehouse, table: str) -> set[str]:
    current = tables.open_table(wh, table)
    return set() if current is None else set(tables.partition_files(current)["path"])


def _has_strays(wh: Warehouse, table: str) -> bool:
    """Parquet files in the table's folders that no commit names (the old layout's)."""
    live, store, key = _live_paths(wh, table), wh.store, paths.table_key(table)
    return any(
        f"{name}/{f}" not in live
        for name in store.list_dir(key)
        if name.startswith(tables.PARTITION_COLUMN)
        for f in store.list_dir(f"{key}/{name}")
    )


def _rewrite(wh: Warehouse, table: str, partition: str) -> None:
    """One old partition folder into the Delta table (one commit), then its old files out."""
    store, key = wh.store, paths.table_key(table)
    live = _live_paths(wh, table)
    old = [
        f"{partition}/{n}"
        for n in store.list_dir(f"{key}/{partition}")
        if n.endswith(".parquet") and f"{partition}/{n}" not in live
    ]
    if not old:
        return
    frames = [pl.read_parquet(store.path(f"{key}/{name}")) for name in old]
    day = date.fromisoformat(partition.split("=", 1)[1])
    tables.publish(wh, table, day, pl.concat(frames, how="diagonal_relaxed"))
    for name in old:
        store.delete(f"{key}/{name}")
