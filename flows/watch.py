"""The `watch` flow: what needs action the morning after drop D (`<reports>/watch/D/`).

Reads the warehouse through the report's own reader (flows.report.report_inputs), builds the
two tables with kesu.transforms.watch, writes them with kesu.reports.watch_output into a folder
that replaces the live one whole (reports.output), then tells people: a table artifact of what
is overdue or due within 2 days, and the event `kesu.watch.at-risk` (counts as payload) that a
Prefect automation can turn into a notification (README).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import polars as pl
from kesu.flows.config import Settings, load_settings
from kesu.flows.errors import writing
from kesu.flows.report import report_inputs
from kesu.reports import manifest, output, watch_output
from kesu.transforms import complaint_model, watch
from kesu.transforms import report_complaints as rc
from kesu.transforms import report_transfers as rt
from kesu.transforms.columns import STAGED_TABLE
from kesu.transforms.periods import Period
from kesu.transforms.reporting import ReportConfig
from kesu.transforms.run_records import PartitionRead
from kesu.warehouse.reader import latest_drop
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

KIND = "watch"
EVENT = "kesu.watch.at-risk"


def build_watch(
    settings: Settings, drop: date, within: int
) -> tuple[dict[str, pl.DataFrame], int, list[PartitionRead]]:
    """`due_soon` and `volume_alerts` as at the end of drop D, how many complaints landed only
    in quarantine (`watch.never_loaded`: not listed), and the partitions read."""
    config = ReportConfig.from_settings(settings.values)
    inputs, partitions, _reference = report_inputs(settings, Period.month(drop.year, drop.month),
                                                   drop)  # fmt: skip
    model = complaint_model.build(inputs.complaints, inputs.transfers, drop, config.implicit_merge)
    branches = rt.reference_branches(inputs.branches)
    categories = rc.reference_codes(inputs.codes).filter(pl.col("axis") == "B")
    first_drop = min(
        (p.drop_date for p in partitions if p.table == STAGED_TABLE["complaints"]),
        default=drop,
    )
    rules = settings.values["watch"]
    tables = {
        "due_soon": watch.due_soon(model, branches, categories, drop, within, config,
                                   inputs.held),
        "volume_alerts": watch.volume_alerts(
            model.groups, branches, categories, drop, first_drop,
            float(rules["alert_score"]), int(rules["alert_min_count"]),
        ),
    }  # fmt: skip
    unlisted = watch.never_loaded(model, inputs.held, drop)
    return tables, unlisted, [p for p in partitions if p.table != STAGED_TABLE["hotline"]]


def at_risk_counts(tables: dict[str, pl.DataFrame], days: int, unlisted: int) -> dict[str, int]:
    """Overdue, due within `days`, volume alerts; `held_updates`: the rows listed as they were
    before a newer version held in quarantine (counted in the others too); `never_loaded`: the
    complaints not listed because every version of theirs is held (`unlisted`)."""
    due = tables["due_soon"]["days_left"]
    return {
        "overdue": int((due < 0).sum()),
        f"due_within_{days}_days": int(((due >= 0) & (due <= days)).sum()),
        "volume_alerts": tables["volume_alerts"].height,
        "held_updates": int(tables["due_soon"]["held_update"].is_not_null().sum()),
        "never_loaded": unlisted,
    }


@task(name="build-watch-list", cache_policy=NO_CACHE)
def write_task(settings: Settings, drop: date, within: int) -> dict[str, Any]:
    tables, unlisted, partitions = build_watch(settings, drop, within)
    folder = settings.reports / KIND / drop.isoformat()
    # a full disk is told by the folder being written, not blamed on the warehouse
    with writing(folder), output.replace_folder(settings.reports, KIND, drop.isoformat()) as work:
        written = watch_output.write_watch(tables, work, drop.isoformat(), within, unlisted)
        record = manifest.build_manifest(
            kind=KIND, period=drop.isoformat(), as_of=drop, generated_at=datetime.now(UTC),
            configuration=settings.values | {"watch_within_days": within},
            config_file=settings.config_file, inputs=partitions, files=written,
        )  # fmt: skip
        manifest.write_manifest(record, work / "manifest.json")
        written.append("manifest.json")
    return {"tables": tables, "never_loaded": unlisted, "files": sorted(written)}


@flow(name="watch")
def watch_list(
    drop_date: date | None = None,
    within: int | None = None,
    out: str | None = None,
    warehouse_dir: str | None = None,
    config_file: str | None = None,
) -> dict[str, Any]:
    """Build `<reports or out>/watch/<drop_date>/` (default: the latest drop); publish what is
    at risk and emit `kesu.watch.at-risk` when anything is. Returns folder, counts and files."""
    logger = get_run_logger()
    settings = load_settings(warehouse=warehouse_dir, reports=out, config=config_file)
    # the newest drop on or before the day asked: judged on a day no drop reached, complaints
    # open at the last drop would show overdue on data nobody had (as a report's --as-of)
    known = latest_drop(settings.warehouse_store(), drop_date)
    if known is None:
        on = "" if drop_date is None else f" on or before {drop_date}"
        raise ValueError(f"the warehouse {settings.warehouse} holds no drop{on}")
    if drop_date is not None and known != drop_date:
        logger.warning(
            "no drop on %s: the watch list is after the drop before it, %s", drop_date, known
        )
    drop_date = known
    rules = settings.values["watch"]
    given = "--within" if within is not None else "[watch] within_days"  # where to fix it
    within = int(rules["within_days"]) if within is None else within
    if within < 0:
        raise ValueError(f"{given} must be 0 or more days, not {within}")
    built = write_task(settings, drop_date, within)
    days = int(rules["at_risk_days"])
    counts = at_risk_counts(built["tables"], days, built["never_loaded"])
    at_risk = built["tables"]["due_soon"].filter(pl.col("days_left") <= days)
    held = at_risk["held_update"].is_not_null().sum()
    held_note = (
        f"; {held} of them shown as before a newer version held in quarantine (held_update): "
        "check those first, the held version may have closed them"
        if held else ""
    ) + (
        f"; {counts['never_loaded']} complaint(s) not listed: every version of theirs is held in "
        "quarantine, so no deadline can be reckoned (kesu quarantine names them)"
        if counts["never_loaded"] else ""
    )  # fmt: skip
    create_table_artifact(
        table=[
            {k: str(v) if isinstance(v, date) else v for k, v in row.items()}
            for row in at_risk.iter_rows(named=True)
        ],  # fmt: skip
        key=f"watch-{drop_date.isoformat()}-at-risk",
        description=f"kesu watch list after drop {drop_date}: complaints and regulator "
        f"transfers overdue or due within {days} days{held_note}",
    )
    if any(counts.values()):
        emit_event(
            event=EVENT,
            resource={
                "prefect.resource.id": f"kesu.watch.{drop_date.isoformat()}",
                "prefect.resource.name": f"kesu watch {drop_date}",
            },  # fmt: skip
            payload={"drop_date": drop_date.isoformat(), **counts},
        )
    folder = settings.reports / KIND / drop_date.isoformat()
    logger.info("watch list after drop %s: %s; %d files in %s",
                drop_date, counts, len(built["files"]), folder)  # fmt: skip
    return {"folder": str(folder), "drop_date": drop_date.isoformat(), "counts": counts,
            "files": built["files"]}  # fmt: skip
