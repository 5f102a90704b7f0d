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
# The reader reads attributes its own way: a key is whatever stands before `=`, a value is
# quoted with `"` or `'` and may hold a `>`, a repeated key may win or not (it stops at the first
# r, s and t), a reference may be in lower case or longer than any real one, and elements may
# carry a namespace prefix (`<x:c …>`). So the check does not follow its parsing: every
# `r="…"` anywhere bounds where a cell or row may be, and a part whose every cell and row tag
# opens with its reference (`<c r="B2"`, as every usual writer writes it) and which holds no
# other is taken as placed by them. Any other part may have cells the reader places one after
# another (read again: the `unplaced` reading below).
_REFERENCE = re.compile(rb"""r\s*=\s*(["'])([A-Za-z]*)([0-9]+)\1""")
_TAG = re.compile(rb"""<(?:\w+:)?(c|row)(?=[\s>/])( r=(["'])[A-Za-z]*[0-9]+\3)?""")
_CLAIM = re.compile(
    rb"<(?:\w+:)?dimension(?=\s)(?:[^>\"']|\"[^\"]*\"|'[^']*')*?"
    + rb"""\sref\s*=\s*(["'])(?:[A-Za-z]*[0-9]*:)?([A-Za-z]+)([0-9]+)\1"""
)
# any cell or row (for counting a row's cells, in the `unplaced` reading)
_ANY_CELL = re.compile(rb"<(?:\w+:)?c[\s>/]")
_ANY_ROW = re.compile(rb"<(?:\w+:)?row[\s>/]")
# the reader reserves room for as many shared strings as their part says it holds
_STRINGS = re.compile(rb"""uniqueCount\s*=\s*(["'])\+?([0-9]+)\1""")
_TAG_BYTES = 1 << 20  # no real tag, nor the text after the last one in a chunk, is this long
_BEYOND = 1 << 32  # a reference the reader's 32-bit arithmetic would wrap round: refused


def _column_number(letters: bytes) -> int:
    """A column's number (from 1), as the reader reads it (upper or lower case)."""
    if len(letters) > 6:  # past any sheet's columns (XFD): beyond what the reader counts
        return _BEYOND
    n = 0
    for ch in letters:
        n = n * 26 + (ch - 64 if ch <= 90 else ch - 96)
    return n


def _row_number(digits: bytes) -> int:
    return int(digits) if len(digits) <= 9 else _BEYOND


def check_sheet_sizes(data: bytes, name: str) -> None:
    """Raise `SourceReadError` if a sheet of the .xlsx in `data` claims more than `MAX_CELLS`
    cells (its <dimension>, or its furthest cell or row), its shared strings claim more than
    that many strings, or a part unpacks to more than `MAX_SHEET_BYTES`. Every part is read as
    a sheet may be: the workbook says where its sheets are, not the parts' names."""
    try:
        book = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise SourceReadError(f"{name}: cannot be read as XLSX (not a zip archive)") from exc
    with book:
        for info in book.infolist():
            part = info.filename.rsplit("/", 1)[-1]
            size = _claimed(book, info, name) or _claimed(book, info, name, unplaced=True)
            if size and size[0] * size[1] > MAX_CELLS:
                raise SourceReadError(
                    f"{name}: sheet {part} claims {size[0]} rows × {size[1]} columns, more than "
                    f"the {MAX_CELLS} cells kesu reads; not read (re-export only the used range)"
                )


def _claimed(
    book: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, unplaced: bool = False
) -> tuple[int, int] | None:
    """The rows × columns a part may span: its <dimension>, its furthest reference. None if a
    cell or row tag does not open with its reference, or a reference stands elsewhere, unless
    `unplaced`: then, reading it again, any cell may be placed after the one before it, so a
    row's cells may reach that many columns past the furthest reference, and rows that many rows
    past the furthest (every usual writer writes references: the first reading is the only one)."""
    sheet = info.filename.startswith("xl/worksheets/")
    # the reader loads the shared strings whole: a few MB of zip could be many GB
    what = "a sheet" if sheet else f"a part of the workbook ({info.filename.rsplit('/', 1)[-1]})"
    rows = cols = widest = carry = tags_of_rows = 0
    for text in _whole_tags(_unpacked(book, info, name, what), name):
        if b"uniqueCount" in text:
            for _, digits in _STRINGS.findall(text):
                if _row_number(digits) > MAX_CELLS:
                    raise SourceReadError(
                        f"{name}: its shared strings claim {digits.decode()[:20]} strings, "
                        f"more than the {MAX_CELLS} kesu reads; not read"
                    )
        references = _REFERENCE.findall(text)
        bounds = references + _CLAIM.findall(text) if b"dimension" in text else references
        if bounds:
            # by distinct value: most cells share their row's number and their column's letters
            _, letters, digits = zip(*bounds, strict=True)
            cols = max(cols, *map(_column_number, set(letters) - {b""}), 0)
            rows = max(rows, *map(_row_number, set(digits)), 0)
        if unplaced:
            tags_of_rows += len(_ANY_ROW.findall(text))
            widest, carry = _cells_per_row(text, widest, carry)
        elif tags := _TAG.findall(text):
            opening = [first for _, first, _ in tags]
            placed = len(opening) - opening.count(b"")
            if placed < len(tags) or placed != len(references):
                return None
    return rows + tags_of_rows, cols + widest


def _whole_tags(chunks: Iterator[bytes], name: str) -> Iterator[bytes]:
    """The chunks, each ending before the last `<` of the XML read so far (what follows it goes
    on at the start of the next), so that no tag is cut in two: a reference cut at a chunk's
    end was missed. `SourceReadError` if that remainder outgrows `_TAG_BYTES`."""
    rest = b""
    for chunk in chunks:
        text = rest + chunk
        cut = text.rfind(b"<")
        if cut <= 0:  # no tag begins after the first byte: all of it goes on
            rest = text
        else:
            rest = text[cut:]
            yield text[:cut]
        if len(rest) > _TAG_BYTES:
            raise SourceReadError(
                f"{name}: cannot be read as XLSX (an XML tag or text runs over "
                f"{_TAG_BYTES >> 20} MiB)"
            )
    yield rest


def _cells_per_row(text: bytes, widest: int, carry: int) -> tuple[int, int]:
    """The most cells in one row so far (`widest`), and how many the row that `text` ends in
    has (`carry`, with which the next chunk's first row goes on)."""
    counts = [len(_ANY_CELL.findall(row)) for row in _ANY_ROW.split(text)]
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
