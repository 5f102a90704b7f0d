"""Turn a drop into landing files: text rendering, CSV in several encodings, deterministic XLSX."""

from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path

import numpy as np
import polars as pl
import xlsxwriter
from kesu.transforms.columns import COLUMNS

DATETIME, DATE = "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"
# The other formats some exports use (feeds.md): minutes only, and Chinese dates.
ALT_DATETIME, ALT_DATE = "%Y/%m/%d %H:%M", "%Y年%m月%d日"
ENCODINGS = {"utf-8": b"", "utf-8-sig": b"\xef\xbb\xbf"}  # and gb18030


def render(drop: pl.DataFrame, feed: str, alt_rows: np.ndarray | None = None) -> pl.DataFrame:
    """Every column as export text, in feed order; `alt_rows` get the alternative formats."""
    alt = pl.lit(False) if alt_rows is None else pl.lit(pl.Series(alt_rows, dtype=pl.Boolean))
    exprs = []
    for c in COLUMNS[feed]:
        col = pl.col(c.name)
        if c.kind in ("datetime", "date"):
            usual, other = (DATETIME, ALT_DATETIME) if c.kind == "datetime" else (DATE, ALT_DATE)
            exprs.append(
                pl.when(alt).then(col.dt.strftime(other)).otherwise(col.dt.strftime(usual))
            )
        else:
            exprs.append(col.cast(pl.String))
    return drop.select([e.alias(c.name) for e, c in zip(exprs, COLUMNS[feed], strict=True)])


def with_headers(text: pl.DataFrame, feed: str, order: list[str] | None = None) -> pl.DataFrame:
    """Canonical names -> the source headers, optionally in another column order."""
    named = text.rename({c.name: c.header for c in COLUMNS[feed]})
    return named.select(order) if order else named


def csv_bytes(table: pl.DataFrame, encoding: str) -> bytes:
    """CSV as the exporting system writes it; GB18030 exports come from Windows (CRLF)."""
    if encoding == "gb18030":
        return table.write_csv(line_terminator="\r\n").encode("gb18030")
    buffer = io.BytesIO()
    buffer.write(ENCODINGS[encoding])
    table.write_csv(buffer)
    return buffer.getvalue()


def xlsx_bytes(table: pl.DataFrame, exported_at: dt.datetime) -> bytes:
    """First sheet, header in row 1, every cell text; fixed document times, so bytes repeat."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(
        buffer,
        {
            "in_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    book.set_properties({"created": exported_at, "author": "监管转办平台"})
    sheet = book.add_worksheet("Sheet1")
    for col, header in enumerate(table.columns):
        sheet.write_string(0, col, header)
    for row, values in enumerate(table.iter_rows(), start=1):
        for col, value in enumerate(values):
            if value is not None:
                sheet.write_string(row, col, value)
    book.close()
    return buffer.getvalue()


def write_atomic(path: Path, data: bytes, landing: Path) -> Path:
    """Write inside `landing` only, via a hidden temporary file and a rename."""
    root = landing.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.parent.resolve().is_relative_to(root):
        raise ValueError(f"refusing to write outside the landing zone: {path}")
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
    return path
