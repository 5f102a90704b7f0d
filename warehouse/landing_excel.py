"""Reading an Excel landing file (.xlsx or .xls): the first sheet, header in its first row.

The workbook is untrusted: before the Excel reader (calamine, through fastexcel) runs, an
.xlsx's sheets are size-checked (`kesu.warehouse.xlsx_xml`) and an .xls's compound file and sheets
walked as the reader will walk them (`kesu.warehouse.xls_biff`), so that no file can make it
allocate without bound or abort the process; a reader that fails on a file anyway fails that file
alone. A cell holding an Excel error value (`#N/A` of a failed lookup, `#DIV/0!`), which the reader
gives as empty, holds its record; so does a number of 16 or more digits (an ID typed as a number:
Excel keeps 15). A record's line is its row in the sheet.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
from kesu.transforms.parsing import clean
from kesu.warehouse.landing import (
    LINE,
    RAGGED,
    SourceReadError,
    SourceTable,
    clean_headers,
    unique_headers,
)
from kesu.warehouse.xls_biff import OLE_SIGNATURE, XlsSheet, check_xls
from kesu.warehouse.xlsx_xml import check_sheet_sizes, header_row, long_numbers

if TYPE_CHECKING:
    import fastexcel

ZIP_SIGNATURE = b"PK\x03\x04"  # an .xlsx is a zip archive; an .xls is not

# Excel's error values, as the reader names them (`Error(Div0)`)
EXCEL_ERRORS = {
    "Div0": "#DIV/0!",
    "NA": "#N/A",
    "Value": "#VALUE!",
    "Ref": "#REF!",
    "Name": "#NAME?",
    "Num": "#NUM!",
    "Null": "#NULL!",
    "GettingData": "#GETTING_DATA",
}
_ERROR_KIND = re.compile(r"Error\((\w+)\)")
_OUT_OF_DATES = re.compile(r"got 'DateTime\(")  # calamine's detail of a date it cannot convert


def _cell_reasons(
    errors: object, long: dict[int, list[int]], headers: list[str], lines: int, first: int
) -> list[str | None]:
    """`RAGGED` for each of `lines` records (the first on line `first`): which of its cells hold
    an Excel error value (a formula that failed, `#N/A` of a lookup), which the reader gives as
    empty, or a number Excel has cut short (`long`: `xlsx_xml.long_numbers`). Neither the value
    nor the cell's formula is quoted (a long number is an ID's, or a card's); the error's name
    is not personal data."""
    held: dict[int, list[str]] = {}

    def name(column: int) -> str:
        return headers[column] if column < len(headers) else f"column {column + 1}"

    for error in getattr(errors, "errors", []):
        row, column = error.offset_position
        held.setdefault(row, []).append(f"{name(column)} {_unreadable(error)}")
    for row, columns in long.items():
        held.setdefault(row, []).extend(
            f"{name(column)} holds a number of 16 or more digits, more than the 15 Excel keeps: "
            "its last digits are lost (the column must be stored as text)"
            for column in columns
        )
    return [
        f"line {row + first}: " + "; ".join(held[row]) if row in held else None
        for row in range(lines)
    ]


def _unreadable(error: object) -> str:
    """Why the reader gave a cell as empty: an Excel error value, or a date-formatted number
    beyond any date (Excel shows `####`), which the reader cannot turn into one."""
    if _OUT_OF_DATES.search(getattr(error, "detail", "")):
        return "holds a date-formatted number beyond any date Excel can show (shown as ####)"
    return f"holds {_error_value(error)}, not a value"


def _error_value(error: object) -> str:
    """An error cell of the reader's, named as Excel shows it (`#REF!`) where the reader says."""
    kind = _ERROR_KIND.search(getattr(error, "detail", ""))
    code = EXCEL_ERRORS.get(kind.group(1), "") if kind else ""
    return f"an Excel error value ({code})" if code else "an Excel error value"


def _header_errors(reader: fastexcel.ExcelReader) -> dict[int, str]:
    """The header cells of the first sheet that hold an Excel error value (a header made by a
    formula that broke: `#REF!`), by column: the reader gives them as no header. Read, as the
    header row alone, only for a sheet with a column of values without a header."""
    sheet = reader.load_sheet(0, header_row=None, n_rows=1, dtypes="string")
    _, errors = sheet.to_arrow_with_errors()
    return {
        error.offset_position[1]: _error_value(error)
        for error in getattr(errors, "errors", [])
        if error.offset_position[0] == 0
    }


def _panicked(exc: BaseException) -> bool:
    """A panic inside the Rust reader comes out as pyo3's `PanicException`, which is no
    `Exception` (and pyo3 does not export it)."""
    return type(exc).__name__ == "PanicException"


def _reader_failed(exc: BaseException) -> bool:
    """Whether `exc` is the Excel reader failing on the file (fastexcel raises its own
    exceptions, or panics), not an interrupt."""
    return isinstance(exc, Exception) or _panicked(exc)


