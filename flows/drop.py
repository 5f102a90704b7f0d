"""Ingest one drop date: every (or the named) feed into the warehouse, with its ledger record.

A plain function, free of Prefect, so that it costs what its steps cost wherever it runs: the
`nightly` flow wraps it, and the backfill runs it as one task per drop — in a thread, or in a
Dask worker process on another machine (`kesu.flows.backfill`). It resolves the PII key itself, from
the environment of the process it runs in: the secret is never a parameter, so it never reaches
Prefect's database.

A run holds its drop's lock (`kesu.warehouse.locks`) from its first raw copy to its ledger record.
A run that finds the drop taken — a backfill on the same day, say — waits for it (up to
`lock_timeout`, then fails) instead of failing at once: the other run is doing the same job, and
once it is done this one finds the inputs unchanged and skips in about a second. Whether the
inputs are unchanged is read from the drop's ledger pointer (`ledger.last_feed_record`), not from
a scan of every run, so a drop costs the same in a backfill of 7 days or of 900.

Feeds run side by side on threads: staging is mostly Polars, which releases the GIL.

Over 250 lines: a drop's run from its lock to its ledger record (unchanged inputs, each feed's
steps, retries, recovery of an interrupted run) is one sequence, read top to bottom.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, TypeVar

from kesu.flows import ingest_steps as steps
from kesu.flows import interrupt
from kesu.flows.config import Settings
from kesu.flows.pii_key import PiiKey, resolve_pii_key
from kesu.flows.staging_inputs import fingerprint
from kesu.transforms import file_names
from kesu.transforms.columns import FEEDS, check_feeds
from kesu.transforms.personal_data import mask_message
from kesu.transforms.run_records import FeedRecord, IngestRun, RawInput, SkippedFile
from kesu.transforms.run_summary import (  # seconds per feed: of each step
    COUNTS,
    STAGES,
    unreadable_why,
)
from kesu.warehouse import ledger, locks, scratch
from kesu.warehouse.landing_store import open_landing
from kesu.warehouse.publish import recover
from kesu.warehouse.warehouse import Warehouse

from kesu import version

LOCK_TIMEOUT_SECONDS = 3600.0  # a large bank's drop takes ~10 s; an hour means something hangs
REUSABLE = ("loaded", "unchanged")  # feed statuses whose record a later run may reproduce

Log = logging.Logger | logging.LoggerAdapter[Any]
T = TypeVar("T")


def ingest_drop(
    settings: Settings,
    drop_date: date,
    feeds: list[str] | None = None,
    force: bool = False,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
    log: Log | None = None,
) -> IngestRun:
    """Ingest `drop_date` for all (or the named) feeds; returns the run's ledger record."""
    log = log or logging.getLogger("kesu.drop")
    key = resolve_pii_key(settings)
    if key.is_demo:
        log.warning("using the demo PII key from %s (created by `kesu sample`)", key.source)
    chosen = check_feeds(feeds or FEEDS)
    started = datetime.now(UTC)
    run_id = ledger.new_run_id(started)
    run = IngestRun(
        run_id,
        drop_date,
        started,
        kesu_version=version(),
        key_id=key.key_id,
        pid=os.getpid(),
        host=socket.gethostname(),
    )
    wh = settings.warehouse_store()
    wh.prepare()
    _recover(wh, run_id, log)

    waiting = partial(_log_wait, wh, drop_date, lock_timeout, log)
    try:
        with (
            locks.live_run(wh, timeout=lock_timeout, on_wait=partial(_log_held, lock_timeout, log)),
            locks.drop_lock(wh, drop_date, timeout=lock_timeout, on_wait=waiting) as waited,
        ):
            run.seconds["lock_wait"] = waited
            ledger.record_run(wh, run)  # "running": `kesu status` shows it, waiters name it
            try:
                fp = fingerprint(settings, key)
                ingest = partial(_ingest_feed, settings, key, drop_date, fp, force, log, run_id)
                with ThreadPoolExecutor(max_workers=len(chosen), thread_name_prefix="feed") as pool:
                    records = list(pool.map(ingest, chosen))  # raises the first feed's error
                run.feeds = dict(zip(chosen, records, strict=True))
                for feed, r in run.feeds.items():  # in the drop's task log in Prefect
                    log.info(
                        "%s: %s, rows in %d = loaded %d + quarantined %d",
                        *(feed, r.status, r.rows_in, r.loaded, r.quarantined),
                    )
                run.status = "completed"
            except BaseException as exc:
                run.status, run.error = _ended_by(exc)
                raise
            finally:
                _summarise(run)
                ledger.record_run(wh, run)  # under the lock: the next run of the drop reads it
                if run.status == "completed":
                    ledger.point_drop_at(wh, run, REUSABLE)
    except BaseException as exc:
        if run.status == "running":  # never got the drop: DropBusy, or stopped while waiting
            run.status, run.error = _ended_by(exc)
            _summarise(run)
            ledger.record_run(wh, run)
        raise
    finally:
        scratch.clear(wh, run_id)
    return run


