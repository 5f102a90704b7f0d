"""Whole-folder atomic replacement of `<reports>/<kind>/<period>/`.

A report is written into a hidden temp sibling (`.<period>.tmp-<id>`), fsynced, then swapped
with the live folder in one `renameat2(RENAME_EXCHANGE)` (warehouse.storage), so a reader or a
crash sees the old report or the new one, never half of one. Where the exchange is unsupported
the old folder is first renamed aside (`.<period>.old-<id>`); a crash between the two renames
is undone at the next run of the same report, which also removes any leftover temp folder.
"""

from __future__ import annotations

import fcntl
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kesu.warehouse.storage import Storage, storage_for

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def _check(segment: str, what: str) -> str:
    if not _SEGMENT.fullmatch(segment):
        raise ValueError(f"invalid report {what}: {segment!r}")
    return segment


def _fsync_tree(folder: Path) -> None:
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(dirpath, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def recover(store: Storage, kind: str, period: str) -> list[str]:
    """Undo what a crashed write of this report left behind."""
    live = f"{kind}/{period}"
    done = []
    asides = [n for n in store.list_dir(kind) if n.startswith(f".{period}.old-")]
    if asides and not store.exists(live):
        store.rename(f"{kind}/{asides[0]}", live)
        done.append(f"put back {live}: a run crashed while swapping it")
        asides = asides[1:]
    leftovers = [n for n in store.list_dir(kind) if n.startswith(f".{period}.tmp-")] + asides
    for name in leftovers:
        store.delete_tree(f"{kind}/{name}")
        done.append(f"removed unfinished {kind}/{name}")
    return done


class ReportBusy(RuntimeError):
    """Another run is writing the same report."""


@contextmanager
def _report_lock(folder: Path, period: str) -> Iterator[None]:
    """Per report, so recover() never deletes the work folder of a concurrent run."""
    fd = os.open(folder / f".{period}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ReportBusy(f"another kesu run is writing {folder / period}") from None
        yield
    finally:
        os.close(fd)


@contextmanager
def replace_folder(root: Path, kind: str, period: str) -> Iterator[Path]:
    """Yield an empty work folder; on normal exit it becomes `<root>/<kind>/<period>`."""
    _check(kind, "kind")
    _check(period, "period")
    (root / kind).mkdir(parents=True, exist_ok=True)
    with _report_lock(root / kind, period):
        yield from _replace(storage_for(root), kind, period)


def _replace(store: Storage, kind: str, period: str) -> Iterator[Path]:
    recover(store, kind, period)
    token = uuid.uuid4().hex[:12]
    work, live, aside = (
        f"{kind}/.{period}.tmp-{token}",
        f"{kind}/{period}",
        f"{kind}/.{period}.old-{token}",
    )
    store.path(work).mkdir(parents=True)
    try:
        yield store.path(work)
        _fsync_tree(store.path(work))
        if not store.exists(live):
            store.rename(work, live)
        elif store.exchange(work, live):
            store.delete_tree(work)  # now holds the previous report
        else:
            store.rename(live, aside)  # the report is missing until the next line
            store.rename(work, live)
            store.delete_tree(aside)
    finally:
        store.delete_tree(work)
