"""The warehouse's tables and the reports as Prefect assets, so the UI shows which run produced
which table partition and which report, and the lineage from the staged tables to each report.

One asset per table (`stg_hotline`, `quarantine/hotline`, ...), not per partition: a year of
drops would otherwise be a thousand assets. Each materialization names the partitions it wrote
and the kesu runs that wrote them in its metadata; a backfill materializes its drops in batches.
A report is one asset per kind and period, materialized with the staged tables it read as
upstream assets. A drop whose inputs were unchanged materializes nothing.

Keys are URIs of where the data lives (`file:///srv/kesu/warehouse/stg_hotline`,
`s3://bucket/kesu/stg_hotline`); Prefect forbids a few characters in keys (space, `%`, `#`, ...),
which are replaced by `_`.
"""

from __future__ import annotations

import re
from pathlib import Path

from kesu.flows.config import Settings
from kesu.transforms.run_records import IngestRun, PartitionRead, PublishedPartition
from prefect.assets import Asset, AssetProperties, add_asset_metadata, materialize

_FORBIDDEN = re.compile(r"""[\s#?&%"'<>\[\]{}|\\^`]""")
MATERIALIZED_BY = "kesu"


def _key(root: Path | str, name: str) -> str:
    base = str(root) if isinstance(root, str) else Path(root).absolute().as_uri()
    return _FORBIDDEN.sub("_", f"{base.rstrip('/')}/{name}")[:512]


def table_asset(root: Path | str, table: str) -> Asset:
    return Asset(
        key=_key(root, table),
        properties=AssetProperties(name=table, description=f"kesu warehouse table {table}"),
    )


def report_asset(reports: Path, kind: str, period: str) -> Asset:
    return Asset(
        key=_key(reports, f"{kind}/{period}"),
        properties=AssetProperties(
            name=f"{kind} report {period}", description=f"kesu {kind} report {period}"
        ),
    )


def declare_ingest(settings: Settings, *runs: IngestRun) -> None:
    """Materialize the tables these ingest runs wrote: one materialization per table, naming
    the partitions and the runs that wrote them (``kesu_run_id``), oldest drop first, and the
    rows.

    The nightly flow declares its one drop; a backfill declares its drops in batches, since a
    materialization is a Prefect task run of its own (`kesu.flows.backfill`)."""
    written: dict[str, list[tuple[str, PublishedPartition]]] = {}
    for run in sorted(runs, key=lambda r: r.drop_date):
        for feed in run.feeds.values():
            if feed.status == "unchanged":
                continue
            for output in feed.outputs:
                if output.action in ("created", "replaced", "removed"):
                    written.setdefault(output.table, []).append((run.run_id, output))
    if not written:
        return
    dates = sorted({run.drop_date.isoformat() for run in runs})
    label = dates[0] if len(dates) == 1 else f"{dates[0]}..{dates[-1]}"
    assets = {table: table_asset(settings.warehouse, table) for table in sorted(written)}
    task = materialize(*assets.values(), by=MATERIALIZED_BY)(_tables_written)
    task.with_options(name="warehouse-tables", task_run_name=f"tables-{label}")(
        {assets[t].key: _written(outputs) for t, outputs in written.items()}
    )


def _written(outputs: list[tuple[str, PublishedPartition]]) -> dict[str, str | int]:
    """An asset's metadata: the runs, partitions, rows and actions of its materialization."""
    parts = [p for _, p in outputs]
    return {
        "kesu_run_id": ", ".join(dict.fromkeys(run_id for run_id, _ in outputs)),
        "partitions": ", ".join(p.partition for p in parts),
        "rows": sum(p.rows for p in parts),
        "action": ", ".join(sorted({p.action for p in parts})),
    }


def _tables_written(written: dict[str, dict[str, str | int]]) -> None:
    for key, metadata in written.items():
        add_asset_metadata(key, metadata)


def declare_report(
    settings: Settings, kind: str, period: str, partitions: list[PartitionRead]
) -> None:
    """Materialize the report of `kind` and `period`, downstream of the tables it read."""
    read = sorted({p.table for p in partitions})
    upstream: list[Asset | str] = [table_asset(settings.warehouse, table) for table in read]
    asset = report_asset(settings.reports, kind, period)
    task = materialize(asset, by=MATERIALIZED_BY, asset_deps=upstream)(_report_written)
    task.with_options(name="report-asset", task_run_name=f"report-{kind}-{period}")(
        asset.key,
        {
            "partitions_read": len(partitions),
            "rows_read": sum(p.rows for p in partitions),
            "tables": ", ".join(read),
        },
    )


def _report_written(key: str, metadata: dict[str, str | int]) -> None:
    add_asset_metadata(key, metadata)
