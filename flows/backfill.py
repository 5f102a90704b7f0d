"""The `backfill` flow: the ingest of every drop date of a range, several drops at once.

Each drop is one `ingest-drop` task that calls `kesu.flows.drop.ingest_drop` — the same function the
`nightly` flow wraps, but without a subflow per drop, whose Prefect bookkeeping used to cost
more than a small bank's drop itself. Every drop keeps its own ledger record and `ingest-<date>`
artifact, and a drop whose inputs are unchanged since its last completed run is skipped in about
a second: a backfill that stopped half-way is resumed by running it again (`force` redoes every
drop). The tables the drops wrote are declared as Prefect assets by this flow, a minute's
drops at a time (`kesu.flows.assets`). `ingest_drop` holds the drop's lock, so a nightly run or
another backfill on an overlapping day waits for it instead of writing the same partitions at
the same time.

Where the drops run is chosen per run (so a deployment parameter can choose it too): `workers` at
once, each in a worker process of its own by default (`kesu.flows.drop_processes`: no GIL shared
with the other drop or with Prefect's client), on threads of this process with `threads` (less
memory), or on a Dask cluster (`dask_address`, through prefect-dask), one drop per Dask worker
thread. Each drop is a task of this flow wherever it runs. See `kesu.flows.cluster` for what Dask
workers need.

A failed drop does not stop the others; the flow fails at the end, naming the failed drops. The
backfill's own ledger record (kind "backfill") lists every drop's outcome — ingested, skipped,
no_data, failed — and is rewritten as drops finish; a Prefect progress artifact follows along,
and `progress_listener` lets the CLI draw its bar.

Over 250 lines: the flow and what it keeps of each drop as it finishes (its task, artifact,
progress and the backfill's ledger record) are one loop over the drops' futures.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from uuid import UUID

from kesu.flows import drop_processes, interrupt
from kesu.flows.assets import declare_ingest
from kesu.flows.cluster import task_runner
from kesu.flows.config import Settings, load_settings
from kesu.flows.drop import Log, ingest_drop
from kesu.flows.ingest import ingest_artifact
from kesu.transforms.personal_data import mask_message
from kesu.transforms.run_records import BackfillRun, IngestRun
from kesu.transforms.run_summary import backfill_summary, drop_entry
from kesu.warehouse import ledger, locks
from kesu.warehouse.maintenance import refuse_unmigrated
from kesu.warehouse.publish import recover
from kesu.warehouse.warehouse import Warehouse
from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed

DEFAULT_WORKERS = 2  # why: flows/backfill_cli.py (--workers help)
# An update of the progress artifact takes ~70 ms of the flow's thread on the ephemeral API,
# which is more than a skipped drop: every drop would wait for it. The ledger record, the log
# and the CLI's bar still follow every drop.
PROGRESS_EVERY_SECONDS = 2.0
# The tables the drops wrote are declared as Prefect assets in batches, by the flow: a
# materialization is a task run of its own, and one per drop cost ~0.1-0.2 of a bank drop's ~2
# CPU-s (its bookkeeping here and in the API server, whose share fell 0.18 -> 0.11 a drop) and
# held the drop's worker 0.05-0.2 s. The last batch when all drops are done.
ASSETS_EVERY_SECONDS = 60.0


class BackfillFailed(RuntimeError):
    """Some drops failed; the others were ingested (or skipped) and are in the ledger."""


@dataclass(frozen=True)
class DropDone:
    """One drop finished: what the CLI's progress display is told."""

    drop_date: date
    outcome: str  # ingested | skipped | no_data | failed
    run: IngestRun | None  # the drop's ledger record; None when it failed
    error: str | None
    done: int
    total: int


_listeners: list[Callable[[DropDone], None]] = []


@contextmanager
def progress_listener(callback: Callable[[DropDone], None]) -> Iterator[None]:
    """Call `callback` (in the flow thread) when a drop of a backfill in this process ends."""
    _listeners.append(callback)
    try:
        yield
    finally:
        _listeners.remove(callback)


