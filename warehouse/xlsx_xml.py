"""What an .xlsx's sheet XML says that the Excel reader (calamine, through fastexcel) does not:
how big a sheet claims to be, before the reader allocates it; on which row of the sheet the header
stands; which numeric cells hold more digits than Excel keeps. Read with regular expressions over
the unpacked XML, a chunk at a time (never the whole sheet at once), and only as far as needed.

Over 250 lines: the size check and the placement of cells both read the XML's references as
the reader reads them (cases, quotes, prefixes, cells without one); those rules are stated once.
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


_FIRST_SHEET = re.compile(rb'<(?:\w+:)?sheet\b[^>]*?\s\w+:id="([^"]+)"')
_RELATIONSHIP = re.compile(rb"<(?:\w+:)?Relationship\b[^>]*>")
_ATTRIBUTE = rb'\s%s="([^"]*)"'


def header_row(data: bytes) -> int:
    """The sheet row (from 1) of the first sheet's header in the .xlsx `data`: the first row
    holding a value, as the Excel reader starts there (rows written in order, as every writer
    writes them). Reads the sheet only up to that row."""
    try:
        for row, _, _ in _placed_cells(data):
            return row + 1
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


# A numeric cell's value (no type, or `t="n"`) with 16 or more digits before the point, written
# out or as an exponent: more than the 15 significant digits Excel keeps.
_LONG = rb"-?(?:[0-9]{16,}(?:\.[0-9]*)?|[1-9](?:\.[0-9]+)?[Ee]\+?(?:1[5-9]|[2-9][0-9]|[0-9]{3}))"
_LONG_VALUE = re.compile(_LONG)
# a value's text runs to the next `<`: in the sheet's chunks (`_sheet_xml`) it is never cut
_LONG_NUMBER = re.compile(rb"<(?:\w+:)?v(?:\s[^>]*)?>" + _LONG + rb"(?=<|\Z)")


def long_numbers(data: bytes, first_row: int) -> dict[int, list[int]]:
    """The numeric cells of the first sheet whose value has 16 or more digits (an ID or card
    number typed as a number: Excel has already lost its last digits), as {record index: column
    indexes}, counted as the Excel reader does: records from the row after `first_row` (the
    header's), columns from the sheet's first column with a value. Most sheets have none, and
    are read once for a pattern; the cells are placed only when one is found."""
    if not any(_LONG_NUMBER.search(text) for text in _sheet_xml(data)):
        return {}
    cells = list(_placed_cells(data, to_the_end=True))
    first_column = min(column for _, column, _ in cells)
    held: dict[int, list[int]] = {}
    for row, column, long in sorted(cells):
        if long and row >= first_row:  # `row` from 0: the header's row is `first_row` - 1
            held.setdefault(row - first_row, []).append(column - first_column)
    return held


# Where the Excel reader (calamine 0.36's cell reader) places a cell: by its own reference if it
# has one (`r`, letters in either case, in either quotes), else after the cell before it in its
# row; a row's `r` sets the row, and a row's end (or an empty `<row/>`) moves on to the next. So
# a writer that leaves references out, as the format allows, gets its lines and long numbers
# where the reader puts them. A namespace prefix is read through, as the reader reads it.
_TAG_BODY = rb"""(?:[^>"']|"[^"]*"|'[^']*')*"""  # a tag's attributes, a `>` inside quotes too
_PART = re.compile(
    # a run of empty cells (`<c r="B3" s="1"/>`: formatted, no value), taken at once: only the
    # last one's place matters, and a formatted region can hold hundreds of thousands
    rb"((?:<(?:[^\s<>/:\"']+:)?c(?=[\s/])" + _TAG_BODY + rb"/>\s*)+)"
    rb"|<(/?)(?:[^\s<>/:\"']+:)?(row|c|v|is)(?=[\s/>])(" + _TAG_BODY + rb")>"
)
_EMPTY_CELL = re.compile(rb"<(?:[^\s<>/:\"']+:)?c(?=[\s/])(" + _TAG_BODY + rb")/>")
_KEYS = re.compile(rb"""(?<!\S)(r|t)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_POSITION = re.compile(rb"([A-Za-z]*)([0-9]+)")


def _placed_cells(data: bytes, to_the_end: bool = False) -> Iterator[tuple[int, int, bool]]:
    """(row, column, long) of each cell of the first sheet that holds a value, from 0, where the
    reader places it, in the order written; `long`: a number of 16 or more digits. A cell holds
    a value if it has an inline string, or a `<v>` with text (an empty string of `t="str"` too)."""
    row = column = 0
    cell: tuple[int, int, bytes | None] | None = None  # the open cell: where, its type
    valued = long = False
    for text in _sheet_xml(data):
        for part in _PART.finditer(text):
            run, closing, name, attributes = part.groups()
            if run:  # empty cells: the column after the last (each without a place counts)
                column = _after_empty_cells(run, column)
                continue
            empty = attributes.endswith(b"/")
            if name == b"row":
                if not closing and (at := _position(_keys(attributes).get(b"r"))) is not None:
                    row = at[0]
                if closing or empty:
                    row, column = row + 1, 0
            elif name == b"c":
                if not closing:
                    keys = _keys(attributes)
                    row_of_cell, column = _cell_position(keys.get(b"r")) or (row, column)
                    cell, valued, long = (row_of_cell, column, keys.get(b"t")), False, False
                if (closing or empty) and cell is not None:
                    if valued:
                        yield cell[0], cell[1], long
                        if not to_the_end:
                            return
                    cell, column = None, column + 1
            elif cell is not None and not closing:
                kind = cell[2]
                if name == b"is":
                    valued = True
                elif not empty and kind not in (b"inlineStr", b"is"):
                    end = text.find(b"<", part.end())
                    value = text[part.end() : end if end >= 0 else None]
                    valued = valued or bool(value) or kind == b"str"
                    long = long or (kind in (None, b"n") and bool(_LONG_VALUE.fullmatch(value)))


def _after_empty_cells(run: bytes, column: int) -> int:
    """The column after a run of empty cells that starts at `column`: after the last one's own
    reference, and one more for each after it without one (every usual writer gives each one)."""
    if at := _cell_position(_keys(run[run.rfind(b"<") :]).get(b"r")):
        return at[1] + 1
    for attributes in _EMPTY_CELL.findall(run):
        at = _cell_position(_keys(attributes).get(b"r"))
        column = (at[1] if at else column) + 1
    return column


def _keys(attributes: bytes) -> dict[bytes, bytes]:
    """The first `r` and `t` of a tag's `attributes`, either quoted."""
    keys: dict[bytes, bytes] = {}
    for key, double, single in _KEYS.findall(attributes):
        keys.setdefault(key, double or single)
    return keys


def _position(reference: bytes | None) -> tuple[int, int] | None:
    """(row, column) from 0 of a reference (`B3`; column -1 if it has no letters, as a row's
    `r` has none), as the reader reads it; None if absent or not one."""
    found = _POSITION.fullmatch(reference) if reference else None
    if found is None or _row_number(found.group(2)) < 1:
        return None
    return _row_number(found.group(2)) - 1, _column_number(found.group(1)) - 1


def _cell_position(reference: bytes | None) -> tuple[int, int] | None:
    """A cell's (row, column) from 0 by its own reference; None if it has none the reader reads
    (then it goes after the cell before it)."""
    at = _position(reference)
    return at if at is not None and at[1] >= 0 else None


def _sheet_xml(data: bytes) -> Iterator[bytes]:
    """The first sheet's XML a chunk at a time, each ending before a tag (`_whole_tags`); none if
    the workbook names no first sheet."""
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        member = _first_sheet(book)
        if member is not None:
            yield from _whole_tags(_unpacked(book, book.getinfo(member), "", "a sheet"), "")
