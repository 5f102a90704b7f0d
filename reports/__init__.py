"""Report outputs: the table files, workbook, charts, HTML page and disclosure of one report.

Everything here renders finished tables (from kesu.transforms.reporting) into files; nothing
reads the warehouse or the clock. `write_presentation` renders the human-facing files from the
tables as written in `tables/`, so those files and the machine-readable ones cannot drift apart.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from kesu.transforms.periods import Coverage

TABLES_DIR = "tables"
CHARTS_DIR = "charts"
WORKBOOK = "report.xlsx"
PAGE = "report.html"
DISCLOSURE = "disclosure.md"
SUMMARY = "summary.md"  # monthly only: the 客户之声 总体情况
MANIFEST = "manifest.json"


def read_tables(folder: Path) -> dict[str, pl.DataFrame]:
    """The tables written by `kesu.reports.files.write_tables` under `folder/tables`."""
    return {p.stem: pl.read_parquet(p) for p in sorted((folder / TABLES_DIR).glob("*.parquet"))}


def write_presentation(
    folder: Path,
    *,
    kind: str,
    period: str,
    as_of: str,
    decimals: int,
    rounding: str,
    coverage: Coverage | None = None,
    disclosure_settings: dict | None = None,
) -> list[Path]:
    """Workbook, charts, HTML, (annual) disclosure and (monthly) summary from `folder/tables`;
    the files written. `coverage`: how far the drops reach into the period (None: complete);
    every title and text of an incomplete period says so."""
    from kesu.reports import charts, disclosure, html, labels, xlsx
    from kesu.transforms.reporting import holds_records

    tables = read_tables(folder)
    if coverage is not None and coverage.empty:  # records of the period from later drops?
        coverage = replace(coverage, late_records=holds_records(tables))
    note = labels.share_note(rounding, decimals)
    written = [xlsx.write_workbook(tables, folder / WORKBOOK, kind, period, coverage, note)]
    chart_files = charts.write_charts(tables, folder / CHARTS_DIR, kind, period, coverage)
    written += chart_files
    written.append(
        html.write_html(tables, folder / PAGE, kind, period, as_of, chart_files, coverage, note)
    )
    if kind == "annual":
        text = disclosure.render(
            tables, period, decimals, rounding, coverage=coverage, settings=disclosure_settings
        )
        (folder / DISCLOSURE).write_text(text, encoding="utf-8")
        written.append(folder / DISCLOSURE)
    if kind == "monthly":
        from kesu.reports import summary

        text = summary.render(tables, period, coverage)
        (folder / SUMMARY).write_text(text, encoding="utf-8")
        written.append(folder / SUMMARY)
    return written
