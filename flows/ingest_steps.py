"""The steps of ingesting one feed's drop, as plain functions (the Prefect tasks wrap them).

Kept free of Prefect so they can be unit-tested and reused by the backfill flow: each takes and
returns small values (paths, counts), and the frames travel through the run's scratch folder.
They read, call the rules (`kesu.transforms`, `kesu.expectations`), publish and keep the raw
copy; what decides the staged rows besides the files is `kesu.flows.staging_inputs`.

Over 250 lines: one feed's steps in the order a drop runs them (read in groups, stage, publish,
keep raw), with the per-file outcome each of them fills in.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

import polars as pl
from kesu.expectations.runner import row_failures
from kesu.flows.config import Settings
from kesu.flows.pii_key import PiiKey
from kesu.flows.staging_inputs import staging_context
from kesu.transforms import drop_rows, parsing
from kesu.transforms.columns import MULTILINE_HEADERS, STAGED_TABLE
from kesu.transforms.file_names import shown_name, stored_name, stored_names
from kesu.transforms.personal_data import mask_message
from kesu.transforms.run_records import FileOutcome, RawInput, to_jsonable
from kesu.transforms.staging import StagedFile, StagingContext, check_headers, stage
from kesu.warehouse import landing, paths, scratch
from kesu.warehouse.landing_store import Landing
from kesu.warehouse.publish import PublishedPartition, partition_intact, publish_partition
from kesu.warehouse.raw import keep_raw, read_regular


@dataclass
class FeedStaged:
    """What staging one feed's drop produced: per-file outcomes and scratch paths of the frames."""

    feed: str
    drop_date: date
    files: list[FileOutcome]
    loaded_path: str | None
    quarantine_path: str | None
    seconds: float
    # Without a scratch folder (stage and publish in one process) the frames stay here instead.
    frames: dict[str, pl.DataFrame] = field(default_factory=dict, repr=False, compare=False)

    def to_jsonable(self) -> dict[str, Any]:
        return {
            f.name: to_jsonable(getattr(self, f.name)) for f in fields(self) if f.name != "frames"
        }

    def frame(self, what: str) -> pl.DataFrame | None:
        """`what` is "loaded" or "quarantine": from memory, or from its scratch file."""
        if what in self.frames:
            return self.frames[what]
        path = self.loaded_path if what == "loaded" else self.quarantine_path
        return scratch.read_frame(path) if path else None


def _read_file(
    feed: str,
    path: Path,
    data: bytes | None = None,
    sha256: str | None = None,
    taken: set[str] | None = None,
) -> tuple[pl.DataFrame | None, FileOutcome]:
    """`taken`: the stored names of the drop's files read before this one (`stored_name`)."""
    if data is None:
        data, sha256 = read_regular(path), None
    sha256 = sha256 or hashlib.sha256(data).hexdigest()
    name = stored_name(path.name, sha256, set() if taken is None else taken)
    outcome = FileOutcome(name, sha256, len(data))
    try:
        source = landing.read_source(path, data, MULTILINE_HEADERS)
    except landing.SourceReadError as exc:
        outcome.status, outcome.message = "failed", _masked(str(exc), path.name, outcome.name)
        return None, outcome
    except Exception as exc:  # a bad file fails alone; its message may quote records: not shown
        _failed(outcome, f"could not be read ({type(exc).__name__})")
        return None, outcome
    outcome.encoding = source.encoding
    outcome.notes.extend(mask_message(n) for n in source.notes)
    headers = [c for c in source.frame.columns if not c.startswith("_")]
    check = check_headers(feed, headers)
    outcome.rows_in = source.frame.height
    if check.missing_required:  # its rows are all held, with this message as their reason
        outcome.status = "failed"
        encoding = source.encoding
        if encoding == "gb18030" and not check.rename and landing.looks_like_big5(data):
            encoding = "big5"  # read as GB18030 without an error, into no known header
        outcome.message = drop_rows.missing_columns_reason(
            feed, outcome.name, outcome.rows_in, check, encoding
        )
        outcome.rejected = check.missing_required
    if check.unknown and check.rename:  # with no header row, "headers" are a record's values
        unknown = mask_message(_columns(check.unknown))
        outcome.notes.append(f"unknown column(s) kept only in the raw zone: {unknown}")
    if check.repeated:
        repeated = mask_message(_columns(check.repeated))
        outcome.notes.append(f"repeated column(s), the first is used: {repeated}")
    outcome.notes += drop_rows.absent_columns_notes(feed, check.missing_optional)
    keep = [*check.rename, landing.LINE, landing.RAGGED]
    return source.frame.select(keep).rename(check.rename), outcome


