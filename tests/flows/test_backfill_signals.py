"""Stopping `kesu backfill` and `kesu ingest` as an operator does: Ctrl-C (SIGINT), SIGTERM (what
systemd sends, to the whole process group) and `kill -9`, each sent to a real `kesu` process
running real drops in its worker processes. The command ends with one line and 130 / 143, no
drop starts after the signal, none is run again, the ledger says `interrupted` with the drops
that completed, no worker outlives the command, and the next run converges on the warehouse
that uninterrupted runs make."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import psutil
import pytest
from kesu.flows.ingest import nightly
from kesu.samplegen.generate import generate
from kesu.warehouse import Warehouse, locks

pytestmark = pytest.mark.flow

START, END = date(2025, 6, 1), date(2025, 6, 6)
DAYS = [START + timedelta(days=i) for i in range((END - START).days + 1)]
KEY = "flow-test-key-0123456789abcdef"
KESU = Path(sys.executable).with_name("kesu")
# The signal reaches the backfill's main thread at its next bytecode: a drop's worker may write
# its first record within that instant. A drop started after it would be seconds late (the old
# retry of a drop whose worker the signal ended, or a drop run in the backfill's own process).
HANDLER_SLACK = timedelta(seconds=0.3)


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("landing")
    generate(START, END, root, profile="small", seed=11, defects=True)
    return root


@pytest.fixture(scope="module")
def reference(landing, tmp_path_factory) -> dict[str, list[tuple]]:
    """The tables' rows that one nightly run per day, uninterrupted, produces."""
    mp = pytest.MonkeyPatch()
    mp.setenv("KESU_PII_KEY", KEY)
    root = tmp_path_factory.mktemp("reference")
    for day in DAYS:
        nightly(drop_date=day, landing_dir=str(landing), warehouse_dir=str(root))
    mp.undo()
    return rows(root)


def rows(root: Path) -> dict[str, list[tuple]]:
    found = {}
    for log in sorted(root.glob("**/_delta_log")):
        table = pl.read_delta(str(log.parent))
        found[log.parent.relative_to(root).as_posix()] = table.sort(pl.all()).rows()
    return found


