"""kesu.transforms.run_summary: what `kesu status` and the backfill say about the ledger's runs."""

from __future__ import annotations

from datetime import UTC, date, datetime

from kesu.transforms.file_names import Since
from kesu.transforms.run_records import (
    BackfillRun,
    DropEntry,
    FeedRecord,
    FileOutcome,
    IngestRun,
    PublishedPartition,
    SkippedFile,
)
from kesu.transforms.run_summary import (
    backfill_summary,
    drop_entry,
    drop_outcome,
    drop_problems,
    problem_spans,
    run_rows,
    unreadable_detail,
)

FEEDS = ("hotline", "complaints")
STARTED = datetime(2025, 7, 10, 2, 0, tzinfo=UTC)


def feed(status: str, failed_files: int = 0, **kw) -> FeedRecord:
    files = [FileOutcome(f"bad{i}.csv", "", 0, status="failed") for i in range(failed_files)]
    return FeedRecord(status, rows_in=3, loaded=2, quarantined=1, files=files, **kw)


def ingest(
    run_id: str, day: str, status: str = "completed", error: str | None = None, **feeds
) -> IngestRun:
    return IngestRun(run_id, date.fromisoformat(day), STARTED, status, feeds=feeds, error=error)


def test_outcome_of_a_drop():
    assert drop_outcome(ingest("r", "2025-07-01", hotline=feed("loaded"))) == "ingested"
    # every present feed unchanged: skipped (a resumed backfill); a feed without folder is fine
    skipped = ingest("r", "2025-07-01", hotline=feed("unchanged"), complaints=feed("no_folder"))
    assert drop_outcome(skipped) == "skipped"
    assert drop_outcome(ingest("r", "2025-07-01", hotline=feed("no_folder"))) == "no_data"
    assert drop_outcome(ingest("r", "2025-07-01", "failed")) == "failed"


def test_backfill_summary_counts_outcomes_and_rows():
    drops = [
        drop_entry(date(2025, 7, 1), ingest("a", "2025-07-01", hotline=feed("loaded")), None),
        drop_entry(date(2025, 7, 2), ingest("b", "2025-07-02", hotline=feed("unchanged")), None),
        drop_entry(date(2025, 7, 3), None, "DropBusy: still locked"),
    ]
    assert drops[2] == DropEntry(date(2025, 7, 3), "failed", error="DropBusy: still locked")
    assert backfill_summary(drops) == {
        "ingested": 1, "skipped": 1, "no_data": 0, "failed": 1,
        "rows_in": 6, "loaded": 4, "quarantined": 2,
    }  # fmt: skip


def test_run_rows_show_rows_seconds_and_interrupted_runs():
    done = ingest(
        "r2", "2025-07-01", hotline=feed("loaded", seconds={"stage": 1.5, "publish": 0.25})
    )
    running = ingest("r1", "2025-07-02", "running")
    rows = run_rows([done, running], interrupted={"r1"})
    assert rows[0]["rows_in"] == 3 and rows[0]["note"] == "ingested"
    # an older record without run-level timings: summed from its feeds
    assert (rows[0]["seconds_stage"], rows[0]["seconds_publish"]) == (1.5, 0.25)
    assert rows[1]["status"] == "interrupted"  # recorded running, its process is gone
    backfill = BackfillRun(
        "r3",
        date(2025, 7, 1),
        date(2025, 7, 9),
        STARTED,
        status="completed",
        drops=[DropEntry(date(2025, 7, 1), "skipped", rows_in=5)],
    )
    (row,) = run_rows([backfill])
    assert (row["covers"], row["rows_in"], row["note"]) == (
        "2025-07-01..2025-07-09",
        5,
        "1 skipped",
    )


def test_problems_over_the_range_of_landing_and_ledger():
    runs = [  # newest first, as the ledger lists them
        ingest("r5", "2025-07-05", "failed", error="DropBusy: waited 3600 s"),
        ingest("r4", "2025-07-05", hotline=feed("loaded"), complaints=feed("loaded")),
        ingest("r3", "2025-07-03", hotline=feed("loaded", 1), complaints=feed("unreadable")),
        ingest("r1", "2025-07-01", hotline=feed("loaded"), complaints=feed("loaded")),
    ]  # fmt: skip
    landing = {
        "hotline": {date(2025, 7, d) for d in (1, 2, 3, 5, 6)},  # no 4 July: a missing drop
        "complaints": {date(2025, 7, d) for d in (1, 2, 3, 4, 5, 6)},
    }
    found = {(p["drop_date"], p["feed"]): p["problem"] for p in drop_problems(runs, landing, FEEDS)}
    assert found == {
        ("2025-07-02", "hotline"): "not ingested",  # files, never run
        ("2025-07-02", "complaints"): "not ingested",
        ("2025-07-03", "hotline"): "failed files",  # completed, one file failed
        ("2025-07-03", "complaints"): "unreadable",
        ("2025-07-04", "hotline"): "no drop",  # between the feed's first and last drop
        ("2025-07-04", "complaints"): "not ingested",
        ("2025-07-05", "hotline"): "failed",  # the last run failed, an earlier one completed
        ("2025-07-05", "complaints"): "failed",
        ("2025-07-06", "hotline"): "not ingested",
        ("2025-07-06", "complaints"): "not ingested",
    }  # 1 July: completed, nothing failed -> no row


