"""A CSV text re-split at line boundaries: every physical record counted, none merged or lost.

The fast reader (Polars) trusts the quotes: one stray quote merges the records up to the next
one, and a quote that never closes swallows the rest of the file. When the cheap checks in
`kesu.warehouse.landing` see that happen, the file is read again here, line by line. A record is
one line, unless a quote opened in a column that may hold a line break (投诉内容, 投诉事项) closes
on a later line and the joined lines make exactly one record; if they make another record (more
or fewer fields), they are held together as it. In any other column a record is one line, so a
stray quote merges nothing: the line it opens on is held, and so are the lines that start inside
the value up to where it closes, unless one before reads as a whole record by itself. A quoted
value with text after its closing quote (`"他说"你好""`: its inner quotes not doubled) cannot be
read for sure: its line (or lines) is held. Anything else costs only its own line: it is kept as
a record of its own. Reasons name lines and columns, never values.

Slower than Polars (a Python loop over the lines with a quote that are not whole records by
themselves), so only files that need it come here.

Over 250 lines: the rules for where a record starts and ends (quotes, line breaks, stray quotes,
field counts) are one reading of one file's lines, and each rule is stated next to the others
it must agree with. The checks that spare the fast path this reading are in `csv_bytes`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import overload

import numpy as np
import polars as pl
from kesu.warehouse.csv_bytes import byte_positions, text_array

LINE = "_line"
RAGGED = "_ragged"

# Python's csv refuses fields over 128 KiB by default; a stray quote makes such fields, and a
# refusal here would crash the drop instead of holding a record.
csv.field_size_limit(2**31 - 1)


# Python's csv refuses a bare CR inside a field ("new-line character seen in unquoted field"):
# a lone CR is text within one line here, so it stands in for itself during the parse.
_CR, _CR_STAND_IN = "\r", "\ue001"


def _fields(line: str, strict: bool = False) -> list[str]:
    """The fields of one line (or of lines joined); strict: raise csv.Error where the quotes do
    not pair up as CSV's do (a loose parse reads on)."""
    if '"' not in line:
        return line.split(",")
    if _CR not in line:  # nearly always: no field to scan for a stand-in
        return next(csv.reader([line], strict=strict), [])
    fields = next(csv.reader([line.replace(_CR, _CR_STAND_IN)], strict=strict), [])
    return [f.replace(_CR_STAND_IN, _CR) for f in fields]


