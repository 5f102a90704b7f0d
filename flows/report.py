"""The `report` flow: a quarterly or annual report from the warehouse, as at an as-of drop date.

Two thin tasks: read + build (writes `tables/`) and render (workbook, charts, HTML, disclosure,
all from `tables/`). Both write into a temporary sibling of the output folder that replaces the
live one only when everything is written (reports.output), so a crash never leaves half a report.

Over 250 lines: the report's inputs (which partitions, at which table versions, with which
reference files) are gathered beside the two tasks, as the manifest records exactly what was read.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from kesu.flows import reproduction
from kesu.flows.assets import declare_report
from kesu.flows.config import Settings, load_settings
from kesu.flows.errors import writing
from kesu.reports import charts, files, manifest, output
from kesu.transforms import monthly
from kesu.transforms.columns import BRANCH_HEADERS, STAGED_TABLE
from kesu.transforms.lookups import label_lookup
from kesu.transforms.periods import Coverage, Period, coverage
from kesu.transforms.reporting import ReportConfig, ReportInputs, build_tables, drop_window
from kesu.transforms.run_records import PartitionRead
from kesu.warehouse import paths
from kesu.warehouse.quarantine import read_quarantine_drops
from kesu.warehouse.reader import (
    STAGED_TABLES,
    latest_drop,
    partition_dates,
    scan_table,
    table_version,
)
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from kesu import reports
from kesu import version as kesu_version

PREVIEW_TABLES = ("overview", "by_business_category", "by_cause", "hotline_kpis")
# held_updates reads it; its version is recorded too
HELD_TABLE = paths.quarantine_table("complaints")
# ReportInputs field -> staged table
INPUT_TABLES = {
    "complaints": STAGED_TABLE["complaints"],
    "transfers": STAGED_TABLE["regulator_transfers"],
    "hotline": STAGED_TABLE["hotline"],
}


def _reference(settings: Settings) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    """Branches (canonical column names) and JR/T 0169 codes, with what the manifest records of
    every reference file read."""
    used: dict[str, Any] = reproduction.reference_files(settings)
    # as text: branch codes such as 0101 keep their leading zero
    branches = pl.read_csv(settings.reference_path("branches"), infer_schema=False)
    codes = pl.read_csv(
        settings.reference_path("codes"),
        schema_overrides={"code": pl.String, "parent_code": pl.String},
    )
    return branches.rename(BRANCH_HEADERS, strict=False), codes, used


def report_inputs(
    settings: Settings, p: Period, as_of: date, versions: dict[str, int | None] | None = None
) -> tuple[ReportInputs, list[PartitionRead], dict[str, Any]]:
    """The builder's inputs, scanning only the partitions the period needs; also the partitions
    read and the reference files used (for the manifest). The benchmark times this same path.

    `versions` ({table: Delta version}, from a manifest) reads the tables as they were then;
    by default each table's latest version, which `table_versions` then records."""
    frames, partitions = {}, []
    latest = _latest_versions(settings)
    # a manifest from before the held table's version was recorded: that table as it is now
    used = latest if versions is None else {HELD_TABLE: latest[HELD_TABLE]} | versions
    wh, windows = settings.warehouse_store(), read_windows(p, as_of)
    for field, table in INPUT_TABLES.items():
        version = used.get(table)
        if version is None:  # the table did not exist yet: read it as never loaded
            frames[field], read = scan_table(wh, table, None, date.min)
        else:
            frames[field], read = scan_table(wh, table, *windows[table], version)
        partitions += read
    branches, codes, reference = _reference(settings)
    label_map = pl.read_csv(settings.reference_path("label_map"), infer_schema=False)
    held, read = _held_complaints(settings, as_of, used[HELD_TABLE])
    partitions += read
    labels = label_lookup(codes.cast(pl.String), label_map)
    denominators = None
    path = settings.reference_path("denominators")
    if path.is_file():  # a bank without the file gets no per-outlet / per-customer rates
        denominators = pl.read_csv(path, infer_schema=False)
    reference["table_versions"] = dict(used)
    inputs = ReportInputs(branches=branches, codes=codes, held=held, labels=labels,
                          denominators=denominators, **frames)  # fmt: skip
    return inputs, partitions, reference