def test_a_drop_whose_last_run_was_interrupted_needs_attention():
    # A re-run after a correction, killed before it published: the tables still hold the old
    # rows, and status said nothing about the drop.
    runs = [
        ingest("r2", "2025-07-01", "running"),
        ingest("r1", "2025-07-01", hotline=feed("loaded")),
    ]
    landing = {"hotline": {date(2025, 7, 1)}}
    assert drop_problems(runs, landing, ("hotline",)) == []  # r2 may be running now
    (problem,) = drop_problems(runs, landing, ("hotline",), interrupted={"r2"})
    assert (problem["problem"], problem["detail"]) == (
        "interrupted",
        "run r2 stopped while running (its process is gone); last completed run r1",
    )


def test_a_day_with_failed_files_still_names_the_files_not_read():
    record = feed("loaded", 1, skipped=[SkippedFile("备份.bak", "not a CSV or Excel file")])
    (problem,) = drop_problems([ingest("r1", "2025-07-01", hotline=record)], {}, FEEDS)
    assert problem["problem"] == "failed files"
    assert problem["detail"] == "bad0.csv; not read: '备份.bak' in run r1"


def test_files_landed_since_the_last_completed_run_are_said_beside_the_days_other_problem():
    runs = [
        ingest("r3", "2025-07-03", hotline=feed("loaded", 1)),
        ingest("r2", "2025-07-02", hotline=feed("unreadable", error="no file could be read")),
        ingest("r1", "2025-07-01", hotline=feed("loaded")),
    ]
    landing = {"hotline": {date(2025, 7, d) for d in (1, 2, 3)}}
    asked = []

    def landed_since(feed_name: str, day: date, record: FeedRecord) -> Since:
        asked.append((feed_name, day, record.status))
        return Since(["late.csv"] if day.day != 1 or record.status == "loaded" else [], [])

    problems = drop_problems(runs, landing, ("hotline",), landed_since=landed_since)
    assert [(p["drop_date"], p["problem"], p["detail"]) for p in problems] == [
        ("2025-07-01", "landed since", "late.csv: landed or changed after run r1; run the drop again"),
        ("2025-07-02", "unreadable", "no file could be read in run r2; nothing published: the drop keeps what an earlier run loaded; landed or changed since: late.csv"),
        ("2025-07-03", "failed files", "bad0.csv in run r3; landed or changed since: late.csv"),
    ]  # fmt: skip
    assert asked == [("hotline", date(2025, 7, d), s) for d, s in ((1, "loaded"), (2, "unreadable"), (3, "loaded"))]  # fmt: skip
    # a day the landing zone has no files for is not asked about
    assert drop_problems(runs, {"hotline": set()}, ("hotline",), landed_since=landed_since)
    assert len(asked) == 3


def test_problem_spans_join_consecutive_days_and_feeds():
    rows = [
        {"drop_date": d, "feed": f, "problem": "not ingested", "detail": "x"}
        for d in ("2025-07-01", "2025-07-02", "2025-07-04")
        for f in FEEDS
    ] + [{"drop_date": "2025-07-02", "feed": "hotline", "problem": "no drop", "detail": "y"}]
    assert [
        (s["first"], s["last"], s["feeds"], s["problem"]) for s in problem_spans(rows, FEEDS)
    ] == [
        ("2025-07-01", "2025-07-02", "all", "not ingested"),
        ("2025-07-02", "2025-07-02", "hotline", "no drop"),
        ("2025-07-04", "2025-07-04", "all", "not ingested"),
    ]


