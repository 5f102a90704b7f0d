"""Reading an Excel landing file (.xlsx or .xls): the first sheet, header in its first row.

The workbook is untrusted: an .xlsx's sheets are size-checked before the Excel reader (calamine,
through fastexcel) allocates them. A cell holding an Excel error value (`#N/A` of a failed lookup,
`#DIV/0!`), which the reader gives as empty, holds its record; a record's line is its row in the
sheet (of an .xlsx: an .xls is taken to have its header in the first row).
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import polars as pl
from kesu.warehouse.landing import LINE, RAGGED, SourceReadError, SourceTable, _unique_header

# A sheet's size is checked before the Excel reader allocates it: calamine allocates the whole
# declared rectangle, so a 5 KB file claiming cell XFD1048576 would ask for 512 GiB and abort the
# process. A bank's day of transfers is a few thousand cells.
MAX_CELLS = 20_000_000
MAX_SHEET_BYTES = 1 << 30  # uncompressed XML of one sheet
_CELL_REF = re.compile(
    rb'<(?:c|dimension)\b[^>]*?\br(?:ef)?="(?:[A-Z]+[0-9]+:)?([A-Z]{1,3})([0-9]{1,7})"'
)


def _column_number(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n


def check_sheet_sizes(data: bytes, name: str) -> None:
    """Raise `SourceReadError` if a sheet of the .xlsx in `data` claims more than `MAX_CELLS`
    cells (its <dimension>, or its furthest cell) or unpacks to more than `MAX_SHEET_BYTES`."""
    try:
        book = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise SourceReadError(f"{name}: cannot be read as XLSX (not a zip archive)") from exc
    with book:
        for info in book.infolist():
            if not (info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml")):
                continue
            rows = cols = read = 0
            tail = b""
            with book.open(info) as sheet:
                while chunk := sheet.read(1 << 20):
                    read += len(chunk)
                    if read > MAX_SHEET_BYTES:
                        raise SourceReadError(
                            f"{name}: a sheet unpacks to more than {MAX_SHEET_BYTES >> 20} MiB; "
                            "not read (split the export)"
                        )
                    text = tail + chunk
                    if cells := _CELL_REF.findall(text):  # by distinct value: ~4x less Python
                        rows = max(rows, *(int(digits) for digits in {d for _, d in cells}))
                        cols = max(cols, *(_column_number(c) for c in {c for c, _ in cells}))
                    tail = text[-64:]
            if rows * cols > MAX_CELLS:
                raise SourceReadError(
                    f"{name}: sheet {info.filename.rsplit('/', 1)[-1]} claims {rows} rows × "
                    f"{cols} columns, more than the {MAX_CELLS} cells kesu reads; not read "
                    "(re-export only the used range)"
                )


# The first cell that holds a value (`<v>`, or an inline string `<is>`), after its formula if any:
# the Excel reader starts the sheet at that cell's row, empty or merely formatted rows before it
# skipped, so the header is there.
_VALUED_CELL = re.compile(
    rb'<c\b[^>]*?\br="[A-Z]{1,3}([0-9]{1,7})"[^>]*>\s*(?:<f\b[^>]*?(?:/>|>[^<]*</f>)\s*)?<(?:v|is)\b'
)
_FIRST_SHEET = re.compile(rb'<(?:\w+:)?sheet\b[^>]*?\s\w+:id="([^"]+)"')
_RELATIONSHIP = re.compile(rb"<(?:\w+:)?Relationship\b[^>]*>")
_ATTRIBUTE = rb'\s%s="([^"]*)"'
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


def header_row(data: bytes) -> int:
    """The sheet row (from 1) of the first sheet's header in the .xlsx `data`: the first row
    holding a value, as the Excel reader starts there. 1 if it cannot be told (a writer that
    leaves out cell references, which the format allows). Reads the sheet only up to that row."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as book:
            member = _first_sheet(book)
            if member is None:
                return 1
            seen = b""
            with book.open(member) as sheet:
                while chunk := sheet.read(1 << 16):
                    seen = seen[-4096:] + chunk  # a cell's start may straddle two chunks
                    if found := _VALUED_CELL.search(seen):
                        return int(found.group(1))
    except (zipfile.BadZipFile, OSError):  # the reader read it; the lines then count from 2
        return 1
    return 1


