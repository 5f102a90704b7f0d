"""The staged and quarantine tables as Delta Lake tables, partitioned by ``drop_date``.

A drop's publish is one Delta transaction per table: an overwrite whose predicate is the drop's
``drop_date`` (replace-where), so readers see the partition fully old or fully new, a SIGKILL at
any moment leaves at most unreferenced files (removed by `kesu maintain`'s vacuum), and two
processes on two machines publishing different drops both commit (on S3 through conditional
writes; no lock service, no rename). Its commit metadata names the run and the input checksums
(``kesu.run_id``, ``kesu.drop_date``, ``kesu.inputs``). A table is created empty with the schema of
its first drop's rows (`_create`); rows that fit the table's schema are written by Polars and
committed as an overwrite of the partition (`_commit_file`: a third of the time of delta-rs'
writer), and only a schema change (a quarantine drop with a source column the table lacks) goes
through `write_deltalake`. A process keeps the local tables it opened for its next publishes
(`_KeptTables`), brought up to date each time, instead of replaying their logs again.

An unchanged drop commits nothing: the live partition is read back and compared row for row
(as a multiset: Delta keeps no row order across files). When a concurrent writer commits first,
delta-rs raises `CommitFailedError`; the publish then reloads the table and starts over, so a
drop that the other run replaced with the same rows is found unchanged.

The tables keep kesu's column types, with two exceptions of the format that readers restore:
Delta stores timestamps in UTC (the staged columns are read back in their zone, see
`conform`), and it has no unsigned integers (none is staged).

Over 250 lines: the publish protocol (create, commit, retry, the kept tables) and the reads it
checks itself against (`read_partition`, `same_rows`, `conform`) are one contract with Delta.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, PostCommitHookProperties, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from deltalake.transaction import AddAction, Transaction
from kesu.warehouse import paths

if TYPE_CHECKING:
    from kesu.warehouse.warehouse import Warehouse

PARTITION_COLUMN = "drop_date"
# A checkpoint every 10 commits instead of Delta's 100: opening a table replays the JSON commits
# since its last checkpoint, and a publish opens it several times, so at 90 drops without one a
# bank drop's publish spent ~0.5 s more than at 10. Set when a table is created; `kesu maintain`
# sets it on tables created before.
TABLE_PROPERTIES = {"delta.checkpointInterval": "10"}
# Checkpoints after commits, as the interval says; old log files are removed by `kesu maintain`
# alone (`cleanup_metadata`, after its log retention), never as a side effect of a publish.
AFTER_COMMIT = PostCommitHookProperties(create_checkpoint=True, cleanup_expired_logs=False)
# Delta's own setting (and default): `kesu maintain` removes log entries older than this, and
# with them time travel to their versions
LOG_RETENTION = "delta.logRetentionDuration"
_CREATING = threading.Lock()  # see `_create`
ATTEMPTS = 5  # commits lost to concurrent writers of the same drop before giving up
RETRY_SECONDS = 0.2


@dataclass(frozen=True)
class Committed:
    """What one publish did to one table's partition."""

    action: str  # created | replaced | unchanged | removed | absent
    version: int | None  # the table version holding this partition's rows (None: no table)
    rows: int
    files: list[tuple[str, int, int]] = field(default_factory=list)  # (path, rows, bytes) live


class VersionUnavailable(LookupError):
    """A version of a table that cannot be read: the table never reached it, or `kesu maintain`
    removed it (its log entry expired, or its files were vacuumed)."""


def open_table(wh: Warehouse, table: str, version: int | None = None) -> DeltaTable | None:
    """The table (at `version`, default the latest), None while it was never written.

    A `version` it cannot open raises VersionUnavailable, never returns None: delta-rs reports
    a version whose log entry `kesu maintain` expired as a table not found, and read as never
    written, a report reproduced from a manifest's versions came out without that table's rows.
    """
    try:
        return DeltaTable(
            wh.table_uri(table), version=version, storage_options=wh.storage_options()
        )
    except DeltaError as failed:
        if version is None and isinstance(failed, TableNotFoundError):
            return None
        why = None if version is None else _unavailable(wh, table, version)
        if why is None:  # not a version gone: what delta-rs says is best
            raise
        raise VersionUnavailable(why) from None


def _unavailable(wh: Warehouse, table: str, version: int) -> str | None:
    """Why the table's `version` cannot be opened, None if its log entry is there."""
    latest = open_table(wh, table)
    if latest is None:
        return f"{table} has no version {version}: there is no such table in {wh}"
    if version > latest.version():
        return f"{table} has no version {version}: its latest is {latest.version()} in {wh}"
    if wh.store.exists(f"{paths.table_key(table)}/_delta_log/{version:020d}.json"):
        return None
    kept = latest.metadata().configuration.get(LOG_RETENTION, "interval 30 days")
    return (
        f"{table} version {version} is no longer in the table's log: kesu maintain keeps "
        f"{kept.removeprefix('interval ')} of it"
    )