def _ended_by(exc: BaseException) -> tuple[str, str]:
    """The status and error of a run that `exc` ended: `interrupted` by a signal (Ctrl-C,
    SIGTERM), else `failed` with the error's name and (masked) text."""
    signum = interrupt.signal_of(exc)
    if signum is not None:
        return "interrupted", f"stopped by {interrupt.name(signum)}"
    return "failed", mask_message(f"{type(exc).__name__}: {exc}")


def _unchanged(
    settings: Settings, feed: str, drop_date: date, sums: dict[str, str], fp: str
) -> FeedRecord | None:
    """The last completed record of this feed and drop, if this run would reproduce it exactly
    (`sums`: this run's inputs' sha256 by path)."""
    previous = ledger.last_feed_record(settings.warehouse_store(), feed, drop_date, REUSABLE)
    if previous is None or previous.fingerprint != fp:
        return None
    if previous.input_sums() != file_names.input_names(sums):
        return None
    intact = steps.partitions_intact(settings, feed, drop_date, previous.outputs)
    return previous if intact else None


def _ingest_feed(
    settings: Settings,
    key: PiiKey,
    drop_date: date,
    fp: str,
    force: bool,
    log: Log,
    run_id: str,
    feed: str,
) -> FeedRecord:
    store = open_landing(settings.landing, settings.landing_options)
    linked = store.linked_folder(feed, drop_date)
    if linked is not None:
        log.warning("%s: %s is a symbolic link; not followed, nothing read", feed, linked)
        skipped = [SkippedFile(file_names.shown_name(linked.name), "symbolic link (not followed)")]
        return FeedRecord("no_folder", folder=str(linked), fingerprint=fp, skipped=skipped)
    listing = store.list_drop(feed, drop_date)
    skipped = [SkippedFile(file_names.shown_name(n), w) for n, w in listing.skipped]
    for entry in skipped:
        log.warning("%s: not read: %r (%s)", feed, entry.name, entry.why)
    found = partial(FeedRecord, folder=str(listing.folder), fingerprint=fp, skipped=skipped)
    if not listing.exists:
        log.warning("%s: no folder for %s (%s)", feed, drop_date, listing.folder)
        return found("no_folder")
    clock = time.perf_counter()
    # Read once: the raw copy, its checksum and staging all use these bytes. A file that cannot
    # be read (its permissions, removed since the listing) fails alone: it is left out of the
    # rest, and its outcome joins the others' in the feed's record.
    contents, unread = steps.read_files(store, [str(p) for p in listing.files])
    files = list(contents)
    for outcome in unread:
        log.error("%s: %s", feed, outcome.message)
    if unread and not files:
        why = "no file could be read"
        return _unreadable(found, feed, why, log, files=unread, seconds={"stage": _since(clock)})
    sums = steps.checksums(contents)
    reading, seconds = _since(clock), dict[str, float]()
    # The raw copy (a bank day's calls: write and fsync 57 MB, ~0.3 s) runs beside staging, on
    # its own copy of the dict, emptied once copied (staging lets go of each file's bytes as it
    # reads it); it is finished before anything is published or recorded, and a feed whose copy
    # fails has failed.
    owned = dict(contents)
    copy = partial(steps.keep_raw_files, settings, feed, drop_date, files, owned, sums)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"raw-{feed}") as copier:
        copying = copier.submit(_timed, partial(_retried, copy), owned.clear)
        kept = partial(_kept, copying, seconds)
        previous = None if force else _unchanged(settings, feed, drop_date, sums, fp)
        if previous is not None:
            log.info("%s: inputs unchanged since the last run; nothing to do", feed)
            return found(
                "unchanged",
                rows_in=previous.rows_in,
                loaded=previous.loaded,
                quarantined=previous.quarantined,
                inputs=kept(),
                files=previous.files,
                outputs=previous.outputs,
                seconds=seconds,
            )
        if not files and listing.skipped:
            why = "none of its files is of a type kesu reads"
            return _unreadable(found, feed, why, log, inputs=kept(), seconds=seconds)
        if not files:
            log.warning("%s: the folder for %s is empty", feed, drop_date)
        clock = time.perf_counter()
        # staged and published in this thread: the frames stay in memory (no scratch files)
        try:
            staged = steps.stage_feed(settings, key, feed, drop_date, files, None, contents, sums)
        except Exception as exc:  # the feed fails alone; its message may quote records: not shown
            why = f"staging failed ({type(exc).__name__})"
            return _unreadable(found, feed, why, log, inputs=kept(), seconds=seconds)
        _log_files(staged, log)
        staged.files.extend(unread)
        seconds["stage"] = round(reading + _since(clock), 3)  # read + stage + validate
        if files and all(f.status == "failed" and f.rows_in == 0 for f in staged.files):
            why = "no file could be read"
            return _unreadable(
                found, feed, why, log, inputs=kept(), seconds=seconds, files=staged.files
            )
        inputs = kept()
    clock = time.perf_counter()
    outputs = _retried(lambda: steps.publish_feed(settings, staged, run_id))
    seconds["publish"] = _since(clock)
    status = "loaded" if files else "empty"
    error = None
    if files and all(f.status == "failed" for f in staged.files):
        # every file failed but some rows were read (e.g. a required column missing): published,
        # so the drop's staged rows are gone and its rows held; the record says which files, why
        status = "unreadable"
        error = unreadable_why(FeedRecord(status, files=staged.files))
    return found(
        status,
        error=error,
        rows_in=sum(f.rows_in for f in staged.files),
        loaded=sum(f.loaded for f in staged.files),
        quarantined=sum(f.quarantined for f in staged.files),
        inputs=inputs,
        files=staged.files,
        outputs=outputs,
        seconds=seconds,
    )


