"""The run ledger's records, typed: an ingest run of one drop and a backfill over a range, the
record of each feed in an ingest run, and what that record lists (files read, raw copies kept,
partitions published, files not read); and the partitions a report read, for its manifest.

Their JSON is the ledger's shape (`kesu.warehouse.ledger` writes it with `to_jsonable`); a run
reads itself back with `run_from_jsonable`, records of earlier versions included: a field an
older record lacks takes its default, and a key a newer one has and this one does not know is
left out. Dates and times stay `date` and `datetime` objects until they are written.

Over 250 lines: every record of the ledger, each a small dataclass with its reading back from
JSON; one module so that the ledger's shape is in one place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from pathlib import PurePath
from typing import Any, Literal, TypeGuard, TypeVar

T = TypeVar("T")

Action = Literal["created", "replaced", "unchanged", "removed", "absent"]
# loaded | unchanged (inputs as in the last completed run: nothing done) | empty (a folder with
# no file) | unreadable (files, none of them readable) | no_folder
FeedStatus = str
RunStatus = str  # running | completed | failed | interrupted (stopped by Ctrl-C or SIGTERM)


def to_jsonable(value: Any) -> Any:
    """Records (any dataclass), paths and dates made JSON-ready, recursively: what the ledger and
    the report manifests write."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, date):  # datetime is a date too
        return value.isoformat()
    return value


def _known(cls: type[T], data: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of `data` that are fields of `cls` (a record of another version may have more)."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return {k: v for k, v in data.items() if k in names}


def _flat(cls: type[T], data: Mapping[str, Any]) -> T:
    """A record without nested records, from its JSON."""
    return cls(**_known(cls, data))


def _instant(value: str) -> datetime:
    """A recorded time: kesu writes UTC with its offset. One without an offset (a hand-edited
    record) is refused, since it cannot be ordered against the others."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("a time without its UTC offset")
    return moment


def _datetime(value: str | None) -> datetime | None:
    return _instant(value) if value else None


@dataclass
class FileOutcome:
    """One landing file of a feed's drop, as staging left it (named with personal data masked)."""

    name: str
    sha256: str
    bytes: int
    encoding: str = ""
    rows_in: int = 0
    loaded: int = 0
    quarantined: int = 0
    status: str = "ok"  # ok | failed
    message: str = ""
    rejected: list[str] = field(default_factory=list)  # missing required columns: rows all held
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RawInput:
    """A landing file as the raw zone keeps it: its masked name, checksum and size."""

    name: str
    sha256: str
    bytes: int
    already_present: bool = False  # the raw zone held these bytes already


@dataclass(frozen=True)
class SkippedFile:
    """A file of the feed's folder that was not read, and why (its name masked)."""

    name: str
    why: str


@dataclass(frozen=True)
class PublishedFile:
    """One live data file of the partition (path relative to the table)."""

    name: str
    rows: int
    bytes: int


@dataclass
class PublishedPartition:
    """What a publish did to one drop's partition of a table."""

    table: str
    partition: str
    files: list[PublishedFile] = field(default_factory=list)
    action: Action = "unchanged"
    version: int | None = None  # the Delta table version that holds these rows

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @classmethod
    def from_jsonable(cls, data: Mapping[str, Any]) -> PublishedPartition:
        files = [PublishedFile(f["name"], f["rows"], f["bytes"]) for f in data["files"]]
        version = data.get("version")
        version = version if isinstance(version, int) else None  # pre-Delta records: a string
        return cls(data["table"], data["partition"], files, data["action"], version)


@dataclass
class FeedRecord:
    """One feed's part of an ingest run: its status, row counts (rows in = loaded +
    quarantined) and what it read, kept and published; `seconds` per stage (`STAGES`)."""

    status: FeedStatus
    folder: str = ""
    fingerprint: str = ""  # of the staging code and reference data (`kesu.flows.staging_inputs`)
    rows_in: int = 0
    loaded: int = 0
    quarantined: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    inputs: list[RawInput] = field(default_factory=list)
    files: list[FileOutcome] = field(default_factory=list)
    outputs: list[PublishedPartition] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None  # why an unreadable feed could not be read

    @property
    def failed_files(self) -> list[FileOutcome]:
        return [f for f in self.files if f.status == "failed"]

    def input_sums(self) -> dict[str, str]:
        """{masked file name: sha256} of the inputs."""
        return {i.name: i.sha256 for i in self.inputs}

    @classmethod
    def from_jsonable(cls, data: Mapping[str, Any]) -> FeedRecord:
        return cls(
            **_known(cls, data)
            | {
                "skipped": [_flat(SkippedFile, s) for s in data.get("skipped", [])],
                "inputs": [_flat(RawInput, i) for i in data.get("inputs", [])],
                "files": [_flat(FileOutcome, f) for f in data.get("files", [])],
                "outputs": [PublishedPartition.from_jsonable(o) for o in data.get("outputs", [])],
                "seconds": dict(data.get("seconds") or {}),
            }
        )


@dataclass
class IngestRun:
    """An ingest of one drop date (`kesu ingest`, the nightly run, each drop of a backfill).
    `seconds`: per stage summed over the feeds, and `total` (the run's wall clock)."""

    run_id: str
    drop_date: date
    started_at: datetime
    status: RunStatus = "running"
    kesu_version: str = ""
    key_id: str = ""  # which PII key made the tokens (never the key)
    pid: int | None = None
    host: str = ""
    feeds: dict[str, FeedRecord] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)  # rows in, loaded, quarantined
    finished_at: datetime | None = None
    error: str | None = None  # masked: never quotes a record
    kind: Literal["ingest"] = "ingest"

    @property
    def covers(self) -> str:
        return self.drop_date.isoformat()

    @classmethod
    def from_jsonable(cls, data: Mapping[str, Any]) -> IngestRun:
        feeds = data.get("feeds") or {}
        return cls(
            **_known(cls, data)
            | {
                "drop_date": date.fromisoformat(data["drop_date"]),
                "started_at": _instant(data["started_at"]),
                "finished_at": _datetime(data.get("finished_at")),
                "feeds": {name: FeedRecord.from_jsonable(r) for name, r in feeds.items()},
                "seconds": dict(data.get("seconds") or {}),
                "totals": dict(data.get("totals") or {}),
                "kind": "ingest",
            }
        )


