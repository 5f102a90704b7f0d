"""`report.xlsx`: one sheet per table with a Chinese title row, header, data and a 合计 row.

Injection-safe by construction: text goes through `write_text` (`write_string`) only (never
`write`, which would turn "=..." into a formula), and the workbook is opened with
`strings_to_formulas` off as a second guard (`safe_workbook`, shared with the quarantine export).
The workbook holds no formula at all; totals are values computed in Python. Percentages are
stored as fractions (33.60 -> 0.336) under a `0.00%` format with as many decimals as the
table's rounding, so Excel shows exactly the rounded value.
"""

from __future__ import annotations

import io
import math
import re
import unicodedata
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter
from kesu.reports import labels
from kesu.reports.layout import CellKind, Column, TableView, table_view
from kesu.transforms.periods import Coverage
from xlsxwriter.worksheet import Worksheet

_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
HEADER_ROW = 1  # row 0 holds the title
FIRST_DATA_ROW = 2
PAPER_A4 = 9
REASON_WIDTH = 50  # characters; a longer reason wraps onto more lines of its cell
LINE_HEIGHT = 15  # points: one line of the default 11-point font
# xlsxwriter stamps "now" as the creation date; a fixed one keeps reruns identical
CREATED = datetime(2000, 1, 1)


class _PackedWorkbook(xlsxwriter.Workbook):
    """A workbook packed in memory, then written to `path` by `close` in one write whose file
    is closed whatever happens. xlsxwriter's own zip file, left open on the disk when a write
    failed (a full disk), was closed again when collected and printed a Python traceback
    after the command's one line."""

    def __init__(self, path: Path, options: dict[str, Any]) -> None:
        self.path = Path(path)
        self.packed = io.BytesIO()
        super().__init__(self.packed, options)

    def close(self) -> None:
        super().close()
        with open(self.path, "wb") as out:
            out.write(self.packed.getbuffer())


def safe_workbook(path: Path, title: str) -> xlsxwriter.Workbook:
    """A workbook where no string becomes a formula, link or number, with a fixed creation date.

    The options are the second guard: callers still write every text cell with `write_text`.
    """
    book = _PackedWorkbook(
        path,
        {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False},
    )
    book.set_properties({"title": title, "created": CREATED})
    return book


def write_text(sheet: Worksheet, row: int, col: int, value: object, fmt: Any = None) -> str:
    """Write `value` as a text cell, whatever it starts with (`=`, `+`, `-`, `@`, tab, CR)."""
    text = str(value)
    sheet.write_string(row, col, text, fmt)
    return text


def sheet_name(title: str, used: set[str]) -> str:
    """A valid sheet name from `title`, unique (ignoring case) among `used`, which records it."""
    base = _SHEET_FORBIDDEN.sub("_", title)[:31] or "Sheet"
    name, n = base, 2
    while name.lower() in used:
        suffix = f"({n})"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(name.lower())
    return name