def _first_sheet(book: zipfile.ZipFile) -> str | None:
    """The zip member of the workbook's first sheet (the one the Excel reader loads first)."""
    try:
        workbook = book.read("xl/workbook.xml")
        rels = book.read("xl/_rels/workbook.xml.rels")
    except KeyError:
        return None
    first = _FIRST_SHEET.search(workbook)
    if not first:
        return None
    for element in _RELATIONSHIP.findall(rels):  # attributes in any order
        ident = re.search(_ATTRIBUTE % b"Id", element)
        target = re.search(_ATTRIBUTE % b"Target", element)
        if ident and target and ident.group(1) == first.group(1):
            break
    else:
        return None
    path = target.group(1).decode()
    member = path.lstrip("/") if path.startswith("/") else f"xl/{path}"
    return member if member in book.namelist() else None


def _error_reasons(errors: object, headers: list[str], lines: int, first: int) -> list[str | None]:
    """`RAGGED` for each of `lines` records: which of its cells hold an Excel error value (a
    formula that failed, `#N/A` of a lookup), which the reader gives as empty. The error's name
    is not personal data; the cell's formula is not quoted."""
    held: dict[int, list[str]] = {}
    for error in getattr(errors, "errors", []):
        row, column = error.offset_position
        kind = _ERROR_KIND.search(error.detail)
        code = EXCEL_ERRORS.get(kind.group(1), "") if kind else ""
        what = f"an Excel error value ({code})" if code else "an Excel error value"
        name = headers[column] if column < len(headers) else f"column {column + 1}"
        held.setdefault(row, []).append(f"{name} holds {what}, not a value")
    return [
        f"line {row + first}: " + "; ".join(held[row]) if row in held else None
        for row in range(lines)
    ]


def read_excel(path: Path, data: bytes | None = None) -> SourceTable:
    """The first sheet of an .xlsx or .xls file, header in its first row with a value (rows
    above it that are empty, or only formatted, are skipped), as text columns."""
    import fastexcel  # only Excel files pay for it

    if data is None:
        data = path.read_bytes()
    if path.suffix.lower() == ".xlsx":
        check_sheet_sizes(data, path.name)
    kind = path.suffix.lower().lstrip(".").upper()
    try:
        reader = fastexcel.read_excel(data)
        sheet = reader.load_sheet(0, header_row=0, dtypes="string")
        # an error value (`#N/A`) is no string: given as empty, and named in `errors`
        records, errors = sheet.to_arrow_with_errors()
        frame = pl.DataFrame(pl.from_arrow(records))
    except Exception as exc:  # fastexcel raises its own hierarchy; all mean "unreadable"
        # its message may quote cells: only its kind is repeated
        raise SourceReadError(
            f"{path.name}: cannot be read as {kind} ({type(exc).__name__})"
        ) from exc
    notes = []
    if len(reader.sheet_names) > 1:
        notes.append(f"read the first sheet '{reader.sheet_names[0]}' of {len(reader.sheet_names)}")
    # fastexcel names a column without a header `__UNNAMED__<i>`; name it as the CSV reader does
    # so that staging reports it instead of dropping it as one of kesu's own `_` columns.
    frame = frame.rename(
        {
            c: f"(column {i + 1} has no header)"
            if c.startswith("__UNNAMED__")
            else _unique_header([h.strip() for h in frame.columns], i)
            for i, c in enumerate(frame.columns)
        }
    )
    # a record's line is its row in the sheet, where the header may not be the first row
    first = header_row(data) + 1 if path.suffix.lower() == ".xlsx" else 2
    frame = frame.with_columns((pl.int_range(0, pl.len(), dtype=pl.Int64) + first).alias(LINE))
    reasons = _error_reasons(errors, frame.columns, frame.height, first)
    frame = frame.with_columns(pl.Series(RAGGED, reasons, dtype=pl.String))
    # Excel keeps formatted-but-empty rows (cells without a value, or blank text): they are no
    # records, as a CSV's blank lines are not. A row whose only cell holds an error value is one.
    data_cols = [c for c in frame.columns if c not in (LINE, RAGGED)]
    blank = [pl.col(c).str.strip_chars().replace("", None).is_null() for c in data_cols]
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
