"""A backfill's drops in worker processes of their own, each still a Prefect task of the backfill.

Two drops on two threads of one process share its GIL: the Python between Polars' calls (each
column's step of the staging plan, the checks, the ledger) and Prefect's client (its task engine,
events and logs, in the flow's threads) take turns with each other. In worker processes each drop
has a GIL of its own, and the Prefect task that stands for it waits here, in a thread, for its
result. Paired rounds of bank drops through the backfill flow (`bench/README.md`): the marginal
cost of a drop 0.88x over 28 days (twelve rounds, 0.75-1.01x) and ~0.97x over 90 (four rounds,
0.93-1.09x), for ~400 MB more memory at the peak (a second process's own kesu, Polars and
allocator pages). The workers are spawned once per backfill and
import kesu once; each drop is `kesu.flows.drop.ingest_drop`, free of Prefect, as on a Dask worker.

What a drop logs in its worker reaches the task's logger here as it is logged (a line waiting for
a drop's lock shows while it waits). A line travels as its text, formatted in the worker: the
arguments need not pickle, and kesu's lines never carry a raw value. The PII key is read in the
worker, from the environment it inherited, never sent.

A worker that dies mid-drop (killed, out of memory) takes the pool with it: Python's process pool
then ends every worker and fails every drop it held. Those drops run once more on new workers
(a drop interrupted is recovered by its next run, `kesu.flows.drop`); a drop whose worker dies
again fails alone with `WorkerDied`, and the backfill goes on. A worker ended because the
backfill was asked to stop (Ctrl-C, SIGTERM: `kesu.flows.interrupt`) is not replaced, and its
drop is not run again. The new workers get a line queue of their own: a worker killed while it
was writing a line to the old one left that queue's lock taken (or a line half written) for
good, and every later drop's first line would have waited on it forever.

Workers ignore Ctrl-C (the backfill decides, and ends them) and end with the backfill's process,
even when it is killed with `kill -9` (`_end_with`): none goes on writing to the warehouse.

Over 250 lines: the workers' side (a drop's lines sent as text) and this process's side (the
pool, its renewal after a death, the relay of lines) are one protocol over one queue.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date
from multiprocessing.connection import Connection
from typing import Any

from kesu.flows import interrupt
from kesu.flows.config import Settings
from kesu.flows.drop import Log, ingest_drop
from kesu.transforms.run_records import IngestRun

ATTEMPTS = 2  # a drop whose worker died runs once more on a new one
LAST_LINES_SECONDS = 10.0  # how long a finished drop's last lines may trail its result
IDLE_SECONDS = 0.25  # how often an idle relay looks whether its workers were replaced
SIGNAL_SECONDS = 1.0  # how long a drop whose worker died waits for a stop signal to be handled


class WorkerDied(RuntimeError):
    """The worker process running a drop ended before the drop did, twice."""


# --- in a worker process -------------------------------------------------------------------

_lines: Any = None  # where this worker's drops send their log lines (its generation's queue)


def _start_worker(lines: Any, parent_alive: Connection) -> None:
    """A worker's start: unpickling this function imported kesu (its allocator settings first,
    `kesu/__init__.py`) and `ingest_drop`, so the queue is left to keep, and the worker's tie
    to the backfill's process: it ignores Ctrl-C (the backfill decides, `kesu.flows.interrupt`)
    and ends when that process does (`_end_with`)."""
    global _lines
    _lines = lines
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(
        target=_end_with, args=(parent_alive,), name="kesu-parent-watch", daemon=True
    ).start()


def _end_with(parent_alive: Connection) -> None:
    """End this worker when the backfill's process ends, even by `kill -9`: a worker left behind
    would go on ingesting drops into the warehouse after the operator stopped the run. A drop it
    was running stops mid-way, which its next run recovers. The backfill's process holds the
    only writing end of this pipe and never writes: the read ends when the kernel closes that
    end, at once, however the process ended (no polling, nothing per drop)."""
    with suppress(EOFError, OSError):
        parent_alive.recv_bytes()
    os._exit(1)


class _Forwarded:
    """A drop's `Log` in a worker: each line goes to the backfill's process as text."""

    def __init__(self, token: str) -> None:
        self._token = token

    def log(self, level: int, msg: object, *args: object, **_: object) -> None:
        _lines.put((self._token, level, _formatted(msg, args)))

    def debug(self, msg: object, *args: object, **kw: object) -> None:
        self.log(logging.DEBUG, msg, *args, **kw)

    def info(self, msg: object, *args: object, **kw: object) -> None:
        self.log(logging.INFO, msg, *args, **kw)

    def warning(self, msg: object, *args: object, **kw: object) -> None:
        self.log(logging.WARNING, msg, *args, **kw)

    def error(self, msg: object, *args: object, **kw: object) -> None:
        self.log(logging.ERROR, msg, *args, **kw)

    exception = error


def _formatted(msg: object, args: tuple[object, ...]) -> str:
    """The line as `logging` would format it; a message its arguments do not fit is sent without
    them (as `logging` reports such a line and goes on, a drop must not fail on it)."""
    try:
        return str(msg) % args if args else str(msg)
    except (TypeError, ValueError):
        return f"{msg} (its {len(args)} argument(s) did not fit the message)"


def _ingest(
    token: str, settings: Settings, drop_date: date, feeds: list[str] | None, force: bool
) -> IngestRun:
    _lines.put((token, "pid", os.getpid()))
    try:
        return ingest_drop(settings, drop_date, feeds, force, log=_Forwarded(token))  # type: ignore[arg-type]
    except Exception as exc:
        raise _portable(exc) from None
    finally:
        _lines.put((token, None, ""))  # the drop's last line: run() waits for it


def _portable(exc: Exception) -> Exception:
    """`exc` if it survives pickling (most do), else a RuntimeError with its name and text."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


