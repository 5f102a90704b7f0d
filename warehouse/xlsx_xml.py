"""What an .xlsx's sheet XML says that the Excel reader (calamine, through fastexcel) does not:
how big a sheet claims to be, before the reader allocates it; on which row of the sheet the header
stands; which numeric cells hold more digits than Excel keeps. Read with regular expressions over
the unpacked XML, a chunk at a time (never the whole sheet at once), and only as far as needed.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator

from kesu.warehouse.landing import SourceReadError

# A sheet's size is checked before the Excel reader allocates it: calamine allocates the whole
# declared rectangle, so a 5 KB file claiming cell XFD1048576 would ask for 512 GiB and abort the
# process. A bank's day of transfers is a few thousand cells.
MAX_CELLS = 20_000_000
MAX_SHEET_BYTES = 1 << 30  # uncompressed XML of one sheet
# Elements may carry a namespace prefix (`<x:c …>`): the reader reads them all the same.
_CELL_REF = re.compile(
    rb'<(?:\w+:)?(?:c|dimension)\b[^>]*?\br(?:ef)?="(?:[A-Z]+[0-9]+:)?([A-Z]{1,3})([0-9]{1,7})"'
)
_ROW_REF = re.compile(rb'<(?:\w+:)?row\b[^>]*?\sr="([0-9]{1,7})"')
# any cell or row, with a reference or without (placed after the one before it)
_ANY_CELL = re.compile(rb"<(?:\w+:)?c[\s>/]")
_ANY_ROW = re.compile(rb"<(?:\w+:)?row[\s>/]")
_REFERENCED_CELL = re.compile(rb'<(?:\w+:)?c\b[^>]*?\sr="')


def _column_number(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n


def check_sheet_sizes(data: bytes, name: str) -> None:
    """Raise `SourceReadError` if a sheet of the .xlsx in `data` claims more than `MAX_CELLS`
    cells (its <dimension>, or its furthest cell or row) or unpacks to more than
    `MAX_SHEET_BYTES`. A cell or row without a reference is placed after the one before it: a
    row's cells without one may reach that many columns past the furthest referenced column,
    and rows without one that many rows past the furthest referenced row."""
    try:
        book = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise SourceReadError(f"{name}: cannot be read as XLSX (not a zip archive)") from exc
    with book:
        for info in book.infolist():
            if not (info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml")):
                # the reader loads the shared strings whole: a few MB of zip could be many GB
                part = f"a part of the workbook ({info.filename.rsplit('/', 1)[-1]})"
                for _ in _unpacked(book, info, name, part):
                    pass
                continue
            rows = cols = widest = carry = unplaced_rows = 0
            tail = b""
            for chunk in _unpacked(book, info, name, "a sheet"):
                text = tail + chunk
                if cells := _CELL_REF.findall(text):  # by distinct value: ~4x less Python
                    rows = max(rows, *(int(digits) for digits in {d for _, d in cells}))
                    cols = max(cols, *(_column_number(c) for c in {c for c, _ in cells}))
                if row_refs := _ROW_REF.findall(text):
                    rows = max(rows, *(int(digits) for digits in set(row_refs)))
                unplaced_rows += len(_ANY_ROW.findall(text)) - len(row_refs)
                if carry or len(_ANY_CELL.findall(text)) > len(_REFERENCED_CELL.findall(text)):
                    widest, carry = _unplaced_cells_per_row(text, widest, carry)
                tail = text[-64:]
            rows, cols = rows + unplaced_rows, cols + widest
            if rows * cols > MAX_CELLS:
                raise SourceReadError(
                    f"{name}: sheet {info.filename.rsplit('/', 1)[-1]} claims {rows} rows × "
                    f"{cols} columns, more than the {MAX_CELLS} cells kesu reads; not read "
                    "(re-export only the used range)"
                )


def _unplaced_cells_per_row(text: bytes, widest: int, carry: int) -> tuple[int, int]:
    """The most cells without a reference in one row so far (`widest`), and how many the row
    that `text` ends in has (`carry`, with which the next chunk's first row goes on). Only for
    sheets whose writer leaves references out (every usual one writes them)."""
    counts = [
        len(_ANY_CELL.findall(row)) - len(_REFERENCED_CELL.findall(row))
        for row in _ANY_ROW.split(text)
    ]
    counts[0] += carry  # the row the chunk before ended in goes on here
    return max(widest, *counts), counts[-1]


def _unpacked(
    book: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, what: str
) -> Iterator[bytes]:
    """The part `info` of the workbook unpacked, a chunk at a time; `SourceReadError` past
    `MAX_SHEET_BYTES`, counted while unpacking (a zip's declared sizes can lie). `what` names
    the part in the message."""
    read = 0
    with book.open(info) as part:
        while chunk := part.read(1 << 20):
            read += len(chunk)
            if read > MAX_SHEET_BYTES:
                raise SourceReadError(
                    f"{name}: {what} unpacks to more than {MAX_SHEET_BYTES >> 20} MiB; not read "
                    "(split the export)"
                )
            yield chunk


# A cell that holds a value (`<v>`, or an inline string `<is>`, after its formula if any): its
# column and row. The Excel reader starts the sheet at the first row and the first column that
# hold one (rows and columns before them, empty or merely formatted, skipped): the header is there.
_VALUED_CELL = re.compile(
    rb'<(?:\w+:)?c\b[^>]*?\br="([A-Z]{1,3})([0-9]{1,7})"[^>]*>\s*'
    rb"(?:<(?:\w+:)?f\b[^>]*?(?:/>|>[^<]*</(?:\w+:)?f>)\s*)?<(?:\w+:)?(?:v|is)\b"
)
_FIRST_SHEET = re.compile(rb'<(?:\w+:)?sheet\b[^>]*?\s\w+:id="([^"]+)"')
_RELATIONSHIP = re.compile(rb"<(?:\w+:)?Relationship\b[^>]*>")
_ATTRIBUTE = rb'\s%s="([^"]*)"'


def header_row(data: bytes) -> int:
    """The sheet row (from 1) of the first sheet's header in the .xlsx `data`: the first row
    holding a value, as the Excel reader starts there. 1 if it cannot be told (a writer that
    leaves out cell references, which the format allows). Reads the sheet only up to that row."""
    try:
        for text in _sheet_chunks(data, size=1 << 16):
            if found := _VALUED_CELL.search(text):
                return int(found.group(2))
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


# A numeric cell (no type, or `t="n"`) whose value has 16 or more digits before the point,
# written out or as an exponent: more than the 15 significant digits Excel keeps.
_LONG_NUMBER = re.compile(
    rb"<(?:\w+:)?v>-?(?:[0-9]{16,}(?:\.[0-9]*)?|[1-9](?:\.[0-9]+)?[Ee]\+?(?:1[5-9]|[2-9][0-9]|"
    rb"[0-9]{3}))</(?:\w+:)?v>"
)
# how far back a value's cell tag is looked for (past its formula), and how much of a chunk the
# next one repeats
OVERLAP = 16384
_CELL_TAG = re.compile(rb"<(?:\w+:)?c\b[^>]*>")
_CELL_END = re.compile(rb"</(?:\w+:)?c>")
_REF = re.compile(rb'\sr="([A-Z]{1,3})([0-9]{1,7})"')
_TYPE = re.compile(rb'\st="([A-Za-z]+)"')


def long_numbers(data: bytes, first_row: int) -> dict[int, list[int]]:
    """The numeric cells of the first sheet whose value has 16 or more digits (an ID or card
    number typed as a number: Excel has already lost its last digits), as {record index: column
    indexes}, counted as the Excel reader does: records from the row after `first_row` (the
    header's), columns from the sheet's first column with a value. Most sheets have none, and
    are read once for a pattern; the columns are counted only when one is found."""
    cells: set[tuple[int, int]] = set()
    for text in _sheet_chunks(data):
        for found in _LONG_NUMBER.finditer(text):
            tags = list(_CELL_TAG.finditer(text, max(0, found.start() - OVERLAP), found.start()))
            if not tags:
                continue
            tag = tags[-1].group(0)
            if tag.endswith(b"/>") or _CELL_END.search(text, tags[-1].end(), found.start()):
                continue  # the cell before, closed: this value's own tag is further back
            kind, ref = _TYPE.search(tag), _REF.search(tag)
            if ref and (kind is None or kind.group(1) == b"n"):
                cells.add((int(ref.group(2)), _column_number(ref.group(1))))
    if not cells:
        return {}
    first_column = min(
        _column_number(letters)
        for text in _sheet_chunks(data)
        for letters in {letters for letters, _ in _VALUED_CELL.findall(text)}
    )
    held: dict[int, list[int]] = {}
    for row, column in sorted(cells):
        if row > first_row:
            held.setdefault(row - first_row - 1, []).append(column - first_column)
    return held


def _sheet_chunks(data: bytes, size: int = 1 << 20, overlap: int = OVERLAP) -> Iterator[bytes]:
    """The first sheet's XML in chunks, each beginning with the end of the one before (a cell
    may straddle two), so a match may be found twice."""
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        member = _first_sheet(book)
        if member is None:
            return
        tail = b""
        with book.open(member) as sheet:
            while chunk := sheet.read(size):
                text = tail + chunk
                yield text
                tail = text[-overlap:]
