"""Drops in worker processes (`kesu.flows.drop_processes`), real spawned ones, without Prefect:
the same ledger record as in this process, log lines here while the drop still runs, a drop's
error raised here, and a killed worker failing its drop alone."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import psutil
import pytest
from kesu.flows import drop_processes as drop_processes_module
from kesu.flows import interrupt
from kesu.flows.config import load_settings
from kesu.flows.drop import ingest_drop
from kesu.flows.drop_processes import WorkerDied, _formatted, drop_processes
from kesu.samplegen.generate import generate
from kesu.warehouse import Warehouse, locks

DAY = date(2025, 5, 1)


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, record.getMessage()))

    def waiting(self) -> int:
        return sum("waiting up to" in text for _, text in self.lines)


def logger(name: str) -> tuple[logging.Logger, Lines]:
    log, lines = logging.getLogger(f"test.drop_processes.{name}"), Lines()
    log.addHandler(lines)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    return log, lines


def counts(run) -> dict[str, tuple[str, int, int, int]]:
    return {f: (r.status, r.rows_in, r.loaded, r.quarantined) for f, r in run.feeds.items()}


@pytest.fixture
def landing(tmp_path) -> Path:
    root = tmp_path / "landing"
    generate(DAY, DAY, root, profile="small", seed=5, defects=True)
    return root


def wait_for(condition, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def waiting_setup(landing, tmp_path, monkeypatch, name: str):
    """(warehouse root, settings, logger, its lines) for a drop that will wait for its lock."""
    monkeypatch.setenv("KESU_PII_KEY", "drop-processes-key-0123456789abcdef")
    root = tmp_path / "wh"
    log, lines = logger(name)
    return root, load_settings(landing=str(landing), warehouse=str(root)), log, lines


def in_thread(call) -> tuple[threading.Thread, dict[str, object]]:
    """`call` started in a thread; its result or error lands in the dict."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["run"] = call()
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_a_drop_in_a_worker_process_is_the_drop_in_this_one(landing, tmp_path, monkeypatch):
    monkeypatch.setenv("KESU_PII_KEY", "drop-processes-key-0123456789abcdef")
    log_here, lines_here = logger("here")
    here = ingest_drop(
        load_settings(landing=str(landing), warehouse=str(tmp_path / "here")), DAY, log=log_here
    )
    settings = load_settings(landing=str(landing), warehouse=str(tmp_path / "there"))
    log, lines = logger("same")
    with drop_processes(2) as processes:
        there = processes.run(settings, DAY, None, False, log)
        assert processes.running() == {}  # nothing left in flight
        # the drop's lines, all of them here before `run` returned, as this process logs them
        assert sorted(lines.lines) == sorted(lines_here.lines)
        assert any(text.startswith("hotline: loaded, rows in") for _, text in lines.lines)
        with pytest.raises(ValueError, match=r"unknown feed\(s\) \['nonsense'\]"):
            processes.run(settings, DAY, ["nonsense"], False, log)  # raised in the worker
    assert there.pid != os.getpid() and there.status == "completed"
    assert counts(there) == counts(here)
    assert counts(there)["hotline"][0] == "loaded"


def test_a_killed_worker_fails_its_drop_alone_and_the_next_drop_runs(
    landing, tmp_path, monkeypatch
):
    root, settings, log, lines = waiting_setup(landing, tmp_path, monkeypatch, "killed")
    with drop_processes(1) as processes:
        with locks.drop_lock(Warehouse.at(root), DAY, timeout=0):  # the drop will wait for it
            waiting, outcome = in_thread(lambda: processes.run(settings, DAY, None, False, log))
            killed = set()
            for attempt in (1, 2):  # its worker dies, then the new one running it again
                wait_for(lambda n=attempt: lines.waiting() == n, f"no wait line ({attempt})")
                pid = processes.running()[DAY]  # told here while the drop still waits
                assert pid not in killed
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            waiting.join(60)
        assert isinstance(outcome.get("error"), WorkerDied), outcome
        assert f"drop {DAY} ended before the drop did, 2 times" in str(outcome["error"])
        assert any("running it again in a new one" in text for _, text in lines.lines)

        again = processes.run(settings, DAY, None, False, log)  # new workers, lock free
    assert again.status == "completed" and again.pid not in killed
    assert counts(again)["hotline"][0] == "loaded"


