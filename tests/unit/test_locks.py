"""kesu.warehouse.locks: per-drop locks between real processes and threads, and recovery that leaves a
live run's work alone."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
from kesu.flows.errors import one_line
from kesu.reports import output
from kesu.warehouse import Warehouse, locks, paths
from kesu.warehouse.publish import recover

D1, D2 = date(2025, 7, 1), date(2025, 7, 2)

# A second process that takes a lock, says so, and holds it until its stdin closes.
HOLDER = """
import sys
from datetime import date
from pathlib import Path
from kesu.warehouse import Warehouse, locks
root, what = sys.argv[1], sys.argv[2]
held = (locks.live_run(Warehouse.at(root)) if what == "live"
        else locks.file_lock(Path(what)) if what.endswith(".lock")
        else locks.drop_lock(Warehouse.at(root), date.fromisoformat(what), timeout=0))
with held as got:
    assert got is not False
    print("held", flush=True)
    sys.stdin.read()
"""


@contextmanager
def held_by_another_process(root: Path, what: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root), what],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        release(proc)
        proc.wait(timeout=10)


def release(proc: subprocess.Popen[str]) -> None:
    if proc.stdin is not None and not proc.stdin.closed:
        proc.stdin.close()  # the holder reads to end of input, lets go and exits


def test_a_drop_held_elsewhere_makes_a_run_wait_then_proceed(tmp_path: Path) -> None:
    waits: list[str] = []
    with held_by_another_process(tmp_path, D1.isoformat()) as holder:
        # a run that cannot wait fails with DropBusy, naming the drop
        with (
            pytest.raises(locks.DropBusy, match="2025-07-01"),
            locks.drop_lock(Warehouse.at(tmp_path), D1, timeout=0.3),
        ):
            pass
        # another drop is not blocked at all
        with locks.drop_lock(Warehouse.at(tmp_path), D2, timeout=0) as waited:
            assert waited < 0.1
        threading.Timer(0.8, release, [holder]).start()
        # a patient run waits (saying so once) and gets the drop when the holder is done
        with locks.drop_lock(
            Warehouse.at(tmp_path), D1, timeout=30, on_wait=lambda: waits.append("w")
        ) as w:
            assert w >= 0.5
    assert waits == ["w"]


def test_a_killed_holder_leaves_a_stale_but_free_lock_file(tmp_path: Path) -> None:
    with held_by_another_process(tmp_path, D1.isoformat()) as holder:
        holder.kill()
        holder.wait(timeout=10)
    lock_file = tmp_path / locks.LOCKS / "drop_date=2025-07-01.lock"
    assert lock_file.is_file()  # stays: never deleted
    with locks.drop_lock(Warehouse.at(tmp_path), D1, timeout=0) as waited:  # the kernel released it
        assert waited < 0.1
    assert not locks.drop_is_locked(Warehouse.at(tmp_path), D1)


def test_threads_of_one_process_contend_like_processes(tmp_path: Path) -> None:
    # flock belongs to an open file: a backfill's threads exclude each other on the same drop
    outcome: list[str] = []

    def other_thread() -> None:
        try:
            with locks.drop_lock(Warehouse.at(tmp_path), D1, timeout=0.2):
                outcome.append("got it")
        except locks.DropBusy:
            outcome.append("busy")

    with locks.drop_lock(Warehouse.at(tmp_path), D1, timeout=0):
        assert locks.drop_is_locked(Warehouse.at(tmp_path), D1)
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
    assert outcome == ["busy"]


def test_recover_leaves_a_live_runs_work_alone(tmp_path: Path) -> None:
    work = tmp_path / paths.STAGING / "0123abcd"
    (work / "swap").mkdir(parents=True)
    (work / "swap" / "part-x.parquet").write_bytes(b"being written")
    temp = tmp_path / paths.TMP / "f00d"
    temp.parent.mkdir(parents=True)
    temp.write_bytes(b"half a raw copy")
    with held_by_another_process(tmp_path, "live"):
        with locks.idle(Warehouse.at(tmp_path)) as idle:
            assert not idle
        assert (
            recover(Warehouse.at(tmp_path)) == []
        )  # it cannot tell a live publish from a crashed one
        assert work.is_dir() and temp.is_file()
    with locks.idle(Warehouse.at(tmp_path)) as idle:
        assert idle
    done = recover(Warehouse.at(tmp_path))  # alone now: what the "crash" left goes
    assert any(paths.STAGING in line for line in done)  # a work dir of the pre-Delta layout
    assert not work.exists() and not temp.exists()


def test_live_runs_share_and_wait_only_for_a_recovery(tmp_path: Path) -> None:
    with held_by_another_process(tmp_path, "live"), locks.live_run(Warehouse.at(tmp_path)):
        pass  # two live runs at once: no waiting
    entered: list[float] = []

    def run_starting() -> None:
        with locks.live_run(Warehouse.at(tmp_path)):
            entered.append(time.monotonic())

    with locks.idle(Warehouse.at(tmp_path)) as idle:  # a recovery in progress
        assert idle
        t = threading.Thread(target=run_starting)
        t.start()
        time.sleep(0.5)
        assert entered == []  # the starting run waits for it
        released = time.monotonic()
    t.join(timeout=10)
    assert entered and entered[0] >= released


def test_a_run_held_off_by_the_whole_warehouse_says_so_and_gives_up_in_time(tmp_path: Path) -> None:
    # it waited in silence, and without a limit, behind a `kesu maintain --vacuum-days 0`
    wh, told = Warehouse.at(tmp_path), []
    with locks.idle(wh) as idle:
        assert idle
        with (
            pytest.raises(locks.WarehouseBusy, match="still holds the whole warehouse after 0 s"),
            locks.live_run(wh, timeout=0.3, on_wait=lambda: told.append("waiting")),
        ):
            pass
    assert told == ["waiting"]  # once, when it found the warehouse held
    with locks.live_run(wh, timeout=0.3, on_wait=lambda: told.append("again")):
        pass  # free: no wait, no line
    assert told == ["waiting"]


def test_a_report_another_process_writes_refuses_a_second_writer_at_once(tmp_path: Path) -> None:
    lock = tmp_path / "annual" / ".2025.lock"
    lock.parent.mkdir()
    with held_by_another_process(tmp_path, str(lock)):
        with locks.file_lock(lock) as held:
            assert not held
        with (
            pytest.raises(output.ReportBusy, match="another kesu run is writing .*annual/2025"),
            output.replace_folder(tmp_path, "annual", "2025"),
        ):
            pass
        assert lock.is_file()  # the holder's: the refused run leaves it alone
        with (
            pytest.raises(output.ReportBusy) as busy,
            output.replace_folder(tmp_path, "annual", "2025"),
        ):
            pass
        # told like the other busy runs: one line, exit 2 (try again later), not "failed: …"
        assert one_line(busy.value) == (f"another kesu run is writing {tmp_path}/annual/2025", 2)
    assert not lock.exists()  # its holder removed it when it let go
    with output.replace_folder(tmp_path, "annual", "2025") as work:
        (work / "a.txt").write_text("written")
    assert sorted(p.name for p in (tmp_path / "annual").iterdir()) == ["2025"]
