"""The backfill flow: parallel drops equal sequential runs, a re-run skips, progress is reported;
a nightly run and a backfill on overlapping days (two real processes) take turns on the drop."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID

import polars as pl
import pytest
from kesu.flows import backfill_cli, status_cli
from kesu.flows.backfill import backfill, progress_listener
from kesu.flows.ingest import nightly
from kesu.flows.schedule import previous_drop_date
from kesu.samplegen.generate import generate
from kesu.transforms.run_records import IngestRun
from kesu.warehouse import Warehouse, ledger, locks

START, END = date(2025, 5, 1), date(2025, 5, 3)
DAYS = [START + timedelta(days=i) for i in range((END - START).days + 1)]
KEY = "flow-test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("landing")
    generate(START, END, root, profile="small", seed=5, defects=True)
    return root


@pytest.fixture(scope="module")
def reference(landing, tmp_path_factory) -> Path:
    """The warehouse that one nightly run per day, one after the other, produces."""
    mp = pytest.MonkeyPatch()
    mp.setenv("KESU_PII_KEY", KEY)
    root = tmp_path_factory.mktemp("reference")
    for day in DAYS:
        nightly(drop_date=day, landing_dir=str(landing), warehouse_dir=str(root))
    mp.undo()
    return root


def published(root: Path) -> dict[str, tuple[int, list[tuple]]]:
    """Per Delta table, its number of commits and its rows, sorted: what runs in another order
    must agree on (the log files carry commit times and file ids, so not their bytes)."""
    found = {}
    for log in sorted(root.glob("**/_delta_log")):
        rows = pl.read_delta(str(log.parent))
        found[log.parent.relative_to(root).as_posix()] = (
            len(list(log.glob("*.json"))),
            rows.sort(pl.all()).rows(),
        )
    return found


def artifacts_of(flow_run_id: UUID) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    only = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=only)


def test_parallel_backfill_equals_sequential_runs_and_resumes(
    landing, reference, tmp_path, demo_key, capsys
):
    root = tmp_path / "warehouse"
    where = {"landing_dir": str(landing), "warehouse_dir": str(root)}
    events = []
    with progress_listener(events.append):
        state = backfill(start=START, end=END, workers=2, return_state=True, **where)
    runs = state.result()
    assert [r.drop_date for r in runs] == DAYS
    assert sorted(e.drop_date for e in events) == DAYS and {e.outcome for e in events} == {
        "ingested"
    }
    assert [e.done for e in events] == list(range(1, len(DAYS) + 1))
    assert published(root) == published(reference)  # same rows, same number of commits

    artifacts = {a.key: a for a in artifacts_of(state.state_details.flow_run_id)}
    assert artifacts["backfill-progress"].data == 100.0  # updated as drops finished
    assert [row["outcome"] for row in json.loads(artifacts["backfill-summary"].data)] == [
        "ingested"
    ] * len(DAYS)
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:  # each drop's table, in the drop's task run
        for day in DAYS:
            made = artifacts[f"ingest-{day.isoformat()}"]
            assert client.read_task_run(made.task_run_id).name == f"ingest-{day.isoformat()}"
            assert sum(row["rows_in"] for row in json.loads(made.data)) > 0

    record = next(r for r in ledger.list_runs(Warehouse.at(root)) if r.kind == "backfill")
    assert record.status == "completed" and record.workers == 2
    assert record.summary["ingested"] == len(DAYS)
    assert [d.run_id for d in record.drops] == [r.run_id for r in runs]
    for run in runs:  # each run's summary: rows and seconds per stage
        assert run.totals["rows_in"] == run.totals["loaded"] + run.totals["quarantined"]
        assert set(run.seconds) >= {"lock_wait", "raw_copy", "stage", "publish", "total"}
        hotline = run.feeds["hotline"]
        assert set(hotline.seconds) == {"raw_copy", "stage", "publish"}

    before = published(root)
    again = backfill(start=START, end=END, workers=2, **where)  # resumed: nothing left to do
    redone = {
        (run.drop_date, feed): r.status
        for run in again
        for feed, r in run.feeds.items()
        if r.status not in ("unchanged", "no_folder")
    }
    assert redone == {}
    latest = next(
        r for r in ledger.list_runs(Warehouse.at(root)) if r.kind == "backfill"
    )  # newest first
    assert latest.summary["skipped"] == len(DAYS) and latest.status == "completed"
    assert published(root) == before

    capsys.readouterr()
    status_cli.run(argparse.Namespace(last=20, landing=str(landing), warehouse=str(root)))
    out = capsys.readouterr().out
    assert "backfill" in out and f"{len(DAYS)} skipped" in out
    assert "no missing or failed drops" in out


def test_a_failed_drop_does_not_stop_the_others(tmp_path, monkeypatch, capsys, demo_key):
    # demo_key: the CLI checks the key before Prefect starts (issue 14)
    def ingest_failing_on_start(settings, drop_date: date, *_, **__) -> IngestRun:
        if drop_date == START:
            raise RuntimeError("disk full")
        feeds = {"hotline": {"status": "unchanged", "rows_in": 2, "loaded": 2, "quarantined": 0}}
        return IngestRun.from_jsonable(
            {"run_id": f"{drop_date:%Y%m%d}T020000Z-abcdef", "drop_date": str(drop_date),
             "started_at": f"{drop_date}T02:00:00+00:00", "status": "completed", "feeds": feeds}
        )  # fmt: skip

    monkeypatch.setattr("kesu.flows.backfill.ingest_drop", ingest_failing_on_start)
    # --threads: the stand-in above exists in this process only (worker processes: below, and
    # tests/unit/test_drop_processes.py)
    args = argparse.Namespace(
        start=START, end=END, feeds=None, force=False, workers=2, threads=True,
        landing=str(tmp_path), warehouse=str(tmp_path / "wh"), config=None,
    )  # fmt: skip
    assert backfill_cli.run(args) == 1  # the CLI: a line per drop, the summary, then exit 1
    captured = capsys.readouterr()
    assert f"{END} skipped: loaded 2, quarantined 0" in captured.out  # one line a drop
    assert "drops: 2 skipped, 1 failed" in captured.out
    assert f"total {'hotline':<20} rows in 4 = loaded 4 + quarantined 0" in captured.out
    assert f"1 of {len(DAYS)} drop(s) failed: {START} (RuntimeError: disk full)" in captured.err
    (record,) = ledger.list_runs(Warehouse.at(tmp_path / "wh"))
    summary = record.summary
    assert record.status == "failed" and (summary["skipped"], summary["failed"]) == (2, 1)


def test_a_backfill_over_a_landing_zone_with_no_feed_folder_warns(tmp_path, capsys, demo_key):
    """`--landing data` (the folder above the landing zone): every day had "no data", exit 0,
    and nothing said the path was wrong."""
    (tmp_path / "data" / "landing").mkdir(parents=True)
    args = argparse.Namespace(
        start=START, end=END, feeds=None, force=False, workers=2, threads=True,
        landing=str(tmp_path / "data"), warehouse=str(tmp_path / "wh"), config=None,
    )  # fmt: skip
    assert backfill_cli.run(args) == 0  # days without data are no error
    captured = capsys.readouterr()
    assert f"drops: {len(DAYS)} no data" in captured.out
    assert captured.err.strip().splitlines()[-1] == (
        f"warning: nothing landed for any day of {START}..{END} under {tmp_path / 'data'}: no "
        "folder of any feed (hotline, complaints, regulator_transfers) for those days. Is "
        "--landing right?"
    )


def test_nightly_without_a_date_takes_the_day_before_its_scheduled_start(tmp_path, demo_key):
    before = previous_drop_date(datetime.now(UTC))
    run = nightly(landing_dir=str(tmp_path / "empty"), warehouse_dir=str(tmp_path / "wh"))
    assert run.drop_date in (before, previous_drop_date(datetime.now(UTC)))


def test_nightly_gives_up_on_a_drop_held_too_long(tmp_path, demo_key):
    root = tmp_path / "wh"
    day = date(2024, 1, 1)
    with locks.drop_lock(Warehouse.at(root), day, timeout=0), pytest.raises(locks.DropBusy):
        nightly(drop_date=day, landing_dir=str(tmp_path), warehouse_dir=str(root), lock_timeout=0.5)
    (run,) = ledger.list_runs(Warehouse.at(root))
    assert run.status == "failed" and run.error.startswith("DropBusy")


def test_a_backfill_and_a_nightly_run_on_overlapping_days_in_two_processes(
    landing, reference, tmp_path
):
    """Both wait on the same drop; once free, one ingests it and the other finds it unchanged."""
    from prefect.settings import PREFECT_API_URL

    root = tmp_path / "warehouse"
    contested = DAYS[1]
    env = os.environ | {
        "KESU_PII_KEY": KEY,
        "PREFECT_API_URL": PREFECT_API_URL.value(),  # the session's test server: no startup
        "PREFECT_HOME": str(tmp_path / "prefect"),
    }
    where = ["--landing", str(landing), "--warehouse", str(root)]
    commands = {
        "backfill": ["backfill", "--start", str(START), "--end", str(END), *where],
        "ingest": ["ingest", "--date", str(contested), *where],
    }
    logs = {name: tmp_path / f"{name}.log" for name in commands}
    with locks.drop_lock(Warehouse.at(root), contested, timeout=0):  # both will find the drop taken
        procs = {
            name: subprocess.Popen(
                [sys.executable, "-m", "kesu.flows.cli", *argv],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=logs[name].open("w"),
            )
            for name, argv in commands.items()
        }
        deadline = time.monotonic() + 90
        while not all("waiting up to" in logs[n].read_text() for n in procs):
            assert all(p.poll() is None for p in procs.values()), {
                n: logs[n].read_text()[-2000:] for n in procs
            }
            assert time.monotonic() < deadline, "the runs never waited for the drop"
            time.sleep(0.2)
    exits = {n: p.wait(timeout=120) for n, p in procs.items()}
    assert exits == {"backfill": 0, "ingest": 0}, {n: logs[n].read_text()[-3000:] for n in logs}

    assert published(root) == published(reference)  # every partition as one sequential pass
    runs = ledger.list_runs(Warehouse.at(root))
    on_contested = [r for r in runs if isinstance(r, IngestRun) and r.drop_date == contested]
    assert [r.status for r in on_contested] == ["completed", "completed"]  # both recorded
    did = sorted(
        tuple(sorted({f.status for f in r.feeds.values()} - {"no_folder"})) for r in on_contested
    )
    assert did == [("loaded",), ("unchanged",)]  # one wrote it, the other skipped
    assert {r.kind for r in runs} == {"ingest", "backfill"}
    hotline = pl.read_delta(str(root / "stg_hotline")).filter(pl.col("drop_date") == contested)
    assert hotline["call_id"].is_unique().all()  # no duplicate rows