def _columns(names: list[str], shown: int = 20) -> str:
    """Column names for a note: the first `shown`, and how many there are past that (a file
    can have thousands)."""
    listed = "、".join(names[:shown])
    return listed if len(names) <= shown else f"{listed}、… ({len(names)} in all)"


def _failed(outcome: FileOutcome, what: str) -> None:
    """A file that broke kesu's reader or staging: it fails alone, in one line naming it, and
    none of its records is counted (they cannot be, so the message says so)."""
    outcome.status = "failed"
    outcome.rows_in = outcome.loaded = outcome.quarantined = 0
    outcome.message = (
        f"{outcome.name}: {what}; none of its records was loaded or counted — kesu could not "
        "read it, please report it with the file"
    )


def _masked(message: str, name: str, masked_name: str) -> str:
    """A message about a file, with its name as stored and any personal data masked."""
    return mask_message(message.replace(name, masked_name))


def stage_feed(
    settings: Settings,
    key: PiiKey,
    feed: str,
    drop_date: date,
    files: list[str],
    scratch_root: Path | None,
    contents: dict[str, bytes] | None = None,
    sums: Mapping[str, str] | None = None,
) -> FeedStaged:
    """Read, stage and validate each file of a feed's drop; every row ends loaded or quarantined.

    The frames go to `scratch_root` for a publish in another task or process; with None they
    stay in memory on the result (saves an Arrow IPC write and read of every row). `contents`:
    the files' bytes as already read for the raw copy, by name in `files` (each is removed from
    the dict once read, to free it early); `sums`: their sha256 (`checksums`), by name.
    """
    started = time.perf_counter()
    ctx = staging_context(settings, key, drop_date)
    outcomes: list[FileOutcome] = []
    parts: list[StagedFile] = []
    held: list[pl.DataFrame] = []  # the rows of files without a required column
    for group in _read_in_groups(feed, files, contents, sums, outcomes):
        whole = group[0][1] if group[0][1].rejected else None  # a group alone, its rows all held
        for staged in _stage_group(feed, group, ctx):
            if whole is None:
                parts.append(staged)
            else:
                held.append(drop_rows.hold_all(staged, whole.rejected, whole.message))
                whole.quarantined = staged.staged.height
        del group  # the files' text columns: not needed once staged (a bank day: ~100 MB)
    if not parts:
        all_held = pl.concat(held) if held else None
        return _staged(feed, drop_date, outcomes, None, all_held, scratch_root, started)
    rows = drop_rows.combine(feed, parts)
    del parts
    engine = settings.get("validation", "engine")
    failures = row_failures(rows.staged, STAGED_TABLE[feed], engine=engine, among=rows.validated())
    loaded, quarantined = drop_rows.split(rows, failures, held)
    counts = {
        "loaded": drop_rows.rows_by_file(loaded),
        "quarantined": drop_rows.rows_by_file(quarantined),
    }
    for outcome in outcomes:
        if outcome.status == "ok":
            for what, by_file in counts.items():
                setattr(outcome, what, by_file.get(outcome.name, 0))
    return _staged(feed, drop_date, outcomes, loaded, quarantined, scratch_root, started)