def test_a_drop_still_running_when_the_backfill_is_given_up_does_not_wait_for_lines(
    landing, tmp_path, monkeypatch
):
    """Given up (`close` without waiting, as on an error or Ctrl-C), the relay ends at once, so a
    drop still running in a worker has no one left to bring its last lines: its thread returns
    the drop's result as soon as the worker does, instead of waiting `LAST_LINES_SECONDS` for
    them (the backfill's task runner waits for that thread before the command can end)."""
    monkeypatch.setattr(drop_processes_module, "LAST_LINES_SECONDS", 120.0)
    root, settings, log, lines = waiting_setup(landing, tmp_path, monkeypatch, "given-up")
    with (
        locks.drop_lock(Warehouse.at(root), DAY, timeout=0),  # the drop will wait for it
        pytest.raises(KeyboardInterrupt),
        drop_processes(1) as processes,
    ):
        waiting, outcome = in_thread(lambda: processes.run(settings, DAY, None, False, log))
        wait_for(lambda: lines.waiting() == 1, "no wait line")
        raise KeyboardInterrupt  # the backfill stopped: `close(wait=False)`
    waiting.join(60)  # the worker, let go of the lock, finishes the drop
    assert not waiting.is_alive(), "the drop's thread still waits for lines no one relays"
    assert "error" not in outcome, outcome
    assert outcome["run"].status == "completed"


def test_a_worker_killed_holding_its_line_queue_does_not_stop_the_next_drops_lines(
    landing, tmp_path, monkeypatch
):
    """A worker killed while it wrote a line leaves its queue's lock taken for good. Taken here
    instead (the same state, at a moment the test chooses), it stops no line of the drop run
    again on the new workers, which get a queue of their own."""
    root, settings, log, lines = waiting_setup(landing, tmp_path, monkeypatch, "stuck")
    with drop_processes(1) as processes:
        with locks.drop_lock(Warehouse.at(root), DAY, timeout=0):  # the drop will wait for it
            waiting, outcome = in_thread(lambda: processes.run(settings, DAY, None, False, log))
            wait_for(lambda: lines.waiting() == 1, "no wait line")
            stuck = processes._current.lines
            assert stuck._wlock.acquire(timeout=10)  # as a writer killed mid-line leaves it
            os.kill(processes.running()[DAY], signal.SIGKILL)
            wait_for(lambda: lines.waiting() == 2, "no wait line from the new worker")
            assert processes._current.lines is not stuck
        waiting.join(60)
        assert not waiting.is_alive()
    assert "error" not in outcome, outcome
    run = outcome["run"]
    assert run.status == "completed" and counts(run)["hotline"][0] == "loaded"
    assert any(text.startswith("hotline: loaded, rows in") for _, text in lines.lines)


def test_a_line_its_arguments_do_not_fit_is_sent_without_them() -> None:
    assert _formatted("%s: %d rows", ("hotline", 3)) == "hotline: 3 rows"
    assert _formatted("%s: %d rows", ("hotline",)) == (
        "%s: %d rows (its 1 argument(s) did not fit the message)"
    )
    assert _formatted("100% done", ()) == "100% done"


UNGUARDED = """
import os
from datetime import date
from kesu.flows.config import load_settings
from kesu.flows.drop_processes import drop_processes
print("top level", os.getpid(), flush=True)
with drop_processes(2) as processes:
    run = processes.run(load_settings(landing={landing!r}, warehouse={warehouse!r}),
                        date(2025, 5, 1), None, False, __import__("logging").getLogger("x"))
print("status", run.status, run.pid != os.getpid(), flush=True)
"""


