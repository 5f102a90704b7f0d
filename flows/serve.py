"""`kesu serve`: kesu's Prefect deployments, served from one long-running process.

| deployment              | when                                   | parameters                    |
|-------------------------|----------------------------------------|-------------------------------|
| `nightly/kesu`          | 02:00 Asia/Shanghai every day          | none: the previous day's drop |
| `quarterly-report/kesu` | 06:00 Asia/Shanghai, 5 Jan/Apr/Jul/Oct | none: the quarter just ended  |
| `backfill/kesu`         | on demand                              | start, end, [workers, force,  |
|                         |                                        | dask_address]                 |
| `report/kesu`           | on demand                              | kind, period, [as_of]         |
| `maintain/kesu`         | 04:00 Asia/Shanghai every Sunday       | none: [vacuum_days] of config |

Scheduled runs derive their day or quarter from the time they were *scheduled* for
(`kesu.flows.schedule`), so a run that starts late still does the intended day. Every deployment
gets the locations `kesu serve` resolved (absolute paths) as default parameters, visible and
overridable per run.
"""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from kesu.flows.backfill import DEFAULT_WORKERS, backfill
from kesu.flows.config import load_settings
from kesu.flows.ingest import nightly
from kesu.flows.maintain import maintain
from kesu.flows.report import report
from kesu.flows.schedule import TIMEZONE, quarter_just_ended
from prefect import flow, serve
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.runtime import flow_run
from prefect.schedules import Cron, Schedule

DEPLOYMENT = "kesu"
NIGHTLY_CRON = "0 2 * * *"
QUARTERLY_CRON = "0 6 5 1,4,7,10 *"  # the 5th: the last drop of the quarter is in by then
MAINTAIN_CRON = "0 4 * * 0"  # Sunday, between the nightly runs
MAINTAIN_LOCATIONS = ("warehouse_dir", "config_file")
INGEST_LOCATIONS = ("landing_dir", "warehouse_dir", "config_file")
REPORT_LOCATIONS = ("out", "warehouse_dir", "config_file")


@flow(name="quarterly-report")
def quarterly_report(
    period: str | None = None,
    as_of: date | None = None,
    out: str | None = None,
    warehouse_dir: str | None = None,
    config_file: str | None = None,
) -> dict[str, Any]:
    """The quarterly report of `period` (default: the quarter that ended before the run's
    scheduled start, China date), as of the latest drop unless `as_of` is given."""
    period = period or quarter_just_ended(flow_run.scheduled_start_time)
    return report(
        kind="quarterly",
        period=period,
        as_of=as_of,
        out=out,
        warehouse_dir=warehouse_dir,
        config_file=config_file,
    )


def locations(
    landing: str | None = None,
    warehouse: str | None = None,
    reports: str | None = None,
    config: str | None = None,
) -> dict[str, str]:
    """Flags > environment > defaults, resolved now to absolute paths: a served run must not
    depend on the working directory of whatever process executes it."""
    settings = load_settings(landing=landing, warehouse=warehouse, reports=reports, config=config)
    found = {
        "landing_dir": str(settings.landing.absolute()),
        "warehouse_dir": str(settings.warehouse),  # already absolute, or a URL
        "out": str(settings.reports.absolute()),
    }
    if settings.config_file is not None:
        found["config_file"] = str(settings.config_file.absolute())
    return found


def deployments(where: dict[str, str]) -> list[RunnerDeployment]:
    """The deployments, with `where` (from `locations`) as their location parameters."""
    ingest: dict[str, Any] = {k: v for k, v in where.items() if k in INGEST_LOCATIONS}
    reporting: dict[str, Any] = {k: v for k, v in where.items() if k in REPORT_LOCATIONS}
    return [
        _deployment(nightly, ingest, Cron(NIGHTLY_CRON, timezone=TIMEZONE)),
        _deployment(backfill, ingest | {"workers": DEFAULT_WORKERS}),
        _deployment(report, reporting),
        _deployment(quarterly_report, reporting, Cron(QUARTERLY_CRON, timezone=TIMEZONE)),
        _deployment(
            maintain,
            {k: v for k, v in where.items() if k in MAINTAIN_LOCATIONS},
            Cron(MAINTAIN_CRON, timezone=TIMEZONE),
        ),
    ]


DESCRIPTIONS = {
    "nightly": "Every feed of the previous day's drop (China date of the scheduled start); "
    "`-p drop_date=YYYY-MM-DD` for another day.",
    "backfill": "Every drop from `start` to `end`, `workers` at once, or on the Dask cluster "
    "at `-p dask_address=tcp://host:8786`; resumable (`-p force=true` redoes unchanged drops).",
    "report": "`-p kind=quarterly -p period=2025Q3` or `-p kind=annual -p period=2025`; "
    "`-p as_of=YYYY-MM-DD` optional (default: the latest drop).",
    "quarterly-report": "The quarter that ended before the scheduled start, as of the latest drop.",
    "maintain": "Compaction, checkpoints and vacuum of the Delta tables; `-p vacuum_days=N` "
    "overrides [warehouse] vacuum_days.",
}


def _deployment(
    flow: Any, parameters: dict[str, Any], schedule: Schedule | None = None
) -> RunnerDeployment:
    made = flow.to_deployment(
        name=DEPLOYMENT,
        schedules=[schedule] if schedule else [],
        parameters=parameters,
        description=DESCRIPTIONS[flow.name],
        # by module path: kesu is installed, so a run does not depend on the working directory
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    return cast(RunnerDeployment, made)  # sync here; Prefect types it sync-or-async


def serve_all(where: dict[str, str]) -> None:
    """Register the deployments and run their flow runs until interrupted.

    Schedules stay active when this process stops (Prefect pauses them by default): runs that
    fall due while it is down — a reboot, a deploy — start late when it is back, and each still
    processes the day (or quarter) it was scheduled for.
    """
    serve(*deployments(where), pause_on_shutdown=False)