def _open_field(line: str) -> int | None:
    """Index of the field whose quote is still open at the end of `line`, else None."""
    if '"' not in line:
        return None
    line = line.replace(_CR, _CR_STAND_IN)
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
    A line whose first field holds a quote it does not start with (`…text",0101,…`), or whose
    quotes do not pair up as CSV's do, ends a value begun on an earlier line: it is the rest of
    that record, not one of its own.
    """
    if width < 5 or line.count('"') % 2:
        return False
    if '"' not in line:
        return len(line.split(",")) == width
    first = line.split(",", 1)[0]
    if '"' in first and not first.startswith('"'):
        return False
    try:  # strictly: text after a closing quote (`","中文",…`) is a value's end, then more
        fields = next(csv.reader([line.replace(_CR, _CR_STAND_IN)], strict=True), [])
    except csv.Error:
        return False
    return len(fields) == width


# Why a record cannot load for its number of fields: line, (fields,) width.
_MORE = "line {}: the record has more fields than the {} in the header"
_FEWER = (
    "line {}: the record has only {} of the {} fields in the header "
    "(cut short, or split by a line break outside quotes)"
)


def _shape(n: int, width: int, first: int) -> str | None:
    """`shape_expr` for one record, in Python: a Polars query each took ~0.5 ms a line."""
    if n == width:
        return None
    return _MORE.format(first, width) if n > width else _FEWER.format(first, n, width)


def shape_expr(n: pl.Expr, width: int, first: pl.Expr) -> pl.Expr:
    """Why a record of `n` fields starting on line `first` is not one row (null if it is)."""
    return (
        pl.when(n > width)
        .then(pl.format(_MORE.format("{}", width), first))
        .when(n < width)
        .then(pl.format(_FEWER.format("{}", "{}", width), first, n))
    )


def resplit(
    data: bytes,
    headers: list[str],
    multiline: frozenset[int] | None,
    bad_lines: frozenset[int] = frozenset(),
) -> tuple[pl.DataFrame, int, int]:
    """One row per physical record of `data` (UTF-8, checked by the caller; the header is line
    1): columns `_c0`…, `_line` and `_ragged` (why the record cannot load, naming its lines),
    plus how many blank lines were skipped and how many records were held for a quote.

    `multiline`: indexes of the columns that may hold a line break (None: every column).
    `bad_lines`: line numbers that could not be decoded; each is a held record of its own.

    A line without a quote is a record split at its commas, vectorised in Polars; so is a line
    whose quotes are all where CSV puts them and that holds the header's fields (`_whole_line`:
    an export that quotes every field), read by Polars' CSV reader. Only the other lines with a
    quote (few, even in a broken file) go through Python's csv, one by one: a stray quote in a
    bank day's calls with every field quoted cost ~5 CPU-s and ~0.6 GB more that way.
    """
    width = len(headers)
    raw = _Lines(data)
    lines = raw.frame().with_row_index("index").slice(1)
    number = pl.col("index").cast(pl.Int64) + 1
    bad = number.is_in(pl.Series(sorted(bad_lines), dtype=pl.Int64).implode())
    text = pl.col("text").str.strip_suffix("\n").str.strip_suffix("\r")
    lines = lines.with_columns(text, bad.alias("bad"))
    has_quote = pl.col("text").str.contains('"', literal=True)
    # the pattern only where it can matter: over every line of a file with one stray quote in
    # it, it cost ~90 ms of a bank day's calls
    maybe_whole = pl.when(has_quote & ~pl.col("bad")).then(pl.col("text"))
    whole = maybe_whole.str.contains(_whole_line(width)).fill_null(False)
    lines = lines.with_columns(has_quote.alias("quoted"), whole.alias("whole"))
    starts = lines.filter(pl.col("quoted") & ~pl.col("whole")).get_column("index").to_list()
    quoted, consumed, held = _quoted_records(raw, headers, multiline, bad_lines, starts)
    taken = pl.Series(sorted(consumed | set(quoted)), dtype=pl.UInt32).implode()
    lines = lines.filter(~pl.col("index").is_in(taken))
    is_blank = (pl.col("text") == "") & ~pl.col("bad")
    blank = int(lines.select(is_blank.sum()).item())
    bulk = _whole_records(raw, lines.filter("whole").get_column("index"), width)
    plain = lines.filter(~is_blank & ~pl.col("whole"))
    plain = plain.with_columns(pl.col("text").str.split(",").alias("fields"))
    fields = pl.col("fields")
    plain = plain.with_columns(fields.list.len().alias("n")).select(
        *[
            pl.when(~pl.col("bad")).then(fields.list.get(k, null_on_oob=True)).alias(f"_c{k}")
            for k in range(width)
        ],
        number.alias(LINE),
        pl.when(pl.col("bad"))
        .then(pl.format("line {}: not valid text in the file's encoding (UTF-8)", number))
        .otherwise(shape_expr(pl.col("n"), width, number))
        .alias(RAGGED),
    )
    padding = [""] * width
    records = [f if len(f) == width else (f + padding)[:width] for f, _ in quoted.values()]
    columns = list(zip(*records, strict=True)) if records else [()] * width
    special = pl.DataFrame(
        {f"_c{k}": pl.Series(col, dtype=pl.String) for k, col in enumerate(columns)}
        | {
            LINE: pl.Series([i + 1 for i in quoted], dtype=pl.Int64),
            RAGGED: pl.Series([why for _, why in quoted.values()], dtype=pl.String),
        }
    )
    frame = pl.concat([plain, bulk, special]).sort(LINE)
    frame = frame.with_columns(
        pl.when(pl.col(f"_c{k}") != "").then(pl.col(f"_c{k}")).alias(f"_c{k}") for k in range(width)
    )
    return frame, blank, held


# A field as CSV writes it: without quotes, commas or CRs, or quoted with its quotes doubled
# (a CR anywhere sends the line to Python's csv, which reads a lone CR as text).
_FIELD = r'(?:[^",\r]*|"(?:[^"\r]|"")*")'


def _whole_line(width: int) -> str:
    """A line that is one record of `width` fields, every quote where CSV puts it: Polars' reader
    and Python's strict csv read it alike, and no rule of `_quoted_records` needs it."""
    return f"^{_FIELD}(?:,{_FIELD}){{{width - 1}}}$"