def drop_dates(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


@task(name="ingest-drop", task_run_name="ingest-{drop_date}", cache_policy=NO_CACHE)
def ingest_drop_task(
    settings: Settings, drop_date: date, feeds: list[str] | None, force: bool
) -> IngestRun:
    """One drop, wherever the task runner puts it (in this flow's worker processes if it has
    them); the PII key is read there, never passed. Its `ingest-<date>` artifact is made by the
    flow (`_drop_artifact`)."""
    if interrupt.requested():  # the backfill is stopping: no drop starts, here or in a worker
        raise interrupt.NotStarted(f"{drop_date}: the backfill was asked to stop")
    log = get_run_logger()
    processes = drop_processes.current()
    if processes is not None:
        return processes.run(settings, drop_date, feeds, force, log)
    return ingest_drop(settings, drop_date, feeds, force, log=log)


@flow(name="backfill")
def backfill(
    start: date,
    end: date,
    feeds: list[str] | None = None,
    landing_dir: str | None = None,
    warehouse_dir: str | None = None,
    config_file: str | None = None,
    force: bool = False,
    workers: int = DEFAULT_WORKERS,
    dask_address: str | None = None,
    threads: bool = False,
) -> list[IngestRun]:
    """Ingest every drop date from `start` to `end` (inclusive); returns the drops' ledger
    records, oldest first. Raises `BackfillFailed` after the others finish if any drop failed.

    With `dask_address` (a Dask scheduler, `tcp://host:port`) the drops run on that cluster and
    `workers` is not used: the cluster's worker threads decide how many run at once. With
    `threads` the drops run on threads of this process, not in worker processes."""
    if end < start:
        raise ValueError(f"backfill: end {end} is before start {start}")
    if workers < 1:
        raise ValueError(f"backfill: workers must be at least 1, not {workers}")
    logger = get_run_logger()
    settings = load_settings(landing=landing_dir, warehouse=warehouse_dir, config=config_file)
    wh = settings.warehouse_store()
    refuse_unmigrated(wh)  # served runs have no command's preflight
    days = drop_dates(start, end)
    runs: dict[date, IngestRun] = {}
    for fixed in recover(wh):  # now, while no drop of this backfill is live yet
        logger.warning("recovered: %s", fixed)
    in_processes = dask_address is None and not threads and len(days) > 1
    workers_here = drop_processes.drop_processes(min(workers, len(days)))
    # The worker processes outlive the task runner's threads: a drop's task still running when
    # the flow leaves this block finds them, never runs its drop in this process instead. On a
    # Dask cluster a signal is not held for the drops: their tasks, on the cluster, would not
    # see it, so Ctrl-C and SIGTERM stop the flow where it is, as before.
    with (
        workers_here if in_processes else nullcontext() as processes,
        task_runner(workers, dask_address, settings) as runner,  # a bad address fails here, quickly
        locks.live_run(wh),  # this flow writes the ledger too: no drop's recovery may clean up
        nullcontext()
        if dask_address
        else interrupt.between_drops(processes.stop if processes else None),
    ):
        record = _record(start, end, feeds, force, workers, dask_address)
        ledger.record_run(wh, record)
        progress = create_progress_artifact(
            0.0, key="backfill-progress", description=f"kesu backfill {start}..{end}: drops done"
        )
        shown = declared = time.monotonic()
        undeclared: list[IngestRun] = []
        try:
            futures: dict[PrefectFuture[Any], date] = {
                runner.submit(ingest_drop_task, _parameters(settings, d, feeds, force)): d
                for d in days
            }
            for future in as_completed(list(futures)):
                day, error, run = futures[future], None, None
                try:
                    run = runs[day] = future.result()
                    undeclared.append(run)
                    _drop_artifact(day, run, future, logger)
                except interrupt.NotStarted:
                    continue  # not a drop's outcome: the next run of the backfill does it
                except Exception as exc:
                    error = mask_message(f"{type(exc).__name__}: {exc}")
                entry = drop_entry(day, run, error)
                record.drops.append(entry)
                done = len(record.drops)
                record.summary = backfill_summary(record.drops)
                ledger.record_run(wh, record)
                if done == len(days) or time.monotonic() - shown >= PROGRESS_EVERY_SECONDS:
                    percent = 100.0 * done / len(days)
                    update_progress_artifact(cast(UUID, progress), percent)  # sync-or-async
                    shown = time.monotonic()
                if done == len(days) or time.monotonic() - declared >= ASSETS_EVERY_SECONDS:
                    declare_ingest(settings, *undeclared)
                    undeclared, declared = [], time.monotonic()
                logger.info("backfill %d/%d: %s %s", done, len(days), day, entry.outcome)
                event = DropDone(day, entry.outcome, run, error, done, len(days))
                for listener in list(_listeners):
                    listener(event)
            failed = [d for d in record.drops if d.outcome == "failed"]
            record.status = "failed" if failed else "completed"
            stopped_by = interrupt.requested()
            if stopped_by and len(record.drops) < len(days):  # all done anyway: it completed
                record.status, record.error = "interrupted", _stopped(stopped_by, record, days)
                declare_ingest(settings, *undeclared)
                kept = "completed drops are kept, " if record.drops else ""
                again = _force_again(days, record) if force else interrupt.AGAIN
                raise interrupt.Interrupted(stopped_by, f"{record.error}; {kept}{again}")
        except BaseException as exc:
            if isinstance(exc, interrupt.Interrupted):
                raise
            signum = interrupt.signal_of(exc)
            if signum is not None:  # Ctrl-C, SIGTERM outside the drops' loop, a served run's
                record.status, record.error = "interrupted", _stopped(signum, record, days)
            else:
                error = mask_message(f"{type(exc).__name__}: {exc}")
                record.status, record.error = "failed", error
            raise
        finally:
            _finish(wh, record)
    if failed:
        names = "; ".join(f"{d.drop_date} ({d.error})" for d in failed)
        raise BackfillFailed(f"{len(failed)} of {len(days)} drop(s) failed: {names}")
    return [runs[d] for d in sorted(runs)]


def _stopped(signum: int, record: BackfillRun, days: list[date]) -> str:
    """The backfill's line when a signal stopped it: how many of its drops ended before."""
    done = len(record.drops)
    return f"interrupted ({interrupt.name(signum)}) after {done} of {len(days)} drops"


def _force_again(days: list[date], record: BackfillRun) -> str:
    """How to finish a `--force` backfill that was stopped: the same command would redo the
    drops that completed too, so name the days not done, as ranges to give it."""
    done = {d.drop_date for d in record.drops}
    ranges: list[list[date]] = []
    for day in sorted(set(days) - done):
        if ranges and (day - ranges[-1][-1]).days == 1:
            ranges[-1].append(day)
        else:
            ranges.append([day])
    shown = ", ".join(f"{r[0]}..{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in ranges)
    return (
        "run with --force again over the drops not done to finish (the same command would redo "
        f"those that completed): {shown}"
    )


def _drop_artifact(day: date, run: IngestRun, future: PrefectFuture[Any], log: Log) -> None:
    """The drop's `ingest-<date>` artifact, in its task run, made here in the flow's thread: the
    API's answer took ~20 ms, which the drop's worker spent waiting in the task (a worker that
    could start the next drop). A drop's data is in by now: an API error is logged, not raised."""
    try:
        ingest_artifact(day, run.feeds, task_run_id=future.task_run_id)
    except Exception as exc:
        log.warning("%s: the ingest-%s artifact was not made (%s)", day, day, type(exc).__name__)


def _parameters(
    settings: Settings, drop_date: date, feeds: list[str] | None, force: bool
) -> dict[str, Any]:
    """The drop task's parameters: locations and configuration as values (resolved here, so a
    worker elsewhere does not resolve them against its own working directory), never the key."""
    return {"settings": settings, "drop_date": drop_date, "feeds": feeds, "force": force}


def _record(
    start: date,
    end: date,
    feeds: list[str] | None,
    force: bool,
    workers: int,
    dask_address: str | None,
) -> BackfillRun:
    started = datetime.now(UTC)
    return BackfillRun(
        ledger.new_run_id(started),
        start,
        end,
        started,
        only_feeds=feeds,
        force=force,
        workers=None if dask_address else workers,
        dask_address=dask_address,
        pid=os.getpid(),
        host=socket.gethostname(),
        summary=backfill_summary([]),
    )


def _finish(wh: Warehouse, record: BackfillRun) -> None:
    record.finished_at = datetime.now(UTC)
    record.seconds = {"total": round((record.finished_at - record.started_at).total_seconds(), 3)}
    record.drops.sort(key=lambda d: d.drop_date)
    ledger.record_run(wh, record)
    summary = record.summary
    create_table_artifact(
        table=[ledger.to_jsonable(d) for d in record.drops],
        key="backfill-summary",
        description=f"kesu backfill {record.covers} ({record.status}): "
        f"{summary['ingested']} ingested, {summary['skipped']} skipped (inputs unchanged), "
        f"{summary['no_data']} without data, {summary['failed']} failed",
    )
