"""Whole-folder replacement of `<reports>/<kind>/<period>/`.

A report is written into a hidden temp sibling (`.<period>.tmp-<id>`) and fsynced; then the live
folder is renamed aside (`.<period>.old-<id>`), the new one renamed in, and the old one deleted.
A reader sees the old report or the new one, never half of one; a crash between the two renames
leaves the report missing until the next run of the same report, which puts the aside folder
back first (and removes any leftover temp folder). The report root is not the warehouse: plain
renames in one local directory, no storage backend.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kesu.warehouse import locks

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


def recover(root: Path, kind: str, period: str) -> list[str]:
    """Undo what a crashed write of `<root>/<kind>/<period>` left behind."""
    folder, live = root / kind, root / kind / period
    names = sorted(os.listdir(folder)) if folder.is_dir() else []
    done = []
    asides = [n for n in names if n.startswith(f".{period}.old-")]
    if asides and not os.path.lexists(live):
        _rename(folder / asides[0], live)
        done.append(f"put back {kind}/{period}: a run crashed while replacing it")
        asides = asides[1:]
    leftovers = [n for n in names if n.startswith(f".{period}.tmp-")] + asides
    for name in leftovers:
        _delete_tree(folder / name)
        done.append(f"removed unfinished {kind}/{name}")
    return done


def _rename(src: Path, dst: Path) -> None:
    """Atomic within one directory, and durable before it returns."""
    os.rename(src, dst)
    _fsync_dir(dst.parent)


def _delete_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ReportBusy(RuntimeError):
    """Another run is writing the same report."""


@contextmanager
def _report_lock(folder: Path, period: str) -> Iterator[None]:
    """Per report, so recover() never deletes the work folder of a concurrent run. The lock
    file is there only while a run holds it, so a run that failed leaves nothing behind."""
    with locks.file_lock(folder / f".{period}.lock") as held:
        if not held:
            raise ReportBusy(f"another kesu run is writing {folder / period}")
        yield


@contextmanager
def replace_folder(root: Path, kind: str, period: str) -> Iterator[Path]:
    """Yield an empty work folder; on normal exit it becomes `<root>/<kind>/<period>`."""
    _check(kind, "kind")
    _check(period, "period")
    made = _missing(root / kind)
    (root / kind).mkdir(parents=True, exist_ok=True)
    try:
        with _report_lock(root / kind, period):
            yield from _replace(root.resolve(), kind, period)
    except BaseException:
        _remove_empty(made)  # a failed run leaves the output tree as it found it
        raise


def _missing(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, innermost first."""
    missing = []
    while not os.path.lexists(folder) and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove `folders` (innermost first) while they are empty: a concurrent run's report or lock
    file in one keeps it and its parents."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _replace(root: Path, kind: str, period: str) -> Iterator[Path]:
    recover(root, kind, period)
    token = uuid.uuid4().hex[:12]
    folder = root / kind
    work, live, aside = (
        folder / f".{period}.tmp-{token}",
        folder / period,
        folder / f".{period}.old-{token}",
    )
    work.mkdir()
    try:
        yield work
        _fsync_tree(work)
        if os.path.lexists(live):
            _rename(live, aside)  # the report is missing until the next line (recover undoes it)
            _rename(work, live)
            _delete_tree(aside)
        else:
            _rename(work, live)
    finally:
        _delete_tree(work)