def read_windows(p: Period, as_of: date) -> dict[str, tuple[date | None, date]]:
    """The first and last drop read of each input table (first None: from its first drop)."""
    windows: dict[str, tuple[date | None, date]] = {}
    for table in INPUT_TABLES.values():
        lo, hi = drop_window(table, p, as_of)
        windows[table] = (lo, min(hi, as_of))
    return windows | {HELD_TABLE: (None, as_of)}


def _held_complaints(
    settings: Settings, as_of: date, version: int | None
) -> tuple[pl.DataFrame, list[PartitionRead]]:
    """The complaint rows in quarantine, every drop up to as_of, with their drop_date, at the
    table's `version`; and the partitions read, for the manifest (held_updates depends on them).
    """
    wh = settings.warehouse_store()
    if version is None:  # no complaint was ever held
        return pl.DataFrame(), []
    _, read = scan_table(wh, HELD_TABLE, None, as_of, version)  # records only: never collected
    days = [r.drop_date for r in read]
    held_by_day = read_quarantine_drops(wh, "complaints", days, version)
    parts = [held_by_day[day].with_columns(drop_date=pl.lit(day)) for day in days]
    held = pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()
    return held, read


class EmptyPeriod(ValueError):
    """No drop covers the report's period (and --allow-empty was not given)."""


def drops_known(
    settings: Settings, as_of: date, versions: dict[str, int | None] | None = None
) -> list[date]:
    """Every drop date of any staged table, up to as_of (of the tables at `versions`, if given:
    a table absent from them is read as never loaded)."""
    wh, pinned = settings.warehouse_store(), versions is not None
    days = {
        d
        for t in STAGED_TABLES
        if not pinned or (versions or {}).get(t) is not None
        for d in partition_dates(wh, t, (versions or {}).get(t))
    }
    return sorted(d for d in days if d <= as_of)


def check_coverage(
    settings: Settings,
    p: Period,
    as_of: date,
    allow_empty: bool,
    versions: dict[str, int | None] | None = None,
) -> Coverage:
    """The period's coverage; refused (EmptyPeriod, one line saying which drops exist) when no
    drop falls in the period, unless allow_empty."""
    drops = drops_known(settings, as_of, versions)
    found = coverage(drops, p, as_of)
    if found.empty and not allow_empty:
        known = f"drops exist from {drops[0]} to {drops[-1]}" if drops else "no drop exists"
        raise EmptyPeriod(
            f"no drop covers {p.kind} {p.label} (as of {as_of}): {known}; "
            "use --allow-empty to write it anyway"
        )
    return found


def _latest_versions(settings: Settings) -> dict[str, int | None]:
    wh = settings.warehouse_store()
    return {t: table_version(wh, t) for t in (*INPUT_TABLES.values(), HELD_TABLE)}


def recorded(kind: str, period: str, manifest: str | Path) -> reproduction.Reproduction:
    """What `manifest` recorded; a ValueError unless it is the manifest of that report."""
    then = reproduction.read_manifest(manifest)
    if (then.kind, then.period) != (kind, Period.parse(kind, period).label):
        raise ValueError(f"{manifest} is the {then.kind} report {then.period}")
    return then


def reproducing(
    settings: Settings, kind: str, period: str, manifest: str | Path
) -> tuple[Settings, reproduction.Reproduction, list[str]]:
    """The report `manifest` describes: the settings to rebuild it with (those it recorded),
    what it recorded, and the warnings to give. Raises NotReproducible, before anything is
    written, for what would make the rebuilt report differ (flows.reproduction)."""
    then = recorded(kind, period, manifest)
    settings, differs = reproduction.recorded_settings(settings, then)
    reproduction.check(settings, then, read_windows(Period.parse(kind, period), then.as_of))
    warnings = []
    if differs:
        kept = "; ".join(differs)
        warnings.append(
            f"reproducing with the configuration the manifest recorded instead of today's: {kept}"
        )
    if then.kesu_version != kesu_version():
        warnings.append(
            f"the report was built by kesu {then.kesu_version}, this is kesu {kesu_version()}: "
            "its tables may differ where the report rules changed since"
        )
    return settings, then, warnings