def _timed(step: Callable[[], T], then: Callable[[], None]) -> tuple[T, float]:
    """`step`'s result and seconds; `then` runs after it, whatever happened."""
    clock = time.perf_counter()
    try:
        return step(), _since(clock)
    finally:
        then()


def _kept(
    copying: Future[tuple[list[RawInput], float]], seconds: dict[str, float]
) -> list[RawInput]:
    """The feed's inputs once their raw copies are kept (raises the copy's error)."""
    inputs, seconds["raw_copy"] = copying.result()
    return inputs


def _unreadable(
    found: Callable[..., FeedRecord], feed: str, why: str, log: Log, **record: Any
) -> FeedRecord:
    """A feed whose folder holds files but nothing kesu could read: it has failed (the command
    exits non-zero) and its live partitions are left as they were — nothing is published.
    `record`: the rest of its feed record (inputs, files, seconds)."""
    log.error("%s: %s; its partitions are left as they were", feed, why)
    return found("unreadable", error=why, **record)


def _retried(step: Callable[[], T], attempts: int = 3, delay: float = 2.0) -> T:
    """Only I/O steps retry (raw copies, publishing): staging is deterministic, so retrying it
    would fail the same way again."""
    for attempt in range(1, attempts + 1):
        try:
            return step()
        except OSError:
            if attempt == attempts:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")


def _log_files(staged: steps.FeedStaged, log: Log) -> None:
    for f in staged.files:
        if f.status == "failed":
            log.error("%s: %s", staged.feed, f.message)
        for note in f.notes:
            log.warning("%s/%s: %s", staged.feed, f.name, note)


def _since(clock: float) -> float:
    return round(time.perf_counter() - clock, 3)


def _summarise(run: IngestRun) -> None:
    """Run totals for the ledger: rows over feeds; stage seconds summed over feeds (which run
    side by side, so the sum can exceed the run's wall clock, `seconds.total`)."""
    feeds = run.feeds.values()
    run.totals = {k: sum(getattr(r, k) for r in feeds) for k in COUNTS}
    for stage in STAGES:
        run.seconds[stage] = round(sum(r.seconds.get(stage, 0.0) for r in feeds), 3)
    run.finished_at = datetime.now(UTC)
    run.seconds["total"] = round((run.finished_at - run.started_at).total_seconds(), 3)


def _recover(wh: Warehouse, run_id: str, log: Log) -> None:
    """Undo what crashed runs left, unless other runs are live (see `kesu.warehouse.locks`)."""
    for done in recover(wh):
        log.warning("recovered: %s", done)
    with locks.idle(wh) as idle:
        if not idle:
            log.debug("other runs are live: crash recovery is left to a run that starts alone")
            return
        for done in scratch.clear_stale(wh, run_id):
            log.warning("recovered: %s", done)


def _log_held(timeout: float, log: Log) -> None:
    log.warning(  # it printed nothing and waited without limit (an audit waited 27 s in silence)
        "another kesu run holds the whole warehouse (kesu maintain with a retention under a day, "
        "or a recovery); waiting up to %.0f s for it",
        timeout,
    )


def _log_wait(wh: Warehouse, drop_date: date, timeout: float, log: Log) -> None:
    """Name who holds the drop, from the ledger record a run writes once it has the lock."""
    holder = "another run"
    for run in ledger.list_runs(wh):
        if isinstance(run, IngestRun) and run.drop_date == drop_date and run.status == "running":
            holder = f"run {run.run_id} (pid {run.pid} on {run.host})"
            break
    log.warning(  # a warning: the terminal shows it (Prefect's INFO lines stay in its logs)
        "drop %s is being ingested by %s; waiting up to %.0f s for it", drop_date, holder, timeout
    )