class _KeptTables:
    """Local tables opened by this process's earlier publishes, kept for its next ones. Opening a
    table replays its log from the last checkpoint (~5-7 ms of CPU for a table of 40 drops,
    twice per feed and drop); bringing a kept one up to date reads only the commits since (~1-2
    ms). A kept table is lent to one publish at a time, and only while the log's file of the
    version it holds is the one it read (a commit file is never rewritten): a table removed and
    created again at the same place is opened anew. Tables on S3 are opened each time."""

    KEEP = 4  # per table: a backfill's workers publish the same table at once
    TABLES = 16  # the tables most recently published (a warehouse has 6): a bound on memory

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: OrderedDict[str, list[tuple[DeltaTable, tuple[int, ...]]]] = OrderedDict()

    def lend(self, wh: Warehouse, table: str) -> DeltaTable | None:
        """The latest version of the table (None while it was never written)."""
        if wh.remote:
            return open_table(wh, table)
        uri = wh.table_uri(table)
        with self._lock:
            idle = self._idle.get(uri)
            kept = idle.pop() if idle else None
        if kept is not None:
            current, seen = kept
            if _commit_file_identity(uri, current.version()) == seen:
                try:
                    current.update_incremental()
                    return current
                except Exception:  # whatever delta-rs found: opening the table decides
                    pass
        return open_table(wh, table)

    def give_back(self, wh: Warehouse, table: str, current: DeltaTable) -> None:
        if wh.remote:
            return
        uri = wh.table_uri(table)
        seen = _commit_file_identity(uri, current.version())
        if seen is None:
            return
        with self._lock:
            idle = self._idle.setdefault(uri, [])
            self._idle.move_to_end(uri)
            if len(idle) < self.KEEP:
                idle.append((current, seen))
            while len(self._idle) > self.TABLES:
                self._idle.popitem(last=False)


def _commit_file_identity(uri: str, version: int) -> tuple[int, ...] | None:
    """Which file holds the local table's commit `version` (None: none does any more)."""
    try:
        found = os.stat(f"{uri}/_delta_log/{version:020d}.json")
    except OSError:
        return None
    return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns


_KEPT = _KeptTables()


def publish(
    wh: Warehouse,
    table: str,
    drop_date: date,
    frame: pl.DataFrame | None,
    metadata: Mapping[str, str] | None = None,
) -> Committed:
    """Replace the rows of `drop_date` with `frame` (None: remove them), in one commit."""
    if frame is not None and PARTITION_COLUMN in frame.columns:
        raise ValueError(f"{table}: {PARTITION_COLUMN!r} comes from the partition, drop it")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _publish_once(wh, table, drop_date, frame, dict(metadata or {}))
        except CommitFailedError:  # another run committed this drop first: look again
            if attempt == ATTEMPTS:
                raise
            time.sleep(RETRY_SECONDS * attempt)
    raise AssertionError("unreachable")


def _publish_once(
    wh: Warehouse,
    table: str,
    drop_date: date,
    frame: pl.DataFrame | None,
    metadata: dict[str, str],
) -> Committed:
    current = _KEPT.lend(wh, table)
    if current is None and frame is not None and frame.height:
        current = _create(wh, table, frame)
    done = _publish_to(wh, current, table, drop_date, frame, metadata)
    if current is not None:  # not after a failed commit: the next publish opens it anew
        _KEPT.give_back(wh, table, current)
    return done


def _publish_to(
    wh: Warehouse,
    current: DeltaTable | None,
    table: str,
    drop_date: date,
    frame: pl.DataFrame | None,
    metadata: dict[str, str],
) -> Committed:
    options = wh.storage_options()
    live = read_partition(current, drop_date, options) if current is not None else None
    live_rows = 0 if live is None else live.height
    commit = CommitProperties(custom_metadata=metadata | {"kesu.drop_date": drop_date.isoformat()})
    if frame is None or frame.height == 0:
        if current is None or live_rows == 0:
            return Committed("absent", None if current is None else current.version(), 0)
        current.delete(
            _predicate(drop_date), commit_properties=commit, post_commithook_properties=AFTER_COMMIT
        )
        return Committed("removed", current.version(), 0)
    if live is not None and live_rows and same_rows(frame, live):
        assert current is not None
        return Committed("unchanged", current.version(), live_rows, _files(current, drop_date))
    assert current is not None  # created above
    files = None
    if _same_schema(current, _table_schema(frame)):
        # the overwrite leaves the partition this one file: no need to list it from the log
        files = [_commit_file(wh, current, table, drop_date, frame, commit)]
    else:
        write_deltalake(
            current,
            frame.with_columns(pl.lit(drop_date).alias(PARTITION_COLUMN)).to_arrow(),
            mode="overwrite",
            predicate=_predicate(drop_date),
            partition_by=[PARTITION_COLUMN],
            schema_mode="merge",  # quarantine files may lack source columns another drop had
            storage_options=options,
            commit_properties=commit,
            post_commithook_properties=AFTER_COMMIT,
        )
    current.update_incremental()
    action = "replaced" if live_rows else "created"
    files = _files(current, drop_date) if files is None else files
    return Committed(action, current.version(), frame.height, files)