def kesu(*args: str, **popen: object) -> subprocess.Popen[str]:
    """`kesu <args>` as a process group of its own (as a service or a terminal's job)."""
    from prefect.settings import PREFECT_API_URL

    env = os.environ | {"KESU_PII_KEY": KEY, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    return subprocess.Popen(
        [str(KESU), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **popen,  # type: ignore[arg-type]
    )


def backfill_args(landing: Path, warehouse: Path) -> list[str]:
    return ["backfill", "--start", str(START), "--end", str(END), "--landing", str(landing),
            "--warehouse", str(warehouse), "--workers", "2"]  # fmt: skip


def records(warehouse: Path) -> list[dict]:
    found = []
    for path in sorted((warehouse / "_ledger" / "runs").glob("*.json")):
        try:
            found.append(json.loads(path.read_text()))
        except (json.JSONDecodeError, FileNotFoundError):  # being rewritten right now
            continue
    return found


def started_drops(process: subprocess.Popen[str], warehouse: Path, completed: int = 1) -> None:
    """Wait until `completed` drops completed, the backfill's record lists them (their results
    came back to it: a drop's own record is written a moment before), and another drop is
    running (in its worker)."""
    deadline = time.monotonic() + 60
    while True:
        every = records(warehouse)
        runs = [r for r in every if r["kind"] == "ingest"]
        done = sum(r["status"] == "completed" for r in runs)
        listed = max((len(r["drops"]) for r in every if r["kind"] == "backfill"), default=0)
        if min(done, listed) >= completed and any(r["status"] == "running" for r in runs):
            return
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no drop completed within 60 s"
        time.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def assert_all_ended(pids: list[int]) -> None:
    deadline = time.monotonic() + 5
    while left := [p for p in pids if alive(p)]:
        if time.monotonic() > deadline:
            for pid in left:
                os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"{len(left)} of the backfill's processes outlived it")
        time.sleep(0.05)


def stamp(text: str) -> datetime:
    return datetime.fromisoformat(text)


def converges(landing: Path, warehouse: Path, reference: dict[str, list[tuple]]) -> None:
    """The same command again: it completes every drop, and the tables are those of
    uninterrupted runs (what a drop stopped mid-way left is recovered)."""
    again = kesu(*backfill_args(landing, warehouse))
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    newest = {}
    for run in records(warehouse):  # oldest first: the newest of each day wins
        if run["kind"] == "ingest":
            newest[run["drop_date"]] = run["status"]
    assert newest == {str(d): "completed" for d in DAYS}
    assert rows(warehouse) == reference


@pytest.mark.parametrize(
    ("signum", "to_group"),
    [(signal.SIGTERM, True), (signal.SIGINT, False)],
    ids=["SIGTERM to the process group (systemd)", "SIGINT to the backfill only"],
)
def test_a_signal_stops_the_backfill_with_one_line_and_an_interrupted_record(
    signum, to_group, landing, reference, tmp_path
):
    warehouse = tmp_path / "warehouse"
    process = kesu(*backfill_args(landing, warehouse))
    family: list[int] = []
    try:
        started_drops(process, warehouse)
        family = [p.pid for p in psutil.Process(process.pid).children(recursive=True)]
        assert len(family) >= 2, "the drops did not run in worker processes"
        (os.killpg if to_group else os.kill)(process.pid, signum)
        signalled = datetime.now(UTC)
        out, err = process.communicate(timeout=60)
    finally:
        for pid in [process.pid, *family]:  # whatever the test left, never another's
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    name = signal.Signals(signum).name
    assert process.returncode == 128 + signum, err
    assert len(err.splitlines()) == 1, err  # one line: no traceback, no resource warning
    said = re.fullmatch(
        rf"kesu backfill: interrupted \({name}\) after (\d+) of {len(DAYS)} drops; completed "
        r"drops are kept, run the same command again to finish \(.*\)\n",
        err,
    )
    assert said, err
    assert_all_ended(family)

    runs = records(warehouse)
    (record,) = [r for r in runs if r["kind"] == "backfill"]
    assert record["status"] == "interrupted"
    assert record["error"] == f"interrupted ({name}) after {said[1]} of {len(DAYS)} drops"
    completed = {
        r["drop_date"] for r in runs if r["kind"] == "ingest" and r["status"] == "completed"
    }
    listed = {d["drop_date"]: d["outcome"] for d in record["drops"]}
    assert len(listed) == int(said[1]) >= 1
    # each drop it lists completed (one whose worker was stopped just after its ledger record
    # was written, before its result came back, may be missing from the list, never wrong)
    assert set(listed) <= completed and set(listed.values()) == {"ingested"}
    drops = [r for r in runs if r["kind"] == "ingest"]
    assert all(stamp(r["started_at"]) < signalled + HANDLER_SLACK for r in drops), drops
    assert len({r["drop_date"] for r in drops}) == len(drops), "a drop was run again"
    assert len(drops) < len(DAYS)  # it stopped
    if to_group:
        converges(landing, warehouse, reference)


def test_kill_9_of_the_backfill_ends_its_workers_and_the_next_run_converges(
    landing, reference, tmp_path
):
    warehouse = tmp_path / "warehouse"
    process = kesu(*backfill_args(landing, warehouse))
    family: list[int] = []
    try:
        started_drops(process, warehouse)
        family = [p.pid for p in psutil.Process(process.pid).children(recursive=True)]
        process.kill()  # the backfill's own pid only, as `kill -9 <pid>`
        process.wait(10)
        assert_all_ended(family)  # no worker goes on ingesting drops
    finally:
        for pid in [process.pid, *family]:  # whatever the test left, never another's
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        process.communicate(timeout=60)
    converges(landing, warehouse, reference)


def test_sigterm_stops_an_ingest_with_one_line_and_an_interrupted_record(landing, tmp_path):
    """`kesu ingest` stopped while its drop waits for the drop's lock (held here)."""
    warehouse = tmp_path / "warehouse"
    with locks.drop_lock(Warehouse.at(warehouse), START, timeout=0):
        process = kesu(
            "ingest", "--date", str(START), "--landing", str(landing),
            "--warehouse", str(warehouse),
        )  # fmt: skip
        try:
            assert process.stderr is not None
            for line in process.stderr:  # until it waits for the lock
                if "waiting up to" in line:
                    break
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 143, err
    assert err.splitlines() == [
        "kesu ingest: interrupted (SIGTERM); run the same command again to finish (what was "
        "stopped mid-way is recovered then)"
    ]
    (run,) = records(warehouse)
    assert (run["kind"], run["status"], run["error"]) == (
        "ingest",
        "interrupted",
        "stopped by SIGTERM",
    )