@task(name="read-and-build", cache_policy=NO_CACHE)
def build_task(
    settings: Settings,
    kind: str,
    period: str,
    as_of: date,
    work: Path,
    versions: dict[str, int | None] | None = None,
) -> dict:
    """Reads only the partitions the period needs; writes `tables/`; returns names and inputs."""
    p = Period.parse(kind, period)
    # the tables are read lazily: while the rules build the report
    with reproduction.reading(settings, versions, read_windows(p, as_of)):
        inputs, partitions, reference = report_inputs(settings, p, as_of, versions)
        tables = build_tables(inputs, p, as_of, ReportConfig.from_settings(settings.values))
        if p.kind == "monthly":  # the 客户之声 bulletin also compares with a year earlier
            config = ReportConfig.from_settings(settings.values)
            year_earlier = monthly.year_earlier_values(inputs, p, as_of, config)
            tables["overview"] = monthly.with_year_on_year(tables["overview"], year_earlier)
    used = reference.pop("table_versions")
    files.write_tables(tables, work / reports.TABLES_DIR)
    logger = get_run_logger()
    if tables["held_updates"].height:  # a stale state is never presented silently
        logger.warning("%d complaints have a newer version held in quarantine: see table "
                       "held_updates", tables["held_updates"].height)  # fmt: skip
    if tables["unmapped_labels"].height:
        logger.warning("labels not in the label map were counted under 其他: see table "
                       "unmapped_labels (%d labels)", tables["unmapped_labels"].height)  # fmt: skip
    return {
        "tables": sorted(tables),
        "partitions": partitions,
        "reference": reference,
        "versions": used,
    }


@task(name="render", cache_policy=NO_CACHE)
def render_task(settings: Settings, kind: str, period: str, as_of: date, work: Path,
                coverage: Coverage) -> list[str]:  # fmt: skip
    logger = get_run_logger()
    font = charts.cjk_font()
    if font is None:
        logger.warning(
            "no CJK font installed: Chinese in the charts will show as boxes; install "
            "fonts-noto-cjk (scripts/system-deps.sh)"
        )
    else:
        logger.info("charts use the font %s", font)
    written = reports.write_presentation(
        work,
        kind=kind,
        period=period,
        as_of=as_of.isoformat(),
        decimals=int(settings.get("report", "decimals")),
        rounding=str(settings.get("report", "rounding")),
        coverage=coverage,
        disclosure_settings=settings.values.get("disclosure", {})
        | {k: settings.get("report", k) for k in ("region", "national_units")},
    )
    return [p.relative_to(work).as_posix() for p in written]


def _preview_value(value: Any) -> Any:
    if isinstance(value, Decimal | date):
        return str(value)
    return value


def _artifacts(folder: Path, kind: str, period: str, as_of: date, file_list: list[str]) -> None:
    tables = reports.read_tables(folder)
    key = f"report-{kind}-{period.lower()}"
    for name in PREVIEW_TABLES:
        if name in tables:
            rows = [
                {k: _preview_value(v) for k, v in row.items()}
                for row in tables[name].head(50).iter_rows(named=True)
            ]
            create_table_artifact(
                table=rows,
                key=f"{key}-{name.replace('_', '-')}",
                description=f"kesu {kind} report {period} (as of {as_of}): {name}",
            )
    listing = "\n".join(f"- `{f}`" for f in file_list)
    create_markdown_artifact(
        markdown=f"# kesu {kind} report {period}\n\nas of {as_of}\n\n"
        f"Folder: [{folder}]({folder.as_uri()})\n\n{listing}\n",
        key=f"{key}-folder",
        description=f"where the {kind} report {period} was written",
    )


