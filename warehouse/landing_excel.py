"""Reading an Excel landing file (.xlsx or .xls): the first sheet, header in the first row.

The workbook is untrusted: an .xlsx's sheets are size-checked before the Excel reader (calamine,
through fastexcel) allocates them.
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


def read_excel(path: Path, data: bytes | None = None) -> SourceTable:
    """The first sheet of an .xlsx or .xls file, header in the first row, as text columns."""
    import fastexcel  # only Excel files pay for it

    if data is None:
        data = path.read_bytes()
    if path.suffix.lower() == ".xlsx":
        check_sheet_sizes(data, path.name)
    kind = path.suffix.lower().lstrip(".").upper()
    try:
        reader = fastexcel.read_excel(data)
        sheet = reader.load_sheet(0, header_row=0, dtypes="string")
        frame = sheet.to_polars()
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
    frame = frame.with_columns((pl.int_range(0, pl.len(), dtype=pl.Int64) + 2).alias(LINE))
    frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(RAGGED))
    # Excel keeps formatted-but-empty rows at the end (cells without a value, or blank text);
    # they are not records.
    data_cols = [c for c in frame.columns if c not in (LINE, RAGGED)]
    blank = (pl.col(c).str.strip_chars().replace("", None).is_null() for c in data_cols)
    empty = frame.select(pl.all_horizontal(blank)).to_series()
    trailing = 0
    for is_empty in reversed(empty.to_list()):
        if not is_empty:
            break
        trailing += 1
    if trailing:
        frame = frame.head(frame.height - trailing)
        notes.append(f"ignored {trailing} empty row(s) at the end of the sheet")
    return SourceTable(frame, "xlsx", notes)
