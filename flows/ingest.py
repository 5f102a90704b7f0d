"""The `nightly` flow: every feed of one drop date into the warehouse, with a ledger entry.

Tasks are thin shells over `flows.ingest_steps`; they pass paths and counts, never big frames.
Only the I/O tasks (raw copies, publishing) retry: staging is deterministic, so retrying it
would fail the same way again.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from flows import ingest_steps as steps
from flows.config import Settings, load_settings
from flows.pii_key import resolve_pii_key
from transforms.columns import FEEDS
from warehouse import landing, ledger, scratch
from warehouse.publish import recover, warehouse_lock


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


def _ingest_feed(
    settings: Settings, feed: str, drop_date: date, run_id: str, fp: str, force: bool
) -> dict[str, Any]:
    logger = get_run_logger()
    listing = landing.list_drop(settings.landing, feed, drop_date)
    record: dict[str, Any] = {"folder": str(listing.folder), "fingerprint": fp}
    record["skipped"] = [{"name": n, "why": w} for n, w in listing.skipped]
    if not listing.exists:
        logger.warning("%s: no folder for %s (%s)", feed, drop_date, listing.folder)
        return record | {"status": "no_folder", "rows_in": 0, "loaded": 0, "quarantined": 0}
    files = [str(p) for p in listing.files]
    inputs = keep_raw_task(settings, feed, drop_date, files)
    record["inputs"] = inputs
    previous = None if force else _unchanged(settings, feed, drop_date, inputs, fp)
    if previous is not None:
        logger.info("%s: inputs unchanged since the last run; nothing to do", feed)
        keep = ("files", "rows_in", "loaded", "quarantined", "outputs")
        return record | {k: previous[k] for k in keep} | {"status": "unchanged"}
    if not files:
        logger.warning("%s: the folder for %s is empty", feed, drop_date)
    staged = stage_task(settings, feed, drop_date, files, run_id)
    outputs = publish_task(settings, staged)
    file_records = [asdict(f) for f in staged.files]
    totals = {k: sum(f[k] for f in file_records) for k in ("rows_in", "loaded", "quarantined")}
    status = "loaded" if files else "empty"
    if files and all(f["status"] == "failed" for f in file_records):
        status = "unreadable"
    return record | {
        "status": status,
        "files": file_records,
        "outputs": outputs,
        "seconds": {"stage": staged.seconds},
        **totals,
    }


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
        }
        for feed, r in feeds.items()
    ]
    create_table_artifact(
        table=rows,
        key=f"ingest-{drop_date.isoformat()}",
        description=f"kesu ingest of drop {drop_date}: rows in = loaded + quarantined per feed",
    )


@flow(name="nightly", task_runner=ThreadPoolTaskRunner(max_workers=3))
def nightly(
    drop_date: date,
    feeds: list[str] | None = None,
    landing_dir: str | None = None,
    warehouse_dir: str | None = None,
    config_file: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Ingest one drop date for all (or the named) feeds; returns the ledger record of the run."""
    settings = load_settings(landing=landing_dir, warehouse=warehouse_dir, config=config_file)
    key = resolve_pii_key(settings)
    logger = get_run_logger()
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
        "feeds": {},
    }
    settings.warehouse.mkdir(parents=True, exist_ok=True)
    with warehouse_lock(settings.warehouse):
        for done in recover(settings.warehouse) + scratch.clear_stale(settings.warehouse, run_id):
            logger.warning("recovered: %s", done)
        fp = steps.fingerprint(settings, key)
        try:
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
            run["finished_at"] = datetime.now(UTC).isoformat()
            ledger.record_run(settings.warehouse, run)
            scratch.clear(settings.warehouse, run_id)
    _artifact(drop_date, run["feeds"])
    return run


@task(name="ingest-feed", cache_policy=NO_CACHE)
def _ingest_feed_task(
    settings: Settings, feed: str, drop_date: date, run_id: str, fp: str, force: bool
) -> dict[str, Any]:
    return _ingest_feed(settings, feed, drop_date, run_id, fp, force)