def test_a_script_without_a_main_guard_is_not_run_again_in_the_workers(landing, tmp_path):
    """Python's spawn runs the `__main__` script's top level again in each new process; the
    workers skip it, or this script would start itself again in each of them and they would die."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED.format(landing=str(landing), warehouse=str(tmp_path / "wh")))
    env = os.environ | {"KESU_PII_KEY": "drop-processes-key-0123456789abcdef"}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("top level") == 1
    assert "status completed True" in done.stdout


def test_a_stop_ends_the_running_drop_and_starts_none_without_running_it_again(
    landing, tmp_path, monkeypatch
):
    """Ctrl-C or SIGTERM during a backfill's drops (`kesu.flows.interrupt.between_drops`, here
    with a real SIGTERM to this process): the worker running a drop is ended, and that drop is
    not run again in a new worker, as a worker that died on its own would be; no other drop
    starts. The drop stopped mid-way is recovered by its next run, which completes."""
    monkeypatch.setattr(interrupt, "_installed", True)  # as `kesu backfill` has it (`install`)
    root, settings, log, lines = waiting_setup(landing, tmp_path, monkeypatch, "stopped")
    before = signal.getsignal(signal.SIGTERM)
    with drop_processes(1) as processes:
        with (
            locks.drop_lock(Warehouse.at(root), DAY, timeout=0),  # the drop will wait for it
            interrupt.between_drops(processes.stop),
        ):
            waiting, outcome = in_thread(lambda: processes.run(settings, DAY, None, False, log))
            wait_for(lambda: lines.waiting() == 1, "no wait line")
            pid, pool = processes.running()[DAY], processes._current.pool
            os.kill(os.getpid(), signal.SIGTERM)
            waiting.join(30)
            assert interrupt.requested() == signal.SIGTERM
            assert isinstance(outcome.get("error"), interrupt.NotStarted), outcome
            wait_for(lambda: not alive(pid), "the stopped drop's worker still runs", 10)
            assert processes._current.pool is pool  # no new workers were spawned for it
            assert not any("running it again" in text for _, text in lines.lines)
            with pytest.raises(interrupt.NotStarted):  # a drop asked for now does not start
                processes.run(settings, DAY + timedelta(days=1), None, False, log)
        assert signal.getsignal(signal.SIGTERM) is before  # Prefect's (here pytest's) again
    again = ingest_drop(settings, DAY, log=log)  # in this process: the stop asked is over
    assert again.status == "completed" and counts(again)["hotline"][0] == "loaded"


def alive(pid: int) -> bool:
    """Running (a zombie not yet reaped is dead)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


BACKFILL_PROCESS = """
import os, sys, threading, time
from kesu.flows.drop_processes import DropProcesses
made = []
def spawn():
    processes = DropProcesses(1)
    made.append((processes, processes._current.pool.submit(os.getpid).result()))
if sys.argv[1] == "main":
    spawn()
else:  # as a pool renewed by a drop's task thread, which ends before the backfill does
    thread = threading.Thread(target=spawn)
    thread.start()
    thread.join()
processes, worker = made[0]
processes._current.pool.submit(time.sleep, 120)  # as a drop: the worker is busy when killed
print(worker, flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("spawned_by", ["main", "thread"])
def test_the_workers_end_when_the_backfills_process_is_killed(spawned_by):
    """`kill -9` of a backfill's process while its worker runs a drop: the worker ends too, at
    once, instead of finishing that drop (and those queued for it) into the warehouse after the
    operator stopped the run. A thread that
    spawned workers (a drop's task thread renews them after a worker died) and ended does not
    end them."""
    parent = subprocess.Popen(
        [sys.executable, "-c", BACKFILL_PROCESS, spawned_by], stdout=subprocess.PIPE, text=True
    )
    worker = None
    try:
        worker = int(parent.stdout.readline())
        time.sleep(1.0)  # the spawning thread has ended ("thread"); the worker is in its call
        assert alive(worker), "the worker ended while its backfill's process still ran"
        parent.kill()
        parent.wait(10)
        wait_for(lambda: not alive(worker), "the worker outlived its backfill's process", 5)
    finally:
        parent.kill()
        parent.wait(10)
        if worker is not None and alive(worker):
            os.kill(worker, signal.SIGKILL)


def test_a_worker_ended_by_the_signal_before_the_backfill_saw_it_is_not_run_again(
    landing, tmp_path, monkeypatch
):
    """SIGTERM to the process group (systemd) reaches a drop's worker and the backfill at once:
    the worker may die of it before the backfill's main thread has run its handler. Its drop
    waits that moment out instead of running again in a new worker."""
    monkeypatch.setattr(interrupt, "_installed", True)  # as `kesu backfill` has it (`install`)
    root, settings, log, lines = waiting_setup(landing, tmp_path, monkeypatch, "raced")
    with drop_processes(1) as processes:
        with (
            locks.drop_lock(Warehouse.at(root), DAY, timeout=0),  # the drop will wait for it
            interrupt.between_drops(processes.stop),
        ):
            waiting, outcome = in_thread(lambda: processes.run(settings, DAY, None, False, log))
            wait_for(lambda: lines.waiting() == 1, "no wait line")
            os.kill(processes.running()[DAY], signal.SIGTERM)  # the worker's share, first
            time.sleep(0.3)  # the backfill's share comes later
            os.kill(os.getpid(), signal.SIGTERM)
            waiting.join(30)
        assert isinstance(outcome.get("error"), interrupt.NotStarted), outcome
        assert not any("running it again" in text for _, text in lines.lines), lines.lines