# Files of up to this many rows are staged in one plan with the files read just before them, if
# they have the same columns (a small feed exported in parts, or a file per branch): the plan's
# fixed cost, ~15-20 ms, is most of a small file's staging (a bank's day of complaints in 30
# files: 0.71 CPU-s in `stage_feed` file by file, 0.20 so; `bench/small_files.py`). A group never
# holds more rows than one file whose dates are parsed as written (`parsing.PARSED_AS_WRITTEN`),
# so each of its files is staged as it would be alone; a longer file is staged alone, before the
# next one is read.
SHARED_PLAN_ROWS = parsing.PARSED_AS_WRITTEN


def _read_in_groups(
    feed: str,
    files: list[str],
    contents: dict[str, bytes] | None,
    sums: Mapping[str, str] | None,
    outcomes: list[FileOutcome],
) -> Iterator[list[tuple[pl.DataFrame, FileOutcome]]]:
    """The feed's readable files, in order, in the groups staged together (`SHARED_PLAN_ROWS`):
    a long file, or one whose rows are all held (`rejected`), is a group alone. Each file's
    outcome is appended to `outcomes` as it is read."""
    group: list[tuple[pl.DataFrame, FileOutcome]] = []
    rows, taken = 0, set[str]()
    for name in files:
        # popped: a file's bytes are let go as soon as its text columns are read
        data = contents.pop(name, None) if contents is not None else None
        source, outcome = _read_file(feed, Path(name), data, (sums or {}).get(name), taken)
        del data
        outcomes.append(outcome)
        if source is None:
            continue
        alone = bool(outcome.rejected) or source.height > SHARED_PLAN_ROWS
        joins = not alone and rows + source.height <= SHARED_PLAN_ROWS
        if group and not (joins and dict(source.schema) == dict(group[0][0].schema)):
            yield group
            group, rows = [], 0
        if alone:
            yield [(source, outcome)]
        else:
            group.append((source, outcome))
            rows += source.height
        del source
    if group:
        yield group


def _stage_group(
    feed: str, group: list[tuple[pl.DataFrame, FileOutcome]], ctx: StagingContext
) -> list[StagedFile]:
    """The group's files staged in one plan, their rows in file order; should that fail, each
    file alone, so that a file that breaks staging fails alone and the others are staged."""
    if len(group) > 1:
        try:
            return [drop_rows.stage_together(feed, [(s, o.name) for s, o in group], ctx)]
        except Exception:  # which file it was is found below, file by file
            pass
    done = []
    for source, outcome in group:
        try:
            done.append(stage(feed, source, outcome.name, ctx))
        except Exception as exc:  # a bad file fails alone; the drop goes on
            _failed(outcome, f"could not be staged ({type(exc).__name__})")
    return done


def _staged(
    feed: str,
    drop_date: date,
    outcomes: list[FileOutcome],
    loaded: pl.DataFrame | None,
    quarantined: pl.DataFrame | None,
    scratch_root: Path | None,
    started: float,
) -> FeedStaged:
    frames = {
        what: frame
        for what, frame in (("loaded", loaded), ("quarantine", quarantined))
        if frame is not None
    }
    result = FeedStaged(feed, drop_date, outcomes, None, None, 0.0)
    if scratch_root is None:
        result.frames = frames
    else:
        base = scratch_root / feed
        base.mkdir(parents=True, exist_ok=True)
        written = {w: scratch.write_frame(base / f"{w}.arrow", f) for w, f in frames.items()}
        result.loaded_path = written.get("loaded")
        result.quarantine_path = written.get("quarantine")
    result.seconds = _since(started)
    return result


def _by_source_file(frame: pl.DataFrame | None, names: list[str]) -> dict[str, pl.DataFrame]:
    """One Parquet file per source file, so a corrected file replaces just its own rows."""
    if frame is None or frame.height == 0:
        return {}
    # the usual drop, one file: no copy of every row (compared, not hashed: ~1 against ~3 ms)
    if len(names) == 1 and (frame["source_file"] == names[0]).all():
        return {paths.safe_part_name(names[0]): frame}
    parts = frame.partition_by("source_file", as_dict=True, maintain_order=True)
    return {paths.safe_part_name(n): parts[(n,)] for n in names if (n,) in parts}


