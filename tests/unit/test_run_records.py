"""kesu.transforms.run_records: the ledger's records read back from their JSON, old and new."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from kesu.transforms.run_records import (
    BackfillRun,
    DropEntry,
    FeedRecord,
    FileOutcome,
    IngestRun,
    PublishedFile,
    PublishedPartition,
    RawInput,
    SkippedFile,
    run_from_jsonable,
)
from kesu.warehouse.ledger import to_jsonable

# An ingest record as the first release wrote it: no pid, host, totals or run seconds; a feed's
# seconds only for staging; a published file with a sha256, a partition without a version.
FIRST_RELEASE = {
    "run_id": "20251102T020000Z-1a2b3c",
    "kind": "ingest",
    "drop_date": "2025-11-01",
    "started_at": "2025-11-02T02:00:00.123456+00:00",
    "status": "completed",
    "kesu_version": "0.1.0",
    "key_id": "k-5f1e",
    "finished_at": "2025-11-02T02:00:09.5+00:00",
    "feeds": {
        "complaints": {
            "folder": "/srv/landing/complaints/2025-11-01",
            "fingerprint": "fp1",
            "skipped": [{"name": "notes.txt", "why": "not a csv, xlsx or xls file"}],
            "inputs": [{"name": "c.csv", "sha256": "ab", "bytes": 120}],
            "status": "loaded",
            "files": [
                {
                    "name": "c.csv", "sha256": "ab", "bytes": 120, "encoding": "utf-8",
                    "rows_in": 3, "loaded": 2, "quarantined": 1, "status": "ok",
                    "message": "", "rejected": [], "notes": [],
                }
            ],
            "outputs": [
                {
                    "table": "stg_complaints",
                    "partition": "drop_date=2025-11-01",
                    "files": [{"name": "part-0.parquet", "rows": 2, "sha256": "cd", "bytes": 900}],
                    "action": "created",
                }
            ],
            "seconds": {"stage": 0.4},
            "rows_in": 3, "loaded": 2, "quarantined": 1,
        },
        "hotline": {
            "folder": "/srv/landing/hotline/2025-11-01", "fingerprint": "fp1", "skipped": [],
            "status": "no_folder", "rows_in": 0, "loaded": 0, "quarantined": 0,
        },
    },
}  # fmt: skip


def test_a_first_release_record_reads_with_defaults_for_what_it_lacks():
    run = run_from_jsonable(FIRST_RELEASE)
    assert isinstance(run, IngestRun)
    assert run.drop_date == date(2025, 11, 1)
    assert run.started_at == datetime(2025, 11, 2, 2, 0, 0, 123456, tzinfo=UTC)
    assert run.finished_at == datetime(2025, 11, 2, 2, 0, 9, 500000, tzinfo=UTC)
    assert (run.pid, run.host, run.totals, run.seconds, run.error) == (None, "", {}, {}, None)
    assert run.covers == "2025-11-01"
    complaints = run.feeds["complaints"]
    assert complaints.inputs == [RawInput("c.csv", "ab", 120, already_present=False)]
    assert complaints.skipped == [SkippedFile("notes.txt", "not a csv, xlsx or xls file")]
    assert complaints.files == [
        FileOutcome("c.csv", "ab", 120, "utf-8", rows_in=3, loaded=2, quarantined=1)
    ]
    # the published file's sha256 is no field any more; a partition of then has no version
    assert complaints.outputs == [
        PublishedPartition(
            "stg_complaints", "drop_date=2025-11-01", [PublishedFile("part-0.parquet", 2, 900)],
            "created", None,
        )
    ]  # fmt: skip
    assert complaints.outputs[0].rows == 2
    assert complaints.seconds == {"stage": 0.4}
    assert complaints.input_sums() == {"c.csv": "ab"}
    assert run.feeds["hotline"] == FeedRecord(
        "no_folder", folder="/srv/landing/hotline/2025-11-01", fingerprint="fp1"
    )


def test_a_record_without_a_kind_is_an_ingest_and_an_unknown_kind_is_refused():
    untyped = {k: v for k, v in FIRST_RELEASE.items() if k != "kind"}
    assert isinstance(run_from_jsonable(untyped), IngestRun)
    with pytest.raises(ValueError, match="unknown kind 'report'"):
        run_from_jsonable(FIRST_RELEASE | {"kind": "report"})


def test_keys_a_later_version_adds_are_left_out():
    newer = FIRST_RELEASE | {"retries": 2}
    newer["feeds"] = {"hotline": FIRST_RELEASE["feeds"]["hotline"] | {"region": "上海市"}}
    run = IngestRun.from_jsonable(newer)
    assert run.feeds["hotline"].status == "no_folder"
    assert "retries" not in to_jsonable(run)


def test_an_ingest_record_of_today_is_written_and_read_back_unchanged():
    run = IngestRun(
        "20251102T020000Z-1a2b3c",
        date(2025, 11, 1),
        datetime(2025, 11, 2, 2, tzinfo=UTC),
        "failed",
        "0.2.0",
        "k-5f1e",
        4242,
        "etl-01",
        feeds={
            "complaints": FeedRecord(
                "unreadable",
                inputs=[RawInput("c.xlsx", "ab", 120, already_present=True)],
                files=[FileOutcome("c.xlsx", "ab", 120, status="failed", message="not a zip")],
                seconds={"raw_copy": 0.01, "stage": 0.2},
                error="no file could be read",
            )
        },
        seconds={"lock_wait": 0.0, "total": 1.5},
        totals={"rows_in": 0, "loaded": 0, "quarantined": 0},
        finished_at=datetime(2025, 11, 2, 2, 0, 1, 500000, tzinfo=UTC),
        error="DropBusy: waited 3600 s",
    )
    written = to_jsonable(run)
    assert written["drop_date"] == "2025-11-01" and written["kind"] == "ingest"
    assert written["feeds"]["complaints"]["inputs"] == [
        {"name": "c.xlsx", "sha256": "ab", "bytes": 120, "already_present": True}
    ]
    assert run_from_jsonable(written) == run


def test_a_backfill_record_is_written_and_read_back_unchanged():
    backfill = BackfillRun(
        "20251102T030000Z-4d5e6f",
        date(2025, 10, 1),
        date(2025, 10, 3),
        datetime(2025, 11, 2, 3, tzinfo=UTC),
        only_feeds=["hotline"],
        workers=2,
        status="failed",
        drops=[
            DropEntry(date(2025, 10, 1), "ingested", "20251102T030001Z-000001", 3, 2, 1, 0.8),
            DropEntry(date(2025, 10, 2), "failed", error="DropBusy: waited 3600 s"),
        ],
        summary={"ingested": 1, "failed": 1},
    )
    written = to_jsonable(backfill)
    assert (written["kind"], written["start"], written["end"]) == (
        "backfill", "2025-10-01", "2025-10-03",
    )  # fmt: skip
    assert written["drops"][1] == {
        "drop_date": "2025-10-02", "outcome": "failed", "run_id": None, "rows_in": None,
        "loaded": None, "quarantined": None, "seconds": None, "error": "DropBusy: waited 3600 s",
    }  # fmt: skip
    back = run_from_jsonable(written)
    assert back == backfill
    assert isinstance(back, BackfillRun) and back.covers == "2025-10-01..2025-10-03"
