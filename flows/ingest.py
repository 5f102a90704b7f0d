"""The `nightly` flow: every feed of one drop date into the warehouse, with a ledger entry.

Tasks are thin shells over `flows.ingest_steps`; they pass paths and counts, never big frames.
Only the I/O tasks (raw copies, publishing) retry: staging is deterministic, so retrying it
would fail the same way again.

A run holds its drop's lock (`warehouse.locks`) from its first raw copy to its ledger record.
A run that finds the drop taken — a backfill on the same day, say — waits for it (up to
`lock_timeout`, then fails) instead of failing at once: the other run is doing the same job, and
once it is done this one finds the inputs unchanged and skips in about a second.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from flows import ingest_steps as steps
from flows.config import Settings, load_settings
from flows.pii_key import resolve_pii_key
from flows.schedule import previous_drop_date
from transforms.columns import FEEDS
from warehouse import landing, ledger, locks, scratch
from warehouse.publish import recover
from warehouse.storage import prepare_root

LOCK_TIMEOUT_SECONDS = 3600.0  # a large bank's drop takes ~10 s; an hour means something hangs
STAGES = ("raw_copy", "stage", "publish")  # seconds recorded per feed (wall clock of each task)


@task(name="keep-raw", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def keep_raw_task(settings: Settings, feed: str, drop_date: date, files: list[str]) -> list[dict]:
    return steps.keep_raw_files(settings, feed, drop_date, files)


@task(name="stage-and-validate", cache_policy=NO_CACHE)
def stage_task(
    settings: Settings, feed: str, drop_date: date, files: list[str], run_id: str
) -> steps.FeedStaged:
    key = resolve_pii_key(settings)
    scratch_root = scratch.scratch_dir(settings.warehouse, run_id)
    result = steps.stage_feed(settings, key, feed, drop_date, files, scratch_root)
    logger = get_run_logger()
    for f in result.files:
        if f.status == "failed":
            logger.error("%s: %s", feed, f.message)
        for note in f.notes:
            logger.warning("%s/%s: %s", feed, f.name, note)
    return result


@task(name="publish", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def publish_task(settings: Settings, staged: steps.FeedStaged) -> list[dict]:
    return [p.to_jsonable() for p in steps.publish_feed(settings, staged)]


def _previous_feed_record(settings: Settings, feed: str, drop_date: date) -> dict | None:
    for run in ledger.list_runs(settings.warehouse):
        record = (run.get("feeds") or {}).get(feed)
        same_drop = run.get("drop_date") == drop_date.isoformat()
        usable = record is not None and record.get("status") in ("loaded", "unchanged")
        if run.get("status") == "completed" and same_drop and usable:
            return record
    return None


def _unchanged(
    settings: Settings, feed: str, drop_date: date, inputs: list[dict], fp: str
) -> dict | None:
    """The last completed record of this feed and drop, if this run would reproduce it exactly."""
    previous = _previous_feed_record(settings, feed, drop_date)
    if previous is None or previous.get("fingerprint") != fp:
        return None
    before = {i["name"]: i["sha256"] for i in previous.get("inputs", [])}
    if before != {i["name"]: i["sha256"] for i in inputs}:
        return None
    return previous if steps.partitions_intact(settings, feed, drop_date) else None


def _linked_folder(landing_root: Path, feed: str, drop_date: date) -> Path | None:
    """The feed's or the drop's folder if it is a symbolic link (never followed: it could lead
    out of the landing zone). `landing.list_drop` treats a linked drop folder as missing but
    follows a linked feed folder, and records neither; this makes both visible in the ledger.
    """
    root = landing_root.resolve()
    for folder in (root / feed, root / feed / drop_date.isoformat()):
        if folder.is_symlink():
            return folder
    return None


def _ingest_feed(
    settings: Settings, feed: str, drop_date: date, run_id: str, fp: str, force: bool
) -> dict[str, Any]:
    logger = get_run_logger()
    linked = _linked_folder(settings.landing, feed, drop_date)
    if linked is not None:
        logger.warning("%s: %s is a symbolic link; not followed, nothing read", feed, linked)
        return {
            "folder": str(linked),
            "fingerprint": fp,
            "skipped": [{"name": linked.name, "why": "symbolic link (not followed)"}],
            "status": "no_folder",
            "rows_in": 0,
            "loaded": 0,
            "quarantined": 0,
        }
    listing = landing.list_drop(settings.landing, feed, drop_date)
    record: dict[str, Any] = {"folder": str(listing.folder), "fingerprint": fp}
    record["skipped"] = [{"name": n, "why": w} for n, w in listing.skipped]
    if not listing.exists:
        logger.warning("%s: no folder for %s (%s)", feed, drop_date, listing.folder)
        return record | {"status": "no_folder", "rows_in": 0, "loaded": 0, "quarantined": 0}
    files = [str(p) for p in listing.files]
    clock = time.perf_counter()
    inputs = keep_raw_task(settings, feed, drop_date, files)
    seconds = {"raw_copy": _since(clock)}
    record["inputs"] = inputs
    previous = None if force else _unchanged(settings, feed, drop_date, inputs, fp)
    if previous is not None:
        logger.info("%s: inputs unchanged since the last run; nothing to do", feed)
        keep = ("files", "rows_in", "loaded", "quarantined", "outputs")
        reused = {k: previous[k] for k in keep}
        return record | reused | {"status": "unchanged", "seconds": seconds}
    if not files:
        logger.warning("%s: the folder for %s is empty", feed, drop_date)
    clock = time.perf_counter()
    staged = stage_task(settings, feed, drop_date, files, run_id)
    seconds["stage"] = _since(clock)  # read + stage + validate
    clock = time.perf_counter()
    outputs = publish_task(settings, staged)
    seconds["publish"] = _since(clock)
    file_records = [asdict(f) for f in staged.files]
    totals = {k: sum(f[k] for f in file_records) for k in ("rows_in", "loaded", "quarantined")}
    status = "loaded" if files else "empty"
    if files and all(f["status"] == "failed" for f in file_records):
        status = "unreadable"
    return record | {
        "status": status,
        "files": file_records,
        "outputs": outputs,
        "seconds": seconds,
        **totals,
    }


def _since(clock: float) -> float:
    return round(time.perf_counter() - clock, 3)


def _artifact(drop_date: date, feeds: dict[str, dict]) -> None:
    rows = [
        {
            "feed": feed,
            "status": r["status"],
            "files": len(r.get("files", [])),
            "failed_files": sum(f["status"] == "failed" for f in r.get("files", [])),
            "rows_in": r["rows_in"],
            "loaded": r["loaded"],
            "quarantined": r["quarantined"],
            **{f"seconds_{s}": r.get("seconds", {}).get(s, 0.0) for s in STAGES},
        }
        for feed, r in feeds.items()
    ]
    create_table_artifact(
        table=rows,
        key=f"ingest-{drop_date.isoformat()}",
        description=f"kesu ingest of drop {drop_date}: rows in = loaded + quarantined per feed, "
        "and the seconds each stage took",
    )


def _summarise(run: dict[str, Any]) -> None:
    """Run totals for the ledger: rows over feeds; stage seconds summed over feeds (which run
    side by side, so the sum can exceed the run's wall clock, `seconds.total`)."""
    feeds = run["feeds"].values()
    counts = ("rows_in", "loaded", "quarantined")
    run["totals"] = {k: sum(r.get(k, 0) for r in feeds) for k in counts}
    for stage in STAGES:
        run["seconds"][stage] = round(sum(r.get("seconds", {}).get(stage, 0.0) for r in feeds), 3)
    finished = datetime.now(UTC)
    run["finished_at"] = finished.isoformat()
    started = datetime.fromisoformat(run["started_at"])
    run["seconds"]["total"] = round((finished - started).total_seconds(), 3)


def _recover(root: Path | str, run_id: str) -> None:
    """Undo what crashed runs left, unless other runs are live (see `warehouse.locks`)."""
    logger = get_run_logger()
    for done in recover(root):
        logger.warning("recovered: %s", done)
    with locks.idle(root) as idle:
        if not idle:
            logger.debug("other runs are live: crash recovery is left to a run that starts alone")
            return
        for done in scratch.clear_stale(root, run_id):
            logger.warning("recovered: %s", done)


def _log_wait(root: Path | str, drop_date: date, timeout: float) -> None:
    """Name who holds the drop, from the ledger record a run writes once it has the lock."""
    holder = "another run"
    for run in ledger.list_runs(root):
        if run.get("drop_date") == drop_date.isoformat() and run.get("status") == "running":
            holder = f"run {run['run_id']} (pid {run.get('pid')} on {run.get('host')})"
            break
    get_run_logger().info(
        "drop %s is being ingested by %s; waiting up to %.0f s for it", drop_date, holder, timeout
    )


# type-ignore: Prefect 3.8's own annotations reject its ThreadPoolTaskRunner here
@flow(name="nightly", task_runner=ThreadPoolTaskRunner(max_workers=3))  # type: ignore[arg-type]
def nightly(
    drop_date: date | None = None,
    feeds: list[str] | None = None,
    landing_dir: str | None = None,
    warehouse_dir: str | None = None,
    config_file: str | None = None,
    force: bool = False,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """Ingest one drop date for all (or the named) feeds; returns the ledger record of the run.

    Without `drop_date`, the day before the run's scheduled start (China date): a scheduled run
    that starts late still ingests the day it was scheduled for.
    """
    logger = get_run_logger()
    if drop_date is None:
        drop_date = previous_drop_date(flow_run.scheduled_start_time)
        logger.info("no drop_date given: %s, the day before the scheduled start", drop_date)
    settings = load_settings(landing=landing_dir, warehouse=warehouse_dir, config=config_file)
    key = resolve_pii_key(settings)
    if key.is_demo:
        logger.warning("using the demo PII key from %s (created by `kesu sample`)", key.source)
    chosen = list(feeds or FEEDS)
    unknown = sorted(set(chosen) - set(FEEDS))
    if unknown:
        raise ValueError(f"unknown feed(s) {unknown}; choose from {', '.join(FEEDS)}")
    started = datetime.now(UTC)
    run_id = ledger.new_run_id(started)
    run: dict[str, Any] = {
        "run_id": run_id,
        "kind": "ingest",
        "drop_date": drop_date.isoformat(),
        "started_at": started.isoformat(),
        "status": "running",
        "kesu_version": steps.VERSION,
        "key_id": key.key_id,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "feeds": {},
        "seconds": {},
    }
    root = settings.warehouse
    prepare_root(root)
    _recover(root, run_id)

    waiting = partial(_log_wait, root, drop_date, lock_timeout)
    try:
        with (
            locks.live_run(root),
            locks.drop_lock(root, drop_date, timeout=lock_timeout, on_wait=waiting) as waited,
        ):
            run["seconds"]["lock_wait"] = waited
            ledger.record_run(root, run)  # "running": `kesu status` shows it, waiters name it
            try:
                fp = steps.fingerprint(settings, key)
                futures = {
                    feed: _ingest_feed_task.submit(settings, feed, drop_date, run_id, fp, force)
                    for feed in chosen
                }
                run["feeds"] = {feed: fut.result() for feed, fut in futures.items()}
                run["status"] = "completed"
            except BaseException as exc:
                run["status"], run["error"] = "failed", f"{type(exc).__name__}: {exc}"
                raise
            finally:
                _summarise(run)
                ledger.record_run(root, run)  # under the lock: the next run of the drop reads it
    except BaseException as exc:
        if run["status"] == "running":  # never got the drop: DropBusy, or stopped while waiting
            run["status"], run["error"] = "failed", f"{type(exc).__name__}: {exc}"
            _summarise(run)
            ledger.record_run(root, run)
        raise
    finally:
        scratch.clear(root, run_id)
    _artifact(drop_date, run["feeds"])
    return run


@task(name="ingest-feed", cache_policy=NO_CACHE)
def _ingest_feed_task(
    settings: Settings, feed: str, drop_date: date, run_id: str, fp: str, force: bool
) -> dict[str, Any]:
    return _ingest_feed(settings, feed, drop_date, run_id, fp, force)
