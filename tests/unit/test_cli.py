"""The CLI's contract: fast help without heavy imports, clear argument errors, exit status."""

import subprocess
import sys
import time
from datetime import UTC, date, datetime

import pytest
from kesu.flows.cli import _exit_status, _summary_lines, build_parser
from kesu.transforms.run_records import FeedRecord, FileOutcome, IngestRun


def test_help_imports_nothing_heavy_and_is_fast():
    code = (
        "import sys, time; t = time.perf_counter()\n"
        "from kesu.flows.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('prefect', 'great_expectations', 'polars', 'pandas') if m in sys.modules]\n"
        "print(heavy, time.perf_counter() - t)"
    )
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, seconds = out.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    assert heavy == "[]"
    assert float(seconds) < 1.0 and time.perf_counter() - started < 5


@pytest.mark.parametrize(
    "argv",
    [
        ["ingest", "--date", "2025-13-01"],  # not a date
        ["ingest", "--date", "2025-01-01", "--feeds", "hotline,calls"],  # unknown feed
        ["backfill", "--start", "2025-01-01", "--end", "2025-01-02", "--feeds", " , "],  # none
        ["report", "weekly", "2025-06"],  # not a report kind (monthly is one since issue 15)
        ["watch", "--within", "-1"],  # not a number of days
        ["watch", "--date", "2025-06-31"],  # not a date
    ],
)
def test_bad_arguments_are_rejected_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def run(**feeds):
    return IngestRun("R1", date(2025, 1, 2), datetime(2025, 1, 3, 2, tzinfo=UTC), feeds=feeds)


def feed(status, rows_in=0, loaded=0, quarantined=0, files=()):
    return FeedRecord(
        status, rows_in=rows_in, loaded=loaded, quarantined=quarantined, files=list(files)
    )


def file(status):
    return FileOutcome("a.csv", "0" * 64, 100, status=status)


def test_exit_status_is_nonzero_only_when_a_present_feed_was_unreadable():
    # Quarantined rows, a failed file beside a good one, a missing folder: all reported, exit 0.
    ok = run(
        hotline=feed("loaded", 10, 9, 1),
        complaints=feed("loaded", 5, 5, 0, [file("failed"), file("ok")]),
        regulator_transfers=feed("no_folder"),
    )
    assert _exit_status([ok]) == 0
    assert _exit_status([ok, run(hotline=feed("unreadable", 0, 0, 0, [file("failed")]))]) == 1


def test_last_lines_state_the_accounting_per_feed():
    lines = _summary_lines(run(hotline=feed("loaded", 10, 9, 1)))
    assert lines == [
        "2025-01-02 hotline              loaded     rows in       10 = loaded        9 + quarantined      1"
    ]


def test_a_dask_backfill_without_a_prefect_server_stops_before_any_flow_runs(
    tmp_path, monkeypatch, capsys
):
    # Each Dask worker would otherwise start a temporary Prefect API of its own.
    from kesu.flows import cli
    from prefect.settings import PREFECT_API_URL, temporary_settings

    argv = ["backfill", "--start", "2025-07-01", "--end", "2025-07-02"]
    argv += ["--dask-address", "tcp://127.0.0.1:9", "--warehouse", str(tmp_path / "wh")]
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    # also when the flow tests' session harness (which sets one) runs in the same session
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert not PREFECT_API_URL.value()
        assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("kesu backfill: running drops on a Dask cluster needs a Prefect server")
    assert err.count("\n") == 1  # one line, no traceback
    assert not (tmp_path / "wh").exists()  # no flow ran: nothing was recovered or recorded


def test_a_backfill_drop_line_names_failed_files_and_odd_feeds():
    from kesu.flows.backfill import DropDone
    from kesu.flows.backfill_cli import drop_line

    # one of complaints' two files could not be read: `kesu ingest` said "1 file(s) failed",
    # the backfill's line said nothing
    done = run(
        hotline=feed("loaded", 90, 90, 0),
        complaints=feed("loaded", 4, 4, 0, [file("failed"), file("ok")]),
        regulator_transfers=feed("no_folder"),
    )
    line = drop_line(DropDone(date(2025, 1, 2), "ingested", done, None, 4, 4))
    assert line == (
        "[4/4] 2025-01-02 ingested: loaded 94, quarantined 0 "
        "(complaints 1 file(s) failed, regulator_transfers no_folder)"
    )
    clean = run(hotline=feed("loaded", 90, 90, 0))
    assert drop_line(DropDone(date(2025, 1, 2), "ingested", clean, None, 1, 4)) == (
        "[1/4] 2025-01-02 ingested: loaded 90, quarantined 0"
    )


def test_a_backfill_that_exits_1_says_why_on_its_last_lines():
    from kesu.flows.backfill_cli import unreadable_lines

    missing = FileOutcome("a.csv", "0" * 64, 100, rows_in=5, quarantined=5, status="failed")
    missing.rejected.append("来电时间")
    bad = run(hotline=FeedRecord("unreadable", quarantined=5, files=[missing]))
    assert unreadable_lines([run(hotline=feed("loaded", 1, 1)), bad]) == [
        "exit status 1: 1 feed(s) of a drop could not be read",
        "unreadable: 2025-01-02 hotline: a.csv: required column(s) 来电时间 missing; nothing "
        "published: the drop keeps what an earlier run loaded (run R1)",
    ]
    assert unreadable_lines([run(hotline=feed("loaded", 1, 1))]) == []


def test_a_date_in_form_but_not_in_the_calendar_is_said_to_be_no_real_date(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["backfill", "--start", "2025-02-30", "--end", "2025-03-01"])
    assert "'2025-02-30' is no real date: month 02 of 2025 has no day 30" in capsys.readouterr().err


def test_backfill_help_says_the_range_includes_both_ends_and_what_force_redoes(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["backfill", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--start START first drop date (YYYY-MM-DD), included" in text
    assert "--end END last drop date (YYYY-MM-DD), included" in text
    assert "--force stage and publish every drop again" in text