def display_width(text: str) -> int:
    """Display width: CJK characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def fit_wrapped_rows(sheet: Worksheet, wrapped: list[tuple[int, str, float]]) -> None:
    """Make each row holding wrapped text (row, text, its column's width) tall enough for it.
    A row without a height stays one line in LibreOffice, and in print: the rest is cut."""
    lines: dict[int, int] = {}
    for row, text, width in wrapped:
        needed = math.ceil(display_width(text) / max(width - 2, 1))
        lines[row] = max(lines.get(row, 1), needed)
    for row, count in lines.items():
        if count > 1:
            sheet.set_row(row, LINE_HEIGHT * count)


def _number_format(kind: CellKind, decimals: int) -> str:
    places = "." + "0" * decimals if decimals else ""
    if kind == "percent":
        return f"0{places}%"
    if kind == "count":
        return "#,##0"
    return f"#,##0{places}"


class _Formats:
    """xlsxwriter formats are workbook objects: create each combination once."""

    def __init__(self, book: xlsxwriter.Workbook) -> None:
        self.book = book
        self.cache: dict[tuple[str, int, bool, int, bool], Any] = {}
        self.title = book.add_format({"bold": True, "font_size": 14})
        self.header = book.add_format(
            {"bold": True, "bg_color": "#DDEBF7", "border": 1, "valign": "vcenter"}
        )

    def cell(self, kind: CellKind, decimals: int, total: bool, indent: int = 0,
             wrap: bool = False) -> Any:  # fmt: skip
        key = (kind, decimals, total, indent, wrap)
        if key not in self.cache:
            props: dict[str, Any] = {"border": 1}
            if wrap:
                props |= {"text_wrap": True, "valign": "top"}
            if kind != "text":
                props["num_format"] = _number_format(kind, decimals)
            if total:
                props |= {"bold": True, "top": 2}
            if indent:
                props["indent"] = indent
            self.cache[key] = self.book.add_format(props)
        return self.cache[key]


def _write_cell(
    sheet: Worksheet,
    at: tuple[int, int],
    value: Any,
    kind: CellKind,
    column: Column,
    fmt: _Formats,
    total: bool = False,
    indent: int = 0,
) -> str:
    """Write one cell; returns its printed text (for column widths)."""
    row, col = at
    decimals = column.decimals  # as stored: a Decimal's scale (`[report] decimals`), 2 for a float
    if value is None:
        sheet.write_blank(row, col, None, fmt.cell(kind, decimals, total))
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return write_text(sheet, row, col, value, fmt.cell("text", 0, total, indent, column.wrap))
    if kind == "percent":
        # divide in decimal: 99.99 -> 0.9999 exactly, then the nearest double
        fraction = Decimal(str(value)) / 100
        sheet.write_number(row, col, float(fraction), fmt.cell("percent", decimals, total))
        return f"{value}%"
    sheet.write_number(row, col, float(value), fmt.cell(kind, decimals, total))
    return str(value)


def _write_sheet(
    book: xlsxwriter.Workbook,
    fmt: _Formats,
    view: TableView,
    heading: str,
    used: set[str],
    note: str | None = None,
) -> None:
    sheet = book.add_worksheet(sheet_name(view.title, used))
    write_text(sheet, 0, 0, f"{heading} {view.title}", fmt.title)
    widths = [display_width(c.header) for c in view.columns]
    for j, column in enumerate(view.columns):
        write_text(sheet, HEADER_ROW, j, column.header, fmt.header)
    r = FIRST_DATA_ROW
    indents = view.indents or [0] * len(view.rows)
    wrapped: list[tuple[int, str, int]] = []  # (row, text, column) of wrapped cells
    for values, kinds, indent in zip(view.rows, view.cell_kinds, indents, strict=True):
        for j, (value, kind) in enumerate(zip(values, kinds, strict=True)):
            step = indent if view.columns[j].name == "name" else 0  # channel levels
            text = _write_cell(sheet, (r, j), value, kind, view.columns[j], fmt, indent=step)
            widths[j] = max(widths[j], display_width(text) + 2 * step)
            if view.columns[j].wrap:
                wrapped.append((r, text, j))
        r += 1
    if view.total is not None:
        for j, (value, kind) in enumerate(zip(view.total, view.total_kinds, strict=True)):
            text = _write_cell(sheet, (r, j), value, kind, view.columns[j], fmt, total=True)
            widths[j] = max(widths[j], display_width(text))

    shown = [min(max(w + 2, 8), REASON_WIDTH if c.wrap else 60)
             for w, c in zip(widths, view.columns, strict=True)]  # fmt: skip
    for j, width in enumerate(shown):
        sheet.set_column(j, j, width)
    fit_wrapped_rows(sheet, [(row, text, shown[j]) for row, text, j in wrapped])
    sheet.freeze_panes(FIRST_DATA_ROW, 0)
    print_setup(sheet, note if view.shares else None)


def print_setup(sheet: Worksheet, note: str | None = None) -> None:
    """Print-ready: A4 landscape, one page wide (as many pages high as needed), the title and
    header rows repeated on every page, centred, page numbers in the footer (with `note`, how
    the shares were rounded, on its left)."""
    sheet.set_paper(PAPER_A4)
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(0, HEADER_ROW)
    sheet.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
    sheet.center_horizontally()
    pages = "第 &P 页，共 &N 页"
    sheet.set_footer(f"&L{note}&R{pages}" if note else f"&C{pages}")


def write_workbook(tables: dict[str, pl.DataFrame], path: Path, kind: str, period: str,
                   coverage: Coverage | None = None, note: str | None = None) -> Path:  # fmt: skip
    """One sheet per table, in report order, titled with the period and (if incomplete) its
    coverage; `note` (how shares were rounded) under every table of shares."""
    heading = labels.period_title(kind, period, coverage)
    book = safe_workbook(path, heading)
    fmt = _Formats(book)
    used: set[str] = set()
    for name in labels.ordered(list(tables)):
        view = table_view(name, tables[name], kind, "xlsx")
        _write_sheet(book, fmt, view, heading, used, note)
    book.close()
    return path