def _create(wh: Warehouse, table: str, frame: pl.DataFrame) -> DeltaTable:
    """The table, empty, with the columns of `frame` (and the partition column), unless another
    run created it first.

    Its own commit, holding no rows, and never retried: when two processes create a table at
    once, both find it absent and both commit version 0; delta-rs would retry the loser's
    creation as version 1 (a second creation in the log, 39 of 40 such races), so the loser
    gets no retry and opens the winner's table instead. Rows go in by the commits that follow,
    which are checked against each other.
    """
    # the drops of one process create a table once; the loser of two processes finds it made
    with _CREATING, contextlib.suppress(CommitFailedError):
        DeltaTable.create(
            wh.table_uri(table),
            _delta_schema(_table_schema(frame)),
            mode="ignore",  # created before we looked: left as it is
            partition_by=[PARTITION_COLUMN],
            configuration=TABLE_PROPERTIES,
            storage_options=wh.storage_options(),
            commit_properties=CommitProperties(max_commit_retries=0),
            post_commithook_properties=AFTER_COMMIT,
        )
    created = open_table(wh, table)
    if created is None:
        raise RuntimeError(f"{table}: the table could not be created")
    return created


def _table_schema(frame: pl.DataFrame) -> pa.Schema:
    """The Arrow schema of `frame`'s rows as a table holds them (with the partition column),
    from no rows: converting them all would copy every string."""
    return (
        frame.head(0).with_columns(pl.lit(None, pl.Date).alias(PARTITION_COLUMN)).to_arrow().schema
    )


def _delta_schema(schema: pa.Schema) -> DeltaSchema:
    """The Delta schema of rows of `schema`: zoned timestamps are stored in UTC, as delta-rs'
    writer stores them. Raises for a type Delta cannot store."""
    fields = [
        pa.field(f.name, pa.timestamp(f.type.unit, "UTC"), f.nullable)
        if pa.types.is_timestamp(f.type) and f.type.tz is not None
        else f
        for f in schema
    ]
    return DeltaSchema.from_arrow(pa.schema(fields))


def _same_schema(table: DeltaTable, schema: pa.Schema) -> bool:
    """Whether rows of `schema` fit the table as it is (no new column, same types)."""
    try:
        return _delta_schema(schema) == table.schema()
    except Exception:  # delta-rs raises a bare Exception for a type it cannot store
        return False


def _commit_file(
    wh: Warehouse,
    current: DeltaTable,
    table: str,
    drop_date: date,
    frame: pl.DataFrame,
    commit: CommitProperties,
) -> tuple[str, int, int]:
    """Replace the drop's rows with `frame` written as one Parquet file by Polars, committed as
    an overwrite of its partition (delta-rs derives the removes of the old files); returns the
    file as `Committed.files` lists it (path in the table, rows, bytes).

    Polars' multi-threaded writer takes a third of the time of delta-rs' own (0.2 against
    0.6-0.7 s for a bank day's calls); the file is written whole (temp file and fsync locally,
    one PUT on S3) before the commit names it, so a crash leaves at most an unreferenced file.
    """
    in_utc = [
        pl.col(n).dt.convert_time_zone("UTC")
        for n, t in frame.schema.items()
        if isinstance(t, pl.Datetime) and t.time_zone is not None
    ]
    buffer = io.BytesIO()
    frame.with_columns(in_utc).write_parquet(buffer, compression="zstd", compression_level=1)
    data = buffer.getvalue()
    relative = f"{PARTITION_COLUMN}={drop_date.isoformat()}/part-00000-{uuid.uuid4()}-c000.parquet"
    wh.store.write_bytes(f"{paths.table_key(table)}/{relative}", data)
    add = AddAction(
        path=relative,
        size=len(data),
        partition_values={PARTITION_COLUMN: drop_date.isoformat()},
        modification_time=int(time.time() * 1000),
        data_change=True,
        stats=json.dumps({"numRecords": frame.height}),
    )
    # An overwrite of an empty partition removes nothing, so two runs adding a drop at once
    # would not conflict by their files: a transaction id per table and drop makes them (the
    # loser gets CommitFailedError, retries and finds the drop unchanged). The same holds for the
    # first rows after the table's creation, which is a commit of its own (`_create`).
    claim = Transaction(f"kesu:{table}:{drop_date.isoformat()}", current.version() + 1)
    current.create_write_transaction(
        [add],
        mode="overwrite",
        schema=current.schema(),
        partition_by=[PARTITION_COLUMN],
        partition_filters=[(PARTITION_COLUMN, "=", drop_date.isoformat())],
        commit_properties=CommitProperties(
            custom_metadata=commit.custom_metadata, app_transactions=[claim]
        ),
        post_commithook_properties=AFTER_COMMIT,
    )
    return relative, frame.height, len(data)