class _Lines(Sequence[str]):
    """The lines of UTF-8 `data`, as `str.split("\\n")` gives them (a final line break ends the
    last line, it does not start one), each decoded only when asked for: the lines that go
    through Python's csv are few, and holding every line of a bank day's calls as a string took
    ~130 MB, the text they were split from ~100 MB."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        breaks = byte_positions(data, ord("\n"))
        starts = np.concatenate(([0], breaks + 1))  # line k is data[starts[k]:ends[k]]
        ends = np.append(breaks, len(data))
        n = len(starts) - (starts[-1] == len(data))  # no line after a final line break
        self.starts, self.ends = starts[:n], ends[:n]
        self._bounds: tuple[list[int], list[int]] | None = None  # as lists: ~4x faster to index

    def __len__(self) -> int:
        return len(self.starts)

    def frame(self) -> pl.DataFrame:
        """The lines as a column `text`, each with its line break (the bytes are not copied:
        splitting the text in Polars cost ~340 MB for a bank day's calls)."""
        if not len(self):
            return pl.DataFrame({"text": []}, schema={"text": pl.String})
        last = self.ends[-1] + (self.ends[-1] < len(self.data))  # with its line break, if any
        text = text_array(self.data, np.append(self.starts, last))
        return pl.DataFrame({"text": pl.from_arrow(text)})

    @overload
    def __getitem__(self, k: int) -> str: ...
    @overload
    def __getitem__(self, k: slice) -> list[str]: ...
    def __getitem__(self, k: int | slice) -> str | list[str]:
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(len(self)))]
        if self._bounds is None:
            self._bounds = self.starts.tolist(), self.ends.tolist()
        starts, ends = self._bounds
        return self.data[starts[k] : ends[k]].decode("utf-8")


def _whole_records(lines: _Lines, index: pl.Series, width: int) -> pl.DataFrame:
    """The `lines` at `index` (ascending; each a `_whole_line`) read by Polars' reader, as
    `resplit` returns rows: their bytes, a run of consecutive lines at a time (joining them as
    a Polars string and casting it to bytes raised a bank day's peak by ~200 MB). Behind a
    header line of their own, so a BOM that starts the first is read as text, as Python's csv
    reads it."""
    names = [f"_c{k}" for k in range(width)]
    if index.is_empty():
        empty = {n: pl.String for n in names} | {LINE: pl.Int64, RAGGED: pl.String}
        return pl.DataFrame(schema=empty)
    at = index.to_numpy()
    first = np.flatnonzero(np.diff(at, prepend=-2) != 1)  # where each run of lines begins
    last = np.append(first[1:], len(at)) - 1
    chunks = [",".join(names).encode()]
    runs = zip(lines.starts[at[first]], lines.ends[at[last]], strict=True)
    chunks += [lines.data[start:end] for start, end in runs]
    frame = pl.read_csv(b"\n".join(chunks) + b"\n", infer_schema=False, quote_char='"')
    if frame.height != len(at):  # each line is one record: never seen, but not assumed
        raise AssertionError(f"{len(at)} whole lines read as {frame.height} records")
    return frame.with_columns(
        pl.Series(LINE, at + 1, dtype=pl.Int64), pl.lit(None, pl.String).alias(RAGGED)
    )


def _quoted_records(
    raw: Sequence[str],
    headers: list[str],
    multiline: frozenset[int] | None,
    bad_lines: frozenset[int],
    starts: list[int],
) -> tuple[dict[int, tuple[list[str], str | None]], set[int], int]:
    """The records starting on the lines `starts` (indexes, ascending: the lines with a quote
    that are not whole records by themselves), by line index: (fields, why held or None); the
    indexes of the lines they take beyond their first (whole lines too); how many were held for
    a quote. A whole line takes no other, so leaving it out changes no other line's record."""
    width = len(headers)
    records: dict[int, tuple[list[str], str | None]] = {}
    consumed: set[int] = set()
    held = 0
    for i in starts:
        number = i + 1
        if i in consumed or i in records or number in bad_lines:
            continue
        line = raw[i].removesuffix("\r")
        try:  # most lines with a quote are whole records (an export that quotes every field)
            fields = _fields(line, strict=True)
        except csv.Error:
            open_at = _open_field(line)
            if open_at is None:  # the strict parse stopped at text after a closing quote
                held += 1
                records[i] = (
                    _fields(line),
                    f"line {number}: {_text_after_quote(line, headers)}, so the line's values "
                    "cannot be read for sure; the line is held as a record of its own",
                )
                continue
        else:
            records[i] = (fields, _shape(len(fields), width, number))
            continue
        header = _header(headers, open_at)
        if multiline is not None and open_at not in multiline:
            # Each line is a record of its own: a stray quote must not merge records.
            held += 1
            records[i] = (
                _fields(line + '"'),
                f"line {number}: a quote opened in {header} does not close on its line, and "
                f"{header} cannot hold a line break; the line is held as a record of its own",
            )
            # but a line that starts inside the value must not load (an id `C1b"`)
            for k, opened in _inside_value(raw, i, width, bad_lines):
                where = f", in {header}, which cannot hold a line break" if opened == i else ""
                held += 1
                records[k] = (
                    _fields(raw[k].removesuffix("\r")),
                    f"line {k + 1}: it starts inside a value whose quote opened on line "
                    f"{opened + 1}{where}; the line is held as a record of its own",
                )
            continue
        end = _closing_line(raw, i, width, bad_lines)
        if end is None:
            held += 1
            records[i] = (
                _fields(line + '"'),
                f"line {number}: a quote opened in {header} does not close in a way that makes "
                "one record; the line is held as a record of its own",
            )
            continue
        # The lines up to the closing quote are one record: even when it cannot load, they are
        # held together (read apart, the last would start inside a value and could load).
        joined = "\n".join(raw[i : end + 1]).removesuffix("\r")
        consumed.update(range(i + 1, end + 1))
        try:
            fields, what = _fields(joined, strict=True), None
        except csv.Error:  # the value closes, but text follows its quote
            fields, what = _fields(joined), _text_after_quote(joined, headers)
        if what is None and len(fields) == width and not _break_outside(fields, multiline):
            records[i] = (fields, None)
            continue
        held += 1
        if what is None:
            what = (
                f"they make {len(fields)} fields, not the {width} in the header"
                if len(fields) != width
                else "a column that cannot hold a line break has one"
            )
        records[i] = (
            fields,
            f"lines {number}-{end + 1}: a quote opened in {header} closes on line {end + 1}, "
            f"but {what}; the lines are held as one record",
        )
    return records, consumed, held