def test_files_removed_since_the_last_completed_run_are_named():
    """A file read by the last completed run and gone from the folder since: its rows are still
    in the tables, and status said "no missing or failed drops"."""
    runs = [
        ingest("r3", "2025-07-03", hotline=feed("loaded", 1)),
        ingest("r2", "2025-07-02", hotline=feed("loaded")),
        ingest("r1", "2025-07-01", hotline=feed("loaded")),
    ]
    landing = {"hotline": {date(2025, 7, d) for d in (1, 2, 3)}}
    changes = {
        1: Since([], ["old_139****5678~1a2b3c4d.csv", "x.csv"]),
        2: Since(["new.csv"], ["old.csv"]),
        3: Since([], ["old.csv"]),
    }
    problems = drop_problems(
        runs, landing, ("hotline",), landed_since=lambda _f, day, _r: changes[day.day]
    )
    assert [(p["drop_date"], p["problem"], p["detail"]) for p in problems] == [
        ("2025-07-01", "removed since", "old_139****5678~1a2b3c4d.csv, x.csv: removed from the folder after run r1; a re-run rebuilds the drop without it"),
        ("2025-07-02", "landed since", "new.csv: landed or changed after run r2; removed since: old.csv; run the drop again"),
        ("2025-07-03", "failed files", "bad0.csv in run r3; removed since: old.csv"),
    ]  # fmt: skip


def test_an_unreadable_feed_that_published_says_which_files_and_what_it_removed():
    # A file without a required column: read, every row held, its staged rows removed. Status
    # said "no file could be read", which was false on both counts.
    missing = FileOutcome(
        "hotline_20250803.csv", "", 0, rows_in=95, quarantined=95, status="failed",
        message="hotline_20250803.csv: required column(s) 来电时间 missing; none of its 95 rows "
        "was loaded, all are held in quarantine — re-export it with every column of feeds.md",
        rejected=["来电时间"],
    )  # fmt: skip
    published = [
        PublishedPartition("stg_hotline", "drop_date=2025-08-03", action="removed"),
        PublishedPartition("quarantine/hotline", "drop_date=2025-08-03", action="created"),
    ]
    record = FeedRecord(
        "unreadable", rows_in=95, quarantined=95, files=[missing], outputs=published
    )
    (problem,) = drop_problems([ingest("r1", "2025-08-03", hotline=record)], {}, ("hotline",))
    assert (problem["problem"], problem["detail"]) == (
        "unreadable",
        "hotline_20250803.csv: required column(s) 来电时间 missing in run r1; its staged rows "
        "removed (stg_hotline), 95 row(s) held in quarantine",
    )
    # nothing published (no file could be opened): the tables keep the earlier run's rows
    unopened = FeedRecord("unreadable", error="no file could be read")
    assert unreadable_detail(unopened) == (
        "no file could be read; nothing published: the drop keeps what an earlier run loaded"
    )


def test_a_feed_with_no_folder_on_the_newest_drop_day_is_flagged():
    # The morning check: hotline landed on 3 July, complaints did not. Status listed nothing,
    # since 3 July was not between two of complaints' days.
    runs = [ingest("r2", "2025-07-03", hotline=feed("loaded"), complaints=feed("no_folder"))]
    landing = {"hotline": {date(2025, 7, 2), date(2025, 7, 3)}, "complaints": {date(2025, 7, 2)}}
    found = drop_problems(runs, landing, FEEDS)
    assert [(p["drop_date"], p["feed"], p["problem"]) for p in found] == [
        ("2025-07-02", "hotline", "not ingested"),
        ("2025-07-02", "complaints", "not ingested"),
        ("2025-07-03", "complaints", "no drop"),
    ]
    assert "newest drop day" in found[-1]["detail"]
    # a fresh landing zone with hotline only: the run asked for complaints and found no folder
    first = {"hotline": {date(2025, 7, 3)}}
    assert [p["feed"] for p in drop_problems(runs, first, FEEDS)] == ["complaints"]
    # a feed no run asked for and that never landed: not one this warehouse takes
    only_hotline = [ingest("r2", "2025-07-03", hotline=feed("loaded"))]
    assert drop_problems(only_hotline, first, FEEDS) == []
    # no feed landed on the ledger's newest day: nothing to compare it with, no flag
    assert drop_problems(runs, {}, FEEDS) == []


def test_a_run_that_found_no_folder_does_not_hide_the_run_that_loaded_the_drop():
    # ingest; the folder moved aside; `--feeds hotline` found none; the folder back: the tables
    # hold r1's rows, and status said "not ingested" after r2
    runs = [
        ingest("r2", "2025-07-01", hotline=feed("no_folder")),
        ingest("r1", "2025-07-01", hotline=feed("loaded")),
    ]
    landing = {"hotline": {date(2025, 7, 1)}}
    assert drop_problems(runs, landing, ("hotline",)) == []
    # with no earlier run, the files are still not ingested
    assert drop_problems(runs[:1], landing, ("hotline",))[0]["problem"] == "not ingested"