def incomplete(p: Period, covered: Coverage) -> str:
    """The warning that a report's period is not complete: what its drops cover, what not."""
    span = f"{p.kind} {p.label} ({p.start} to {p.end}) is not complete"
    first, last = covered.first_drop, covered.last_drop
    if first is None or last is None:
        return f"{span}: no drop falls in it"
    day = timedelta(days=1)
    missing = [f"from {p.start} to {first - day}"] if first > p.start else []
    missing += [f"from {last + day} to {p.end}"] if last < p.end else []
    if not missing:  # both ends have a drop: a day between them has none
        return f"{span}: its drops run from {first} to {last}, but a day between has none"
    return f"{span}: drops from {first} to {last} only, none {' or '.join(missing)}"


@flow(name="report")
def report(
    kind: str,
    period: str,
    as_of: date | None = None,
    out: str | None = None,
    warehouse_dir: str | None = None,
    config_file: str | None = None,
    allow_empty: bool = False,
    reproduce: str | None = None,
) -> dict[str, Any]:
    """Build `<reports or out>/<kind>/<period>/`; returns its folder, as-of date and files.
    A period no drop covers is refused unless allow_empty.

    `reproduce` (a report's manifest.json) rebuilds that report: its as-of and the table
    versions it read (Delta time travel), whatever corrections landed since."""
    logger = get_run_logger()
    settings = load_settings(warehouse=warehouse_dir, reports=out, config=config_file)
    asked = Period.parse(kind, period)
    label, versions = asked.label, None
    if reproduce is not None:
        settings, then, warnings = reproducing(settings, kind, label, reproduce)
        for warning in warnings:
            logger.warning("%s", warning)
        as_of, versions = then.as_of, then.versions
        logger.info("reproducing %s as of %s from table versions %s", reproduce, as_of, versions)
    if as_of is None:
        as_of = latest_drop(settings.warehouse_store())
        if as_of is None:
            raise ValueError(f"the warehouse {settings.warehouse} holds no staged data yet")
        logger.info("as of the latest drop in the warehouse: %s", as_of)
    elif reproduce is None:
        # a day after the last drop, or one without a drop: judged on D, the open complaints
        # would turn overdue on data no drop brought (reports.md: "what was known at the end of
        # drop date D")
        known = latest_drop(settings.warehouse_store(), as_of)
        if known is not None and known != as_of:
            logger.warning(
                "no drop on %s: the report is as of the drop before it, %s", as_of, known
            )
            as_of = known
    with reproduction.reading(settings, versions, read_windows(asked, as_of)):  # their logs
        covered = check_coverage(settings, asked, as_of, allow_empty, versions)
    if not covered.complete:
        logger.warning("%s", incomplete(Period.parse(kind, period), covered))
    root = settings.reports
    folder = root / kind / label
    with writing(folder), output.replace_folder(root, kind, label) as work:
        built = build_task(settings, kind, label, as_of, work, versions)
        file_list = [f"{reports.TABLES_DIR}/{p.name}" for p in sorted((work / "tables").iterdir())]
        file_list += render_task(settings, kind, label, as_of, work, covered)
        record = manifest.build_manifest(
            kind=kind,
            period=label,
            as_of=as_of,
            generated_at=datetime.now(UTC),
            configuration=settings.values | {"reference_files": built["reference"]},
            config_file=settings.config_file,
            inputs=built["partitions"],
            files=file_list,
            coverage=covered.as_dict(),
        )
        record["table_versions"] = built["versions"]  # what --reproduce reads back
        manifest.write_manifest(record, work / reports.MANIFEST)
        file_list.append(reports.MANIFEST)
    rows = sum(p.rows for p in built["partitions"])
    logger.info(
        "%s report %s as of %s: %d partitions (%d rows) read, %d files in %s",
        kind, label, as_of, len(built["partitions"]), rows, len(file_list), folder,
    )  # fmt: skip
    _artifacts(folder, kind, label, as_of, file_list)
    declare_report(settings, kind, label, built["partitions"])
    return {"folder": str(folder), "as_of": as_of.isoformat(), "files": sorted(file_list)}