def publish_feed(
    settings: Settings, staged: FeedStaged, run_id: str | None = None
) -> list[PublishedPartition]:
    """Replace the drop's partition of the staged table and of the feed's quarantine: one
    commit each, naming the run and the source files' checksums."""
    wh = settings.warehouse_store()
    partition = paths.partition_key(staged.drop_date)
    names = [f.name for f in staged.files]
    inputs = {f.name: f.sha256 for f in staged.files}
    loaded, bad = staged.frame("loaded"), staged.frame("quarantine")
    targets = ((STAGED_TABLE[staged.feed], loaded), (paths.quarantine_table(staged.feed), bad))
    return [
        publish_partition(
            wh, table, partition, _by_source_file(frame, names), run_id=run_id, inputs=inputs
        )
        for table, frame in targets
    ]


def checksums(contents: Mapping[str, bytes]) -> dict[str, str]:
    """The sha256 of each file's bytes, by name: computed once for the raw copy, the check for
    unchanged inputs and staging (hashlib lets go of the GIL while it hashes)."""
    return {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()}


def read_files(store: Landing, files: list[str]) -> tuple[dict[str, bytes], list[FileOutcome]]:
    """The bytes of each of a feed's files, by name, and a failed outcome for each that could
    not be read: no permission to, removed or replaced since the folder was listed, grown past
    the size limit. Such a file fails alone; the others are read (the drop goes on)."""
    contents: dict[str, bytes] = {}
    unread: list[FileOutcome] = []
    for f in files:
        try:
            contents[f] = store.read(f)
        except (OSError, ValueError) as exc:
            unread.append(_unread(f, exc))
    return contents, unread


def _unread(file: str, exc: OSError | ValueError) -> FileOutcome:
    """The outcome of a file that could not be read, named as shown past the raw zone (it has
    no checksum: no bytes were read)."""
    name = shown_name(PurePosixPath(file).name)
    if isinstance(exc, OSError) and exc.strerror:
        why = exc.strerror  # the error's text alone: its file name is the landing path's
    else:
        why = _masked(str(exc), file, name)
    outcome = FileOutcome(name, "", 0, status="failed")
    outcome.message = (
        f"{name}: could not be read from the landing zone ({why}); none of its records was "
        "loaded or counted — make it readable and run the drop again"
    )
    return outcome


def keep_raw_files(
    settings: Settings,
    feed: str,
    drop_date: date,
    files: list[str],
    contents: Mapping[str, bytes] | None = None,
    sums: Mapping[str, str] | None = None,
) -> list[RawInput]:
    """Raw copies of `files` (read here, or given as `contents` by name, with their `sums`);
    their checksums."""
    contents, sums, wh = contents or {}, sums or {}, settings.warehouse_store()
    copies = [keep_raw(wh, feed, drop_date, Path(f), contents.get(f), sums.get(f)) for f in files]
    names = stored_names((f, c.sha256) for f, c in zip(files, copies, strict=True))
    return [
        RawInput(name, c.sha256, c.bytes, c.already_present)
        for name, c in zip(names, copies, strict=True)
    ]


def partitions_intact(
    settings: Settings, feed: str, drop_date: date, published: list[PublishedPartition]
) -> bool:
    """The live partitions still hold the files their log lists, at their sizes, and the rows
    the last run's publish (`published`, its ledger record's outputs) left there (cheap: the
    log's counts). A table the record names no publish of is checked by its files alone."""
    partition = paths.partition_key(drop_date)
    rows = {p.table: p.rows for p in published if p.partition == partition}
    tables = (STAGED_TABLE[feed], paths.quarantine_table(feed))
    wh = settings.warehouse_store()
    return all(partition_intact(wh, t, partition, rows.get(t)) for t in tables)


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)
