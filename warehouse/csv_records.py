"""A CSV text re-split at line boundaries: every physical record counted, none merged or lost.

The fast reader (Polars) trusts the quotes: one stray quote merges the records up to the next
one, and a quote that never closes swallows the rest of the file. When the cheap checks in
`kesu.warehouse.landing` see that happen, the file is read again here, line by line. A record is
one line, unless a quote opened in a column that may hold a line break (投诉内容, 投诉事项) closes
on a later line and the joined lines make exactly one record. Anything else costs only its own
line: it is kept as a record of its own with a reason that names its line, never its values.

Slower than Polars (a Python loop over lines), so only files that need it come here.
"""

from __future__ import annotations

import csv
import io

import polars as pl

LINE = "_line"
RAGGED = "_ragged"

# Python's csv refuses fields over 128 KiB by default; a stray quote makes such fields, and a
# refusal here would crash the drop instead of holding a record.
csv.field_size_limit(2**31 - 1)


def _fields(line: str) -> list[str]:
    if '"' not in line:
        return line.split(",")
    return next(csv.reader([line], strict=False), [])


def _open_field(line: str) -> int | None:
    """Index of the field whose quote is still open at the end of `line`, else None."""
    if '"' not in line:
        return None
    try:
        for _ in csv.reader(io.StringIO(line), strict=True):
            pass
        return None
    except csv.Error as exc:
        if "unexpected end of data" not in str(exc):
            return None  # e.g. text after a closing quote: odd, but the line is closed
    return len(next(csv.reader([line + '"'], strict=False))) - 1


def _is_record_of_its_own(line: str, width: int) -> bool:
    """A line inside a quoted free text that reads as a whole record: the quote is a stray one.

    Only for real feeds (many columns): free text with that many commas on one line is rare.
    """
    return width >= 5 and line.count('"') % 2 == 0 and len(_fields(line)) == width


def _shape(n: int, width: int, first: int) -> str | None:
    if n == width:
        return None
    if n > width:
        return f"line {first}: the record has more fields than the {width} in the header"
    return (
        f"line {first}: the record has only {n} of the {width} fields in the header "
        "(cut short, or split by a line break outside quotes)"
    )


def resplit(
    text: str,
    headers: list[str],
    multiline: frozenset[int] | None,
    bad_lines: frozenset[int] = frozenset(),
) -> tuple[pl.DataFrame, int, int]:
    """One row per physical record of `text` (the header is line 1): columns `_c0`…, `_line`
    and `_ragged` (why the record cannot load, naming its lines), plus how many blank lines
    were skipped and how many records were held for a quote.

    `multiline`: indexes of the columns that may hold a line break (None: every column).
    `bad_lines`: line numbers that could not be decoded; each is a held record of its own.
    """
    width = len(headers)
    raw = text.split("\n")
    if raw and raw[-1] == "":
        raw.pop()  # the final line break ends the last line, it does not start one
    columns: list[list[str | None]] = [[] for _ in range(width)]
    lines: list[int] = []
    ragged: list[str | None] = []
    blank = held_for_quotes = 0

    def emit(fields: list[str], first: int, why: str | None) -> None:
        lines.append(first)
        ragged.append(why)
        for i in range(width):
            columns[i].append((fields[i] or None) if i < len(fields) else None)

    i = 1
    while i < len(raw):
        number = i + 1
        line = raw[i].removesuffix("\r")
        if number in bad_lines:
            emit([], number, f"line {number}: not valid text in the file's encoding (UTF-8)")
            i += 1
            continue
        if not line:
            blank += 1
            i += 1
            continue
        open_at = _open_field(line)
        if open_at is None:
            fields = _fields(line)
            emit(fields, number, _shape(len(fields), width, number))
            i += 1
            continue
        header = headers[open_at] if open_at < width else f"column {open_at + 1}"
        if multiline is None or open_at in multiline:
            end = _closing_line(raw, i, width, bad_lines)
            if end is not None:
                fields = _fields("\n".join(raw[i : end + 1]).removesuffix("\r"))
                if len(fields) == width and not _break_outside(fields, multiline):
                    emit(fields, number, None)
                    i = end + 1
                    continue
            why = (
                f"line {number}: a quote opened in {header} does not close in a way that "
                "makes one record; the line is held as a record of its own"
            )
        else:
            why = (
                f"line {number}: a quote opened in {header} does not close on its line, and "
                f"{header} cannot hold a line break; the line is held as a record of its own"
            )
        held_for_quotes += 1
        emit(_fields(line + '"'), number, why)
        i += 1
    data: dict[str, list] = {f"_c{i}": col for i, col in enumerate(columns)}
    schema: dict[str, pl.DataType] = {f"_c{i}": pl.String() for i in range(width)}
    data[LINE], schema[LINE] = lines, pl.Int64()
    data[RAGGED], schema[RAGGED] = ragged, pl.String()
    return pl.DataFrame(data, schema=schema), blank, held_for_quotes


def _break_outside(fields: list[str], multiline: frozenset[int] | None) -> bool:
    """A joined record with a line break in a column that cannot hold one is not one record."""
    if multiline is None:
        return False
    return any("\n" in v for i, v in enumerate(fields) if i not in multiline)


def _closing_line(raw: list[str], start: int, width: int, bad_lines: frozenset[int]) -> int | None:
    """Index of the line where the quote left open at the end of `raw[start]` closes, or None
    if the file ends first, an undecodable line comes first or a line in between reads as a
    record of its own (the quote was a stray one)."""
    for j in range(start + 1, len(raw)):
        line = raw[j].removesuffix("\r")
        if j + 1 in bad_lines:
            return None
        if '"' in line:
            joined = "\n".join(x.removesuffix("\r") for x in raw[start : j + 1])
            if _open_field(joined) is None:
                return j
        if _is_record_of_its_own(line, width):
            return None
    return None