# --- in the backfill's process -------------------------------------------------------------


@dataclass
class _Drop:
    drop_date: date
    log: Log
    pid: int | None = None
    ended: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Generation:
    """Workers spawned together: their pool, the queue their drops' lines come by (a queue of
    their own: see the module's docstring) and the thread relaying those lines here."""

    pool: ProcessPoolExecutor
    lines: Any  # a multiprocessing Queue
    pipe: tuple[Connection, Connection]  # its workers end when the writing end closes
    retired: threading.Event = field(default_factory=threading.Event)
    relay: threading.Thread = field(init=False)


class DropProcesses:
    """`workers` spawned processes running drops; `run` is called from the backfill's threads."""

    def __init__(self, workers: int) -> None:
        self._context = multiprocessing.get_context("spawn")  # not fork: the flow has threads
        self._workers = workers
        self._drops: dict[str, _Drop] = {}
        self._lock = threading.Lock()
        self._current = self._new_generation()

    def _new_generation(self) -> _Generation:
        """Workers spawned now, without the caller's script: Python's pool spawns a worker at a
        `submit` that finds none idle, so one call per worker spawns them all (none is idle
        before it has imported kesu), and later submits spawn none."""
        lines = self._context.Queue()
        pipe = self._context.Pipe(duplex=False)  # (reading end, writing end)
        pool = ProcessPoolExecutor(
            self._workers,
            mp_context=self._context,
            initializer=_start_worker,
            initargs=(lines, pipe[0]),
        )
        with _without_main_script():
            for _ in range(self._workers):
                pool.submit(os.getpid)
        generation = _Generation(pool, lines, pipe)
        generation.relay = threading.Thread(
            target=self._relay_lines, args=(generation,), name="kesu-drop-lines", daemon=True
        )
        generation.relay.start()
        return generation

    def run(
        self,
        settings: Settings,
        drop_date: date,
        feeds: list[str] | None,
        force: bool,
        log: Log,
    ) -> IngestRun:
        """`ingest_drop` of `drop_date` in a worker; its lines go to `log` as they come."""
        for attempt in range(1, ATTEMPTS + 1):
            if interrupt.requested():
                raise interrupt.NotStarted(f"{drop_date}: the backfill was asked to stop")
            token = uuid.uuid4().hex
            drop = self._drops[token] = _Drop(drop_date, log)
            try:
                with self._lock:
                    pool = self._current.pool
                future = pool.submit(_ingest, token, settings, drop_date, feeds, force)
                try:
                    run = future.result()
                except BrokenProcessPool:
                    raise
                except BaseException:
                    if not future.cancelled():
                        drop.ended.wait(LAST_LINES_SECONDS)  # what it logged before it failed
                    raise
                drop.ended.wait(LAST_LINES_SECONDS)  # its last lines may trail its result
                return run
            except BrokenProcessPool:
                if interrupt.wait_requested(SIGNAL_SECONDS):  # by `stop` or the same signal
                    raise interrupt.NotStarted(
                        f"{drop_date}: stopped mid-way, the backfill was asked to stop"
                    ) from None
                self._renew(pool)
                if attempt == ATTEMPTS:
                    raise WorkerDied(
                        f"the worker process running drop {drop_date} ended before the drop "
                        f"did, {ATTEMPTS} times (killed, or out of memory?)"
                    ) from None
                log.warning(
                    "%s: the worker process running this drop ended before it did; "
                    "running it again in a new one",
                    drop_date,
                )
            finally:
                del self._drops[token]
        raise AssertionError("unreachable")

    def running(self) -> dict[date, int]:
        """{drop date: the pid of the worker running it}, for the drops started by now."""
        return {d.drop_date: d.pid for d in list(self._drops.values()) if d.pid is not None}

    def stop(self) -> None:
        """End every worker now (a signal handler's call, in the main thread): the drops they
        ran fail with BrokenProcessPool, and `run` starts no other while a stop is asked."""
        pool = self._current.pool  # no lock: the main thread may hold it, and this is a read
        processes = getattr(pool, "_processes", None) or {}  # Python's pool keeps them there
        for process in list(processes.values()):
            process.terminate()

    def _renew(self, broken: ProcessPoolExecutor) -> None:
        """New workers with a new line queue, in place of the broken pool's (once, whichever of
        its drops' threads gets here first)."""
        with self._lock:
            old = self._current
            if old.pool is broken:
                self._current = self._new_generation()
        broken.shutdown(wait=False)
        if old.pool is broken:
            old.retired.set()  # its relay ends once its queue is quiet; not waited for here

    def _relay_lines(self, generation: _Generation) -> None:
        """Relay one generation's lines until `close` says they are all in (None), or until it
        is retired and its queue has been quiet for `IDLE_SECONDS` (a queue a killed worker left
        locked stays quiet)."""
        while True:
            try:
                line = generation.lines.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                if generation.retired.is_set():
                    return
                continue
            if line is None:
                return
            token, level, text = line
            drop = self._drops.get(token)
            if drop is None:  # a drop given up on (its worker died): its late lines
                continue
            if level is None:
                drop.ended.set()
            elif level == "pid":
                drop.pid = text
            else:
                drop.log.log(level, "%s", text)

    def close(self, wait: bool = True) -> None:
        """End the workers (now, `wait=False`: drops not started are dropped) and the relay."""
        with self._lock:
            current = self._current
        current.pool.shutdown(wait=wait, cancel_futures=not wait)
        current.retired.set()
        # Waited for, the workers have ended and their lines are all in the queue (each flushes
        # it as it exits), so this comes last and ends the relay at once, not after a quiet
        # interval. Not waited for, a drop may still be running: its later lines are not relayed.
        current.lines.put(None)
        current.relay.join(LAST_LINES_SECONDS)
        for drop in list(self._drops.values()):  # so no drop's thread waits for lines to come
            drop.ended.set()


