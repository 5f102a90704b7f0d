"""Which run may write what: flock(2) locks under ``<warehouse>/_kesu/``.

- ``_kesu/locks/drop_date=D.lock`` — exclusive, held by the run ingesting drop D for all of it
  (raw copies, staging, publishing, ledger record). Two runs of one drop take turns; runs of
  different drops proceed in parallel. A run that finds its drop taken waits (`drop_lock`).
- ``_kesu/lock`` — every run holds it *shared* while it is live (`live_run`). Crash recovery
  deletes publish work dirs, temp files and scratch folders, which look the same whether their
  owner crashed or is still busy, so it takes this lock *exclusively and without waiting*
  (`idle`): it runs only when no other run is live, and is otherwise left to a later run.
  `warehouse_lock` is the same exclusive lock, raising `WarehouseBusy` when a run is live
  (`kesu migrate`).

A flock belongs to an open file description, not to a process: two threads that each open the
file contend like two processes, and the kernel drops the lock when its holder dies. A lock
file a crash leaves behind is therefore stale but harmless; lock files are never deleted (an
unlink races with a process about to lock the old inode) and never written (empty: a re-run must
not change any file but its ledger record).

A report's folder has a lock of its own, `file_lock` (``<reports>/<kind>/.<period>.lock``,
`kesu.reports.output`): a report root is an operator's folder, not the warehouse, so that lock
file is there only while a run holds it. Its holder removes it before letting go, and a run that
locked a file just removed finds another file (or none) at its name and locks again.

flock needs a local filesystem: with an ``s3://`` root the lock files live in the warehouse's
local state directory (`kesu.warehouse.Warehouse.state`), so they serialise the runs of one
machine only, to save it doing a drop twice. Runs on several machines against one bucket need
no lock to stay correct: a drop's tables are replaced by Delta commits (a concurrent commit of
the same drop is detected and retried, then found unchanged), its raw copies are created only
if absent and its ledger pointer is replaced only if unchanged (conditional writes,
`kesu.warehouse.storage`), and run records have unique names. Two machines on one drop at once
may both do its work; its rows land once (tests/flows/test_two_machines_s3.py).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from kesu.warehouse import paths

if TYPE_CHECKING:
    from kesu.warehouse.warehouse import Warehouse

LOCKS = "_kesu/locks"
POLL_SECONDS = 0.2


class DropBusy(TimeoutError):
    """Another run kept the drop's lock longer than this run would wait."""


class WarehouseBusy(RuntimeError):
    """Another kesu run is live on the warehouse (`warehouse_lock`)."""


def _drop_key(drop_date: date) -> str:
    return f"{LOCKS}/{paths.partition_key(drop_date)}.lock"


def _open(wh: Warehouse, key: str) -> int:
    """Open (creating) the lock file `key`; `_kesu` and below are owner-only, as in storage."""
    store = wh.state
    store.root.mkdir(parents=True, exist_ok=True)
    parts = key.split("/")
    for depth in range(1, len(parts)):
        store.path("/".join(parts[:depth])).mkdir(mode=0o700, exist_ok=True)
    return os.open(store.path(key), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


def _try(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def drop_lock(
    wh: Warehouse,
    drop_date: date,
    *,
    timeout: float,
    on_wait: Callable[[], None] | None = None,
) -> Iterator[float]:
    """Hold drop D's lock; yields the seconds waited. Raises `DropBusy` after `timeout` seconds.

    Polls rather than blocks, so the wait has a limit and `on_wait` is called once (for a log
    line) when the lock is first found taken.
    """
    fd = _open(wh, _drop_key(drop_date))
    try:
        started = time.monotonic()
        if not _try(fd, fcntl.LOCK_EX):
            if on_wait is not None:
                on_wait()
            while not _try(fd, fcntl.LOCK_EX):
                if time.monotonic() - started >= timeout:
                    raise DropBusy(
                        f"drop {drop_date} is still being ingested by another run after "
                        f"{timeout:.0f} s ({_drop_key(drop_date)})"
                    )
                time.sleep(POLL_SECONDS)
        yield round(time.monotonic() - started, 3)
    finally:
        os.close(fd)


@contextmanager
def live_run(
    wh: Warehouse,
    *,
    timeout: float | None = None,
    on_wait: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Mark a run live for as long as it may create work dirs, temp files or scratch.

    Waits while a recovery or a `kesu maintain` of a retention under a day holds the warehouse
    (`idle`): `on_wait` is called once when it must (a line for the terminal: the wait can last
    as long as that maintain), and after `timeout` seconds (None: no limit) `WarehouseBusy`."""
    fd = _open(wh, paths.LOCK)
    try:
        if not _try(fd, fcntl.LOCK_SH):
            if on_wait is not None:
                on_wait()
            started = time.monotonic()
            while not _try(fd, fcntl.LOCK_SH):
                if timeout is not None and time.monotonic() - started >= timeout:
                    raise WarehouseBusy(
                        f"another kesu run still holds the whole warehouse after {timeout:.0f} s "
                        f"({wh.state.path(paths.LOCK)})"
                    )
                time.sleep(POLL_SECONDS)
        yield
    finally:
        os.close(fd)


@contextmanager
def idle(wh: Warehouse) -> Iterator[bool]:
    """Yields True, holding every live run off, if no run is live now; else False at once."""
    fd = _open(wh, paths.LOCK)
    try:
        yield _try(fd, fcntl.LOCK_EX)
    finally:
        os.close(fd)


@contextmanager
def warehouse_lock(wh: Warehouse) -> Iterator[None]:
    """Exclusive use of the warehouse: raises `WarehouseBusy` while any run is live (runs hold
    the same lock shared, `live_run`); runs that start meanwhile wait until it is released."""
    with idle(wh) as no_run_live:
        if not no_run_live:
            raise WarehouseBusy(f"another kesu run holds {wh.state.path(paths.LOCK)}")
        yield


def drop_is_locked(wh: Warehouse, drop_date: date) -> bool:
    """Whether a live run holds drop D now (probing takes the lock for an instant)."""
    path = wh.state.path(_drop_key(drop_date))
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        return not _try(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)


@contextmanager
def file_lock(path: Path) -> Iterator[bool]:
    """Yields True, holding the exclusive lock of the file `path` (made for it, removed before
    letting go), if no other run holds it; else False at once, holding nothing."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:  # a failed run just removed the empty folder: make it again
            path.parent.mkdir(parents=True, exist_ok=True)
            continue
        if not _try(fd, fcntl.LOCK_EX):
            os.close(fd)
            yield False
            return
        if _names(path, fd):
            break
        os.close(fd)
    try:
        yield True
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _names(path: Path, fd: int) -> bool:
    """Whether `path` is still the file open as `fd`."""
    try:
        found = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (found.st_dev, found.st_ino) == (held.st_dev, held.st_ino)
