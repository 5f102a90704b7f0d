"""Drops in worker processes (`kesu.flows.drop_processes`), real spawned ones, without Prefect:
the same ledger record as in this process, log lines here while the drop still runs, a drop's
error raised here, and a killed worker failing its drop alone."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import date
from pathlib import Path

import pytest
from kesu.flows.config import load_settings
from kesu.flows.drop import ingest_drop
from kesu.flows.drop_processes import WorkerDied, drop_processes
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
    monkeypatch.setenv("KESU_PII_KEY", "drop-processes-key-0123456789abcdef")
    root = tmp_path / "wh"
    settings = load_settings(landing=str(landing), warehouse=str(root))
    log, lines = logger("killed")
    outcome: dict[str, object] = {}

    def run_it() -> None:
        try:
            outcome["run"] = processes.run(settings, DAY, None, False, log)
        except Exception as exc:
            outcome["error"] = exc

    with drop_processes(1) as processes:
        with locks.drop_lock(Warehouse.at(root), DAY, timeout=0):  # the drop will wait for it
            waiting = threading.Thread(target=run_it)
            waiting.start()
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
