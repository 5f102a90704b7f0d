"""The `nightly` flow: every feed of one drop date into the warehouse, with a ledger entry.

A thin shell over `kesu.flows.drop.ingest_drop`, which does the work (locks, raw copies, staging,
publishing, the ledger record) without Prefect; the flow adds what Prefect is for: the schedule
(the drop date is derived from the run's *scheduled* start), logs in the run, and the
`ingest-<date>` table artifact. The backfill calls `ingest_drop` directly, one task per drop.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

from kesu.flows.assets import declare_ingest
from kesu.flows.config import load_settings
from kesu.flows.drop import LOCK_TIMEOUT_SECONDS, STAGES, ingest_drop
from kesu.flows.schedule import previous_drop_date
from kesu.transforms.run_records import FeedRecord, IngestRun
from kesu.warehouse.maintenance import refuse_unmigrated
from prefect import flow, get_run_logger
from prefect.artifacts import TableArtifact
from prefect.runtime import flow_run

__all__ = ["LOCK_TIMEOUT_SECONDS", "STAGES", "ingest_artifact", "nightly"]


def ingest_artifact(
    drop_date: date, feeds: dict[str, FeedRecord], task_run_id: UUID | None = None
) -> None:
    """The `ingest-<date>` table: per feed, rows in = loaded + quarantined and stage seconds;
    in the current run, or in the task run `task_run_id` of the current flow run."""
    rows = [
        {
            "feed": feed,
            "status": r.status,
            "files": len(r.files),
            "failed_files": len(r.failed_files),
            "rows_in": r.rows_in,
            "loaded": r.loaded,
            "quarantined": r.quarantined,
            **{f"seconds_{s}": r.seconds.get(s, 0.0) for s in STAGES},
        }
        for feed, r in feeds.items()
    ]
    TableArtifact(
        table=rows,
        key=f"ingest-{drop_date.isoformat()}",
        description=f"kesu ingest of drop {drop_date}: rows in = loaded + quarantined per feed, "
        "and the seconds each stage took",
        task_run_id=task_run_id,
    ).create(_sync=True)  # type: ignore[call-arg]  # sync-or-async: this is the sync one


@flow(name="nightly")
def nightly(
    drop_date: date | None = None,
    feeds: list[str] | None = None,
    landing_dir: str | None = None,
    warehouse_dir: str | None = None,
    config_file: str | None = None,
    force: bool = False,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
    watch: bool = False,
    reports_dir: str | None = None,
) -> IngestRun:
    """Ingest one drop date for all (or the named) feeds; returns the ledger record of the run.

    Without `drop_date`, the day before the run's scheduled start (China date): a scheduled run
    that starts late still ingests the day it was scheduled for. With `watch` (the served
    deployment), a completed run that could read every present feed then builds the watch list
    of that drop under `reports_dir` (kesu.flows.watch).
    """
    logger = get_run_logger()
    if drop_date is None:
        drop_date = previous_drop_date(flow_run.scheduled_start_time)
        logger.info("no drop_date given: %s, the day before the scheduled start", drop_date)
    settings = load_settings(landing=landing_dir, warehouse=warehouse_dir, config=config_file)
    refuse_unmigrated(settings.warehouse_store())  # served runs have no command's preflight
    run = ingest_drop(settings, drop_date, feeds, force, lock_timeout, logger)
    ingest_artifact(drop_date, run.feeds)
    declare_ingest(settings, run)
    readable = all(r.status != "unreadable" for r in run.feeds.values())
    landed = any(r.status != "no_folder" for r in run.feeds.values())
    if watch and not landed:  # the list after the last drop stands; an alert dated today would not
        logger.warning("no feed of drop %s has landed: no watch list is built for it", drop_date)
    if watch and run.status == "completed" and readable and landed:
        from kesu.flows.watch import watch_list

        watch_list(drop_date=drop_date, out=reports_dir, warehouse_dir=warehouse_dir,
                   config_file=config_file)  # fmt: skip
    return run