def _header(headers: list[str], k: int) -> str:
    return headers[k] if k < len(headers) else f"column {k + 1}"


def _text_after_quote(text: str, headers: list[str]) -> str:
    """Why `text`, which a strict CSV parse refuses for text after a closing quote, cannot load,
    naming the column: in `"他说"你好""` or `""C1"` the quotes inside a value were not doubled
    (or were typed by hand), and no reading of the value is sure."""
    field, k, n = 0, 0, len(text)
    while k < n:
        if text[k] == '"':  # a quoted value, to its closing quote (a doubled one is text)
            k += 1
            while k < n and (text[k] != '"' or text.startswith('""', k)):
                k += 2 if text[k] == '"' else 1
            k += 1
            if k < n and text[k] != ",":
                break  # text after the closing quote, in this field
        else:  # a plain value, to the next comma (a quote in it is text)
            k = text.find(",", k)
            if k < 0:
                break
        field, k = field + 1, k + 1
    return f"a quoted value in {_header(headers, field)} has text after its closing quote"


def _inside_value(
    raw: Sequence[str], start: int, width: int, bad_lines: frozenset[int]
) -> list[tuple[int, int]]:
    """The lines after `raw[start]`, which ends inside a quoted value, that start inside a value,
    each with the line where that value's quote opened: those up to the line where it closes, and
    on while that line opens another that it leaves open. Empty when the quote was a stray one:
    a line before it closes reads as a record of its own, or is undecodable, or the file ends."""
    inside: list[tuple[int, int]] = []
    closed, opened = 0, start  # how many of `inside` end with the first value closed
    for j in range(start + 1, len(raw)):
        line = raw[j].removesuffix("\r")
        if j + 1 in bad_lines or _is_record_of_its_own(line, width):
            break
        if not line:  # a blank line is no record, inside a value or not (resplit skips it)
            continue
        inside.append((j, opened))
        at = _closing_quote(line)
        if at >= 0:
            closed = len(inside)
            if _open_field(line[at + 1 :]) is None:
                break
            opened = j  # the line opens another value after it
    return inside[:closed]


def _closing_quote(line: str) -> int:
    """Where `line`, which starts inside a quoted value, closes it (-1: it does not); a doubled
    quote is a quote in the value."""
    at = line.find('"')
    while at >= 0 and line.startswith('""', at):
        at = line.find('"', at + 2)
    return at


def _break_outside(fields: list[str], multiline: frozenset[int] | None) -> bool:
    """A joined record with a line break in a column that cannot hold one is not one record."""
    if multiline is None:
        return False
    return any("\n" in v for i, v in enumerate(fields) if i not in multiline)


def _closing_line(
    raw: Sequence[str], start: int, width: int, bad_lines: frozenset[int]
) -> int | None:
    """Index of the line where the quote left open at the end of `raw[start]` closes, or None
    if the file ends first, an undecodable line comes first or a line in between reads as a
    record of its own (the quote was a stray one).

    The lines are read once, each from where the one before left off (inside a value): the
    value closes at a line's first lone quote, and the line is the record's last unless what
    follows the quote opens another value that it leaves open. This is where a strict CSV
    parse of the lines joined stops being inside a value (text after a closing quote is an
    error there, so the record ends), without joining them: re-parsing the joined lines at
    each line with a quote took time quadratic in their number (4,000 lines of doubled quotes
    after one that never closes: 4.5 s, 40,000 over seven minutes).
    """
    for j in range(start + 1, len(raw)):
        line = raw[j].removesuffix("\r")
        if j + 1 in bad_lines:
            return None
        at = _closing_quote(line)
        if at >= 0:
            rest = line[at + 1 :]
            if not rest.startswith(",") or _open_field(rest) is None:
                return j
        if _is_record_of_its_own(line, width):
            return None
    return None