def completed_ingest(run: Run, drop_date: date) -> TypeGuard[IngestRun]:
    """`run` is a completed ingest of `drop_date`."""
    return isinstance(run, IngestRun) and run.status == "completed" and run.drop_date == drop_date


def holds_feed(
    run: Run, drop_date: date, feed: str, statuses: tuple[str, ...] | None = None
) -> TypeGuard[IngestRun]:
    """`run` is a completed ingest of `drop_date` whose record of `feed` says what the drop
    holds: its status is one of `statuses`, by default any but `no_folder` (a run that found no
    folder left the feed's partitions as they were: an earlier run's record still says what they
    hold). The one rule for the skip logic (`ledger.last_feed_record`), `kesu status` and
    `kesu quarantine`."""
    if not completed_ingest(run, drop_date):
        return False
    record = run.feeds.get(feed)
    if record is None:
        return False
    return record.status in statuses if statuses is not None else record.status != "no_folder"


@dataclass
class DropEntry:
    """A backfill's line for one drop: its outcome (ingested | skipped | no_data | failed), and
    the drop's run, rows and seconds, or the error when the drop failed."""

    drop_date: date
    outcome: str
    run_id: str | None = None
    rows_in: int | None = None
    loaded: int | None = None
    quarantined: int | None = None
    seconds: float | None = None
    error: str | None = None

    @classmethod
    def from_jsonable(cls, data: Mapping[str, Any]) -> DropEntry:
        return cls(**_known(cls, data) | {"drop_date": date.fromisoformat(data["drop_date"])})


@dataclass
class BackfillRun:
    """A backfill over `start`..`end`: its drops' outcomes, rewritten as drops finish.
    `summary`: drops per outcome and rows over every drop (`run_summary.backfill_summary`)."""

    run_id: str
    start: date
    end: date
    started_at: datetime
    only_feeds: list[str] | None = None  # not "feeds": in an ingest run that is per-feed records
    force: bool = False
    workers: int | None = None  # None on a Dask cluster, whose threads decide
    dask_address: str | None = None
    status: RunStatus = "running"
    pid: int | None = None
    host: str = ""
    drops: list[DropEntry] = field(default_factory=list)
    summary: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    finished_at: datetime | None = None
    error: str | None = None
    kind: Literal["backfill"] = "backfill"

    @property
    def covers(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    @classmethod
    def from_jsonable(cls, data: Mapping[str, Any]) -> BackfillRun:
        return cls(
            **_known(cls, data)
            | {
                "start": date.fromisoformat(data["start"]),
                "end": date.fromisoformat(data["end"]),
                "started_at": _instant(data["started_at"]),
                "finished_at": _datetime(data.get("finished_at")),
                "drops": [DropEntry.from_jsonable(d) for d in data.get("drops", [])],
                "summary": dict(data.get("summary") or {}),
                "seconds": dict(data.get("seconds") or {}),
            }
        )


Run = IngestRun | BackfillRun


@dataclass(frozen=True)
class PartitionFile:
    """A data file of a partition a report read (path relative to the warehouse)."""

    path: str
    rows: int
    bytes: int


@dataclass(frozen=True)
class PartitionRead:
    """A partition a report read (`kesu.warehouse.reader.scan_table`), as its manifest records
    it: the table's version, the drop, its rows and a checksum over its files' names and sizes."""

    table: str
    version: int
    drop_date: date
    path: str
    rows: int
    sha256: str
    files: list[PartitionFile]


class UnknownKind(ValueError):
    """A ledger record of a kind this version does not know (written by a later one)."""


def run_from_jsonable(data: Mapping[str, Any]) -> Run:
    """A ledger record of either kind (records without a kind are ingest runs)."""
    kind = data.get("kind", "ingest")
    if kind == "backfill":
        return BackfillRun.from_jsonable(data)
    if kind == "ingest":
        return IngestRun.from_jsonable(data)
    raise UnknownKind(f"run {data.get('run_id')!r}: unknown kind {kind!r}")
