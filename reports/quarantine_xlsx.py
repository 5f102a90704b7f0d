"""The quarantine workbook (`kesu quarantine --export`) for the data stewards of the source systems.

A summary sheet (汇总: rows per feed, rule and field, with an example), then one sheet per feed
with every rejected row: file, line, field, rule, reason (rule names and reasons in Chinese,
the reason column wrapped), then the source columns under their
Chinese source headers, personal data masked as the warehouse holds it. Header row frozen, with
an autofilter. Every text cell is written as text (reports.xlsx.write_text) in a workbook that
turns no string into a formula, so a source value such as `=HYPERLINK(...)` stays inert.
"""

from __future__ import annotations

import os
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
from kesu.reports.quarantine_reasons import reason_zh, rule_title
from kesu.reports.xlsx import (
    REASON_WIDTH,
    display_width,
    safe_workbook,
    sheet_name,
    write_text,
)
from kesu.transforms import quarantine_review
from kesu.transforms.columns import COLUMNS
from xlsxwriter.worksheet import Worksheet

FEED_TITLES = {"hotline": "客服热线", "complaints": "投诉工单", "regulator_transfers": "监管转办"}
LEAD_HEADERS = {
    "source_file": "文件",
    "source_line": "行号",
    "field": "字段",
    "rule": "规则",
    "reason": "原因",
}
SUMMARY_HEADERS = {
    "feed": "数据源",
    "rule": "规则",
    "rule_title": "规则说明",
    "field": "字段",
    "rows": "行数",
    "files": "文件数",
    "example_file": "示例文件",
    "example_line": "示例行号",
    "example_reason": "示例原因",
}
MASKED_KINDS = ("phone", "person_name", "id_number", "free_text")
MAX_ROWS = 1_048_575  # Excel's limit below the header row
WIDTH_SAMPLE = 500  # rows looked at to size a column
WRAPPED = ("原因", "示例原因")


def source_headers(feed: str) -> dict[str, str]:
    """Canonical source column -> its Chinese source header; masked columns say so."""
    return {
        c.name: c.header + ("（脱敏）" if c.kind in MASKED_KINDS else "") for c in COLUMNS[feed]
    }


def _write_table(
    sheet: Worksheet, headers: list[str], rows: list[tuple], fmt: Any, wrap: Any
) -> None:
    widths = [display_width(h) for h in headers]
    for j, header in enumerate(headers):
        write_text(sheet, 0, j, header, fmt)
    for i, row in enumerate(rows, start=1):
        for j, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, int) and not isinstance(value, bool):
                sheet.write_number(i, j, value)
                text = str(value)
            else:
                text = write_text(sheet, i, j, value)
            if i <= WIDTH_SAMPLE:
                widths[j] = max(widths[j], display_width(text))
    for j, w in enumerate(widths):
        if headers[j] in WRAPPED:  # the reason is read whole: wrapped, never cut off
            sheet.set_column(j, j, min(max(w + 2, 6), REASON_WIDTH), wrap)
        else:
            sheet.set_column(j, j, min(max(w + 2, 6), 60))
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(len(rows), 1), len(headers) - 1)


def _feed_rows(feed: str, frame: pl.DataFrame) -> tuple[list[str], list[tuple]]:
    names = source_headers(feed)
    source = [c for c in names if c in frame.columns]
    extra = [c for c in frame.columns if c not in LEAD_HEADERS and c not in names]
    columns = [*LEAD_HEADERS, *source, *extra]
    headers = [LEAD_HEADERS.get(c) or names.get(c) or c for c in columns]
    if not frame.height:
        return headers, []
    chinese = frame.with_columns(
        pl.col("rule").map_elements(rule_title, return_dtype=pl.String),
        pl.col("reason").map_elements(reason_zh, return_dtype=pl.String),
    )
    return headers, chinese.select(columns).rows()


def write_quarantine_workbook(
    by_feed: dict[str, pl.DataFrame], path: Path, drop_date: date
) -> Path:
    """Summary sheet, then one sheet per feed (in the order given); replaces `path` whole."""
    too_big = [f for f, frame in by_feed.items() if frame.height > MAX_ROWS]
    if too_big:
        raise ValueError(
            f"{', '.join(too_big)}: more quarantined rows than a worksheet holds ({MAX_ROWS}); "
            "read the quarantine Parquet files instead"
        )
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:12]}")
    try:
        book = safe_workbook(tmp, f"{drop_date.isoformat()} 隔离数据（quarantine）")
        header = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
        wrap = book.add_format({"text_wrap": True, "valign": "top"})
        used: set[str] = set()
        summary = quarantine_review.summary(by_feed).with_columns(
            pl.col("feed").replace_strict(FEED_TITLES, default=pl.col("feed")),
            pl.col("rule").map_elements(rule_title, return_dtype=pl.String).alias("rule_title"),
            pl.col("example_reason").map_elements(reason_zh, return_dtype=pl.String),
        )
        _write_table(
            book.add_worksheet(sheet_name("汇总", used)),
            list(SUMMARY_HEADERS.values()),
            summary.select(list(SUMMARY_HEADERS)).rows(),
            header,
            wrap,
        )
        for feed, frame in by_feed.items():
            headers, rows = _feed_rows(feed, frame)
            sheet = book.add_worksheet(sheet_name(FEED_TITLES.get(feed, feed), used))
            _write_table(sheet, headers, rows, header, wrap)
        book.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
