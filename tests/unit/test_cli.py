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