def read_excel(path: Path, data: bytes | None = None) -> SourceTable:
    """The first sheet of an .xlsx or .xls file, header in its first row with a value (rows
    above it that are empty, or only formatted, are skipped), as text columns."""
    import fastexcel  # only Excel files pay for it

    if data is None:
        data = path.read_bytes()
    # by its bytes, not its name: the reader goes by the bytes too, so a zip named .xls is read
    # as an .xlsx (its size unchecked, a 5 KB file could claim 512 GiB), and an .xls renamed
    # .xlsx as an .xls
    xlsx = data.startswith(ZIP_SIGNATURE)
    xls = XlsSheet()  # what an .xls's first sheet says (an .xlsx's is read below)
    if data.startswith(OLE_SIGNATURE):
        xls = check_xls(data, path.name)
    elif xlsx or path.suffix.lower() == ".xlsx":
        check_sheet_sizes(data, path.name)
    kind = path.suffix.lower().lstrip(".").upper()
    try:
        reader = fastexcel.read_excel(data)
        sheet = reader.load_sheet(0, header_row=0, dtypes="string")
        # an error value (`#N/A`) is no string: given as empty, and named in `errors`
        records, errors = sheet.to_arrow_with_errors()
        frame = pl.DataFrame(pl.from_arrow(records))
    except BaseException as exc:
        if not _reader_failed(exc):
            raise
        # its message may quote cells: only its kind is repeated
        what = "the Excel reader crashed on it" if _panicked(exc) else type(exc).__name__
        raise SourceReadError(f"{path.name}: cannot be read as {kind} ({what})") from exc
    sheets = reader.sheet_names
    if frame.width == 0:  # not a cell with a value: no header to name as missing
        others = f" (the workbook has {len(sheets)} sheets)" if len(sheets) > 1 else ""
        raise SourceReadError(
            f"{path.name}: its first sheet '{sheets[0]}' is empty{others}; the header row and "
            "the records must be on the first sheet"
        )
    notes = []
    if len(sheets) > 1:
        notes.append(f"read the first sheet '{sheets[0]}' of {len(sheets)}")
    # A stray cell far to the right makes the reader span every column up to it: those between,
    # without a header or any value, are none of the file's (16,000 of them cost seconds).
    nulls = frame.null_count().row(0) if frame.width else ()
    hollow = [
        i
        for i, (c, n) in enumerate(zip(frame.columns, nulls, strict=True))
        if c.startswith("__UNNAMED__") and n == frame.height
    ]
    # fastexcel names a column without a header `__UNNAMED__<i>`; name it as the CSV reader does
    # so that staging reports it instead of dropping it as one of kesu's own `_` columns, and
    # say so where the header cell holds an error value (`#REF!` shows there, not an empty cell).
    names = unique_headers(clean_headers(frame.columns, notes))
    columns = frame.columns  # once: the property builds the list each time
    unnamed = {i for i, c in enumerate(columns) if c.startswith("__UNNAMED__")}
    broken = _header_errors(reader) if unnamed - set(hollow) else {}
    frame = frame.rename(
        {
            c: names[i]
            if i not in unnamed
            else f"(column {i + 1}: its header holds {broken[i]})"
            if i in broken
            else f"(column {i + 1} has no header)"
            for i, c in enumerate(columns)
        }
    )
    # a record's line is its row in the sheet, where the header may not be the first row
    top = header_row(data) if xlsx else xls.header_row
    long = long_numbers(data, top) if xlsx else xls.long_numbers
    first = top + 1
    frame = frame.with_columns((pl.int_range(0, pl.len(), dtype=pl.Int64) + first).alias(LINE))
    reasons = _cell_reasons(errors, long, frame.columns, frame.height, first)
    frame = frame.with_columns(pl.Series(RAGGED, reasons, dtype=pl.String))
    if hollow:  # after the reasons, which count columns as the sheet does
        columns = frame.columns  # once: the property builds the list each time
        frame = frame.drop([columns[i] for i in hollow])
        notes.append(f"ignored {len(hollow)} empty column(s) without a header")
    # Excel keeps formatted-but-empty rows (cells without a value, or of blank or invisible text):
    # they are no records, as a CSV's blank lines are not. A row whose only cell holds an error
    # value is one.
    data_cols = [c for c in frame.columns if c not in (LINE, RAGGED)]
    blank = [clean(pl.col(c)).is_null() for c in data_cols]  # a zero-width space is blank too
    empty = frame.select(pl.all_horizontal(*blank, pl.col(RAGGED).is_null())).to_series()
    trailing = 0
    for is_empty in reversed(empty.to_list()):
        if not is_empty:
            break
        trailing += 1
    if trailing:
        frame, empty = frame.head(frame.height - trailing), empty.head(empty.len() - trailing)
        notes.append(f"ignored {trailing} empty row(s) at the end of the sheet")
    if empty.any():
        lines = frame.filter(empty)[LINE].to_list()
        shown = ", ".join(str(n) for n in lines[:10]) + (", …" if len(lines) > 10 else "")
        notes.append(f"ignored {len(lines)} empty row(s) between the records: line {shown}")
        frame = frame.filter(~empty)
    return SourceTable(frame, "xlsx", notes)