def read_partition(
    table: DeltaTable, drop_date: date, options: dict[str, str] | None
) -> pl.DataFrame | None:
    """The live rows of one drop, without the partition column; None when the partition holds
    no file (every drop of a backfill): listing its files from the log takes ~0.4 ms, where a
    scan of the table finding nothing took ~4 ms, once per table a drop writes."""
    if not table.file_uris(file_pruning_predicate=[(PARTITION_COLUMN, "=", drop_date)]):
        return None
    wanted = scan(table, options).filter(pl.col(PARTITION_COLUMN) == drop_date)
    return wanted.drop(PARTITION_COLUMN).collect()


def same_rows(new: pl.DataFrame, live: pl.DataFrame) -> bool:
    """The same rows as a multiset, comparing `live` (as Delta returns it) in `new`'s types;
    `live`'s extra columns (other drops' columns, merged into the table) must be all null."""
    if new.height != live.height or not set(new.columns) <= set(live.columns):
        return False
    extra = [c for c in live.columns if c not in new.columns]
    if extra and live.select(pl.any_horizontal(pl.col(extra).is_not_null().any())).item():
        return False
    try:
        theirs = conform(live.select(new.columns), new.schema)
    except pl.exceptions.PolarsError:
        return False
    if theirs.schema != new.schema:
        return False
    return new.hash_rows().sort().equals(theirs.hash_rows().sort())


def conform(frame: pl.DataFrame | pl.LazyFrame, schema: Mapping[str, pl.DataType]):  # type: ignore[no-untyped-def]
    """Back to kesu's types: zoned timestamps into their zone (Delta keeps UTC), others cast."""
    exprs = []
    for name in frame.collect_schema().names():
        dtype = schema.get(name)
        if dtype is None:
            exprs.append(pl.col(name))
        elif isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            exprs.append(pl.col(name).dt.convert_time_zone(dtype.time_zone))
        else:
            exprs.append(pl.col(name).cast(dtype))
    return frame.select(exprs)


def scan(table: DeltaTable, options: dict[str, str] | None) -> pl.LazyFrame:
    """Polars' scan of this version of the table (its own reader, with the same credentials)."""
    if options is None:
        return pl.scan_delta(table, version=table.version())
    return pl.scan_delta(
        table, version=table.version(), storage_options=options, credential_provider=None
    )


def partition_files(table: DeltaTable) -> pl.DataFrame:
    """One row per live data file: path (relative to the table), drop_date, rows, bytes."""
    actions = pl.DataFrame(table.get_add_actions(flatten=True))
    if actions.height == 0:
        return pl.DataFrame(
            schema={"path": pl.String, "drop_date": pl.Date, "rows": pl.Int64, "bytes": pl.Int64}
        )
    return actions.select(
        "path",
        pl.col(f"partition.{PARTITION_COLUMN}").cast(pl.Date).alias(PARTITION_COLUMN),
        pl.col("num_records").cast(pl.Int64).alias("rows"),
        pl.col("size_bytes").cast(pl.Int64).alias("bytes"),
    ).sort(PARTITION_COLUMN, "path")


def _files(table: DeltaTable, drop_date: date) -> list[tuple[str, int, int]]:
    listed = partition_files(table).filter(pl.col(PARTITION_COLUMN) == drop_date)
    return list(listed.select("path", "rows", "bytes").iter_rows())


def commit_metadata(run_id: str | None, inputs: Mapping[str, str]) -> dict[str, str]:
    """The commit's custom metadata: the run and its input files' sha256 by name."""
    found = {"kesu.inputs": json.dumps(dict(sorted(inputs.items())), ensure_ascii=False)}
    return found | ({"kesu.run_id": run_id} if run_id else {})


def _predicate(drop_date: date) -> str:
    return f"{PARTITION_COLUMN} = '{drop_date.isoformat()}'"
