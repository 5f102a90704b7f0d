"""`kesu serve`: kesu's Prefect deployments, served from one long-running process.

| deployment (flow/name)                   | when                                   |
|------------------------------------------|----------------------------------------|
| `nightly/kesu-nightly`                   | 02:00 Asia/Shanghai every day          |
| `quarterly-report/kesu-quarterly-report` | 06:00 Asia/Shanghai, 5 Jan/Apr/Jul/Oct |
| `monthly-report/kesu-monthly-report`     | 06:00 Asia/Shanghai on the 3rd         |
| `maintain/kesu-maintain`                 | 04:00 Asia/Shanghai every Sunday       |
| `backfill/kesu-backfill`                 | on demand: start, end, [workers, ...]  |
| `report/kesu-report`                     | on demand: kind, period, [as_of]       |

The scheduled four need no parameter: the previous day's drop, the quarter or month just ended,
`[warehouse] vacuum_days` of the configuration.
Each deployment is named `kesu-<flow>` so that the UI's deployment list tells them apart.

Scheduled runs derive their day or quarter from the time they were *scheduled* for
(`kesu.flows.schedule`), so a run that starts late still does the intended day. Each deployment
gets, of the locations `kesu serve` resolved (absolute paths), those its flow takes, as default
parameters visible and overridable per run (README, "Scheduled runs: `kesu serve`"): the
warehouse for all, the landing zone for nightly and backfill, the report root as `out` (as
`reports_dir` for nightly). The nightly deployment also builds the watch list after each
successful ingest (`watch=True`, under the resolved report root).
"""

from __future__ import annotations

import asyncio
import signal
from datetime import date
from typing import Any, cast

from kesu.flows.backfill import DEFAULT_WORKERS, backfill
from kesu.flows.config import load_settings
from kesu.flows.ingest import nightly
from kesu.flows.maintain import maintain
from kesu.flows.report import report
from kesu.flows.schedule import TIMEZONE, month_just_ended, quarter_just_ended
from prefect import flow
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.runner import Runner
from prefect.runtime import flow_run
from prefect.schedules import Cron, Schedule

DEPLOYMENT_PREFIX = "kesu-"  # deployment names: kesu-nightly, kesu-backfill, ...
NIGHTLY_CRON = "0 2 * * *"
QUARTERLY_CRON = "0 6 5 1,4,7,10 *"  # the 5th: the last drop of the quarter is in by then
MONTHLY_CRON = "0 6 3 * *"  # the 3rd: the 客户之声 bulletin of the month just ended
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


@flow(name="monthly-report")
def monthly_report(
    period: str | None = None,
    as_of: date | None = None,
    out: str | None = None,
    warehouse_dir: str | None = None,
    config_file: str | None = None,
) -> dict[str, Any]:
    """The monthly 客户之声 report of `period` (default: the month that ended before the run's
    scheduled start, China date), as of the latest drop unless `as_of` is given."""
    period = period or month_just_ended(flow_run.scheduled_start_time)
    return report(
        kind="monthly",
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
        "landing_dir": str(settings.landing),  # absolute, or an s3:// URL
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
    nightly_watch = {"watch": True, "reports_dir": where["out"]}  # the watch list after ingest
    return [
        _deployment(nightly, ingest | nightly_watch, Cron(NIGHTLY_CRON, timezone=TIMEZONE)),
        _deployment(backfill, ingest | {"workers": DEFAULT_WORKERS}),
        _deployment(report, reporting),
        _deployment(quarterly_report, reporting, Cron(QUARTERLY_CRON, timezone=TIMEZONE)),
        _deployment(monthly_report, reporting, Cron(MONTHLY_CRON, timezone=TIMEZONE)),
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
    "report": "`-p kind=quarterly -p period=2025Q3`, `-p kind=annual -p period=2025` or "
    "`-p kind=monthly -p period=2025-06`; "
    "`-p as_of=YYYY-MM-DD` optional (default: the latest drop).",
    "quarterly-report": "The quarter that ended before the scheduled start, as of the latest drop.",
    "monthly-report": "The 客户之声 report of the month that ended before the scheduled start, "
    "as of the latest drop.",
    "maintain": "Compaction, checkpoints and vacuum of the Delta tables; `-p vacuum_days=N` "
    "overrides [warehouse] vacuum_days.",
}


def _deployment(
    flow: Any, parameters: dict[str, Any], schedule: Schedule | None = None
) -> RunnerDeployment:
    made = flow.to_deployment(
        name=DEPLOYMENT_PREFIX + flow.name,
        schedules=[schedule] if schedule else [],
        parameters=parameters,
        description=DESCRIPTIONS[flow.name],
        # by module path: kesu is installed, so a run does not depend on the working directory
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    return cast(RunnerDeployment, made)  # sync here; Prefect types it sync-or-async


def serve_all(where: dict[str, str]) -> None:
    """Register the deployments and run their flow runs until interrupted (Ctrl-C or SIGTERM).

    Schedules stay active when this process stops (Prefect pauses them by default): runs that
    fall due while it is down — a reboot, a deploy — start late when it is back, and each still
    processes the day (or quarter) it was scheduled for.
    """
    runner = Runner(pause_on_shutdown=False)
    names = []
    for deployment in deployments(where):
        runner.add_deployment(deployment)
        names.append(f"{deployment.flow_name}/{deployment.name}")
    asyncio.run(_run_until_stopped(runner, names))
    print("stopped serving; the schedules stay active")


async def _run_until_stopped(runner: Runner, names: list[str]) -> None:
    """`runner.start()`, stopped by awaiting `runner.astop()` on Ctrl-C or SIGTERM.

    Prefect's own SIGTERM handler calls the sync `stop()` from inside the running event loop,
    where it dispatches to the coroutine `astop()` and drops it ("coroutine 'Runner.astop' was
    never awaited"); `prefect.serve` ends a Ctrl-C with the same warning's cousin, a traceback
    of cancelled tasks. Here the loop's own signal handlers schedule `astop()` properly.

    "serving …" is printed once those handlers are in place, so Ctrl-C after it always stops
    cleanly; a signal before the runner has started stops it as soon as it has.
    """
    loop = asyncio.get_running_loop()
    started = asyncio.ensure_future(runner.start())
    await asyncio.sleep(0)  # start() installs Prefect's SIGTERM handler first thing; replace it
    stopping: list[asyncio.Future[None]] = []

    async def stop_once_started() -> None:
        while not runner.started and not started.done():
            await asyncio.sleep(0.05)
        if runner.started:
            await runner.astop()

    def stop() -> None:
        if not stopping:
            stopping.append(asyncio.ensure_future(stop_once_started()))

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    for name in names:
        print(f"serving {name}", flush=True)
    try:
        await started
        await asyncio.gather(*stopping)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
