"""What a reader sees of one table: Chinese headers, the kind of every cell, and the 合计 row.

The workbook and the HTML page both render this model, so they cannot disagree about which
columns are percentages or what the totals are. Totals are computed here from the table's exact
values (Decimal for shares: the total of a share column is the actual sum, e.g. 100.01).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import polars as pl
from kesu.reports import labels

CellKind = Literal["text", "count", "number", "percent"]


@dataclass(frozen=True)
class Column:
    name: str
    header: str
    kind: CellKind
    decimals: int = 0
    wrap: bool = False  # long text: wrapped in the workbook (labels.WRAPPED_COLUMNS)


@dataclass
class TableView:
    name: str
    title: str
    columns: list[Column]
    rows: list[list[Any]]
    cell_kinds: list[list[CellKind]]
    total: list[Any] | None = None
    total_kinds: list[CellKind] = field(default_factory=list)
    indents: list[int] = field(default_factory=list)  # per row: the channel level below the top
    shares: bool = False  # a table of shares: the note on how they were rounded goes with it


def _decimals(dtype: pl.DataType) -> int:
    if isinstance(dtype, pl.Decimal):
        return dtype.scale or 0
    return 2 if dtype.is_float() else 0


def _column_kind(name: str, dtype: pl.DataType) -> CellKind:
    if name in labels.PERCENT_COLUMNS:
        return "percent"
    if dtype.is_integer() and name != "level":
        return "count"
    if dtype.is_numeric():
        return "number"
    return "text"


def _row_kind(table: str, column: Column, row: dict[str, Any]) -> CellKind:
    """A metric table's value cells: percentages for rates, decimals for measures, else counts."""
    if column.name not in ("value", "previous", "previous_year") or table not in labels.NO_TOTAL:
        return column.kind
    metric = row.get("metric")
    if metric in labels.PERCENT_METRICS:
        return "percent"
    return "number" if metric in labels.MEASURE_METRICS else "count"


def _total_row(table: str, frame: pl.DataFrame, columns: list[Column]) -> list[Any] | None:
    """合计: counts and shares summed (by_channel: over its top level only, levels overlap)."""
    if table in labels.NO_TOTAL or frame.height == 0:
        return None
    if table == "by_channel" and "level" in frame.columns:
        frame = frame.filter(pl.col("level") == pl.col("level").min())
    total: list[Any] = []
    for col in columns:
        summable = col.kind == "count" or col.name == "share_pct"  # not rates, not parent shares
        values = [v for v in frame[col.name].to_list() if v is not None] if summable else []
        total.append(sum(values, Decimal(0) if col.kind == "percent" else 0) if summable else None)
        if col.name == "share_display" and "share_pct" in frame.columns:  # printed actual sum
            total[-1] = f"{sum(v for v in frame['share_pct'].to_list() if v is not None)}%"
    first_text = next((i for i, c in enumerate(columns) if c.kind == "text"), None)
    if first_text is not None:
        total[first_text] = labels.TOTAL_LABEL
    return total


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def table_view(name: str, frame: pl.DataFrame, kind: str, target: str) -> TableView:
    """The table as shown in `target` ("xlsx" or "html") of a report of `kind`."""
    headers = labels.column_labels(name, kind)
    hidden = labels.HIDDEN_COLUMNS.get(target, frozenset())
    if name in labels.NO_TOTAL and "label" not in frame.columns:
        hidden = hidden - {"metric"}  # without labels the ids are all a reader has
    if "share_display" not in frame.columns:
        hidden = hidden - {"share_pct"}
    columns = [
        Column(
            c,
            headers.get(c, c),
            _column_kind(c, frame.schema[c]),
            _decimals(frame.schema[c]),
            wrap=c in labels.WRAPPED_COLUMNS,
        )
        for c in frame.columns
        if c not in hidden
    ]
    shown_as = labels.SHOWN_AS.get(name, {})
    rows, kinds = [], []
    for row in frame.iter_rows(named=True):
        if row.get("metric") in labels.PERCENT_METRICS and isinstance(row.get("label"), str):
            row["label"] = labels.without_percent_unit(row["label"])  # the cell shows the %
        for column, shown in shown_as.items():
            if isinstance(row.get(column), str):
                row[column] = shown(row[column])
        rows.append([_plain(row[c.name]) for c in columns])
        kinds.append([_row_kind(name, c, row) for c in columns])
    total = _total_row(name, frame, columns)
    levels = frame["level"].to_list() if "level" in frame.columns else [1] * frame.height
    return TableView(
        name=name,
        title=labels.table_title(name),
        columns=columns,
        rows=rows,
        cell_kinds=kinds,
        total=total,
        total_kinds=[c.kind for c in columns] if total else [],
        indents=[max(int(v or 1) - 1, 0) for v in levels],
        shares="share_pct" in frame.columns,
    )


def display(value: Any, kind: CellKind, decimals: int = 2) -> str:
    """A cell as printed text: Decimals exactly as stored, percentages with a % sign, counts
    and measures with thousands separators (9,033), as the workbook's number formats show
    them."""
    if value is None:
        return ""
    if kind == "count" and isinstance(value, float | Decimal) and value == int(value):
        return f"{int(value):,}"
    if kind == "percent" or isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        text = f"{value:.{decimals}f}" if isinstance(value, float) else str(value)
        return f"{text}%" if kind == "percent" else text
    return f"{value:,.{decimals}f}" if isinstance(value, float) else f"{value:,}"