@contextmanager
def _without_main_script() -> Iterator[None]:
    """Workers spawned inside do not run the caller's script again. Python's spawn starts each
    new process by running the `__main__` module's top level again (as `__mp_main__`), so a
    script calling `backfill` without an `if __name__ == "__main__":` guard would start the
    backfill again in every worker, and its workers would die. A worker needs none of the
    script: it is sent only kesu's function and values of kesu's classes."""
    main = sys.modules["__main__"]
    spec, path = getattr(main, "__spec__", None), getattr(main, "__file__", None)
    main.__spec__ = None
    if path is not None:
        del main.__file__
    try:
        yield
    finally:
        main.__spec__ = spec
        if path is not None:
            main.__file__ = path


_active: list[DropProcesses] = []  # the backfills of this process that run drops in processes


@contextmanager
def drop_processes(workers: int) -> Iterator[DropProcesses]:
    """Worker processes for the drops of the backfill in this block (`current` finds them)."""
    processes = DropProcesses(workers)
    _active.append(processes)
    try:
        yield processes
    except BaseException:
        processes.close(wait=False)
        raise
    else:
        processes.close()
    finally:
        _active.remove(processes)


def current() -> DropProcesses | None:
    """The worker processes of the backfill running in this process, if it has them (a task run
    on a Dask worker, or of a backfill on threads, finds none)."""
    return _active[-1] if _active else None
