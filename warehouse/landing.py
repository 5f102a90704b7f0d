"""The landing zone: which files a drop holds, and reading one file into text columns.

Every field is read as text; parsing types is staging's job, so a bad value becomes a
quarantine reason instead of a failed read. Each row keeps `_line`, the physical line (CSV) or
sheet row (XLSX) where its record starts, so a data steward can find it in the source file.

Over 250 lines: the CSV fast path (Polars), its cheap checks for broken quoting and the decoding
it falls back to read one file together; the line-by-line re-split is in `csv_records`, the
Excel reader in `landing_excel`.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
from kesu.transforms.parsing import INVISIBLE, constant
from kesu.warehouse.csv_bytes import every_record_whole, is_utf8, quotes_in_place
from kesu.warehouse.csv_records import LINE, RAGGED, resplit, shape_expr  # noqa: F401 (re-exported)

ACCEPTED_SUFFIXES = (".csv", ".xlsx", ".xls")
EXCEL_SUFFIXES = (".xlsx", ".xls")
UTF8_BOM = b"\xef\xbb\xbf"
GB18030_BOM = b"\x84\x31\x95\x33"


class SourceReadError(Exception):
    """The file as a whole cannot be read; the message names the file and what is wrong."""


@dataclass(frozen=True)
class DropListing:
    feed: str
    drop_date: date
    folder: Path | str  # a local folder, or the URL of an object-store "folder"
    exists: bool
    files: Sequence[Path | str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why)


@dataclass
class SourceTable:
    frame: pl.DataFrame  # source headers as written (trimmed), all String, plus `_line`
    encoding: str
    notes: list[str] = field(default_factory=list)


def list_drop(landing: Path, feed: str, drop_date: date) -> DropListing:
    """The readable files of one feed's drop, in name order; anything else is listed as skipped.

    Symlinks are never followed: a link could point out of the landing zone.
    """
    landing = landing.resolve()
    folder = landing / feed / drop_date.isoformat()
    if folder.is_symlink() or not folder.is_dir():
        return DropListing(feed, drop_date, folder, exists=False)
    files: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith((".", "~$")):
            skipped.append((entry.name, "hidden or temporary file"))
        elif entry.is_symlink():
            skipped.append((entry.name, "symbolic link (not followed)"))
        elif not entry.is_file():
            skipped.append((entry.name, "not a regular file"))
        elif not entry.name.lower().endswith(ACCEPTED_SUFFIXES):
            skipped.append((entry.name, "not a .csv, .xlsx or .xls file"))
        else:
            files.append(Path(entry.path))
    return DropListing(feed, drop_date, folder, exists=True, files=files, skipped=skipped)


def _transcoded(data: bytes, codec: str) -> tuple[bytes, frozenset[int]]:
    """UTF-8 bytes of `data` in `codec`; lines that do not decode become empty (the last, a
    space), and their numbers (1 = the header) are returned so that each is held, named, on its
    own.

    A GB18030 file is first decoded whole, which gives the same bytes as line by line: a line
    break is never part of a longer character, so no line's decoding depends on the next. Line
    by line took 0.63 CPU-s for a bank day's calls, all of it holding the GIL; whole, 0.32-0.34.
    Only a file with an undecodable line pays for both. UTF-8 comes here only when some line is
    not UTF-8, so it goes line by line at once."""
    if codec != "utf-8":
        try:
            return data.decode(codec).encode("utf-8"), frozenset()
        except UnicodeDecodeError:
            pass
    out: list[bytes] = []
    bad: set[int] = set()
    lines = data.split(b"\n")
    for number, line in enumerate(lines, start=1):
        try:
            out.append(line.decode(codec).encode("utf-8"))
        except UnicodeDecodeError:
            # the last line of a file cut off mid-character has no line break after it: made
            # empty, it would read as the file's final line break, not as a line to hold
            out.append(b"" if number < len(lines) else b" ")
            bad.add(number)
    return b"\n".join(out), frozenset(bad)


def _header_ends_in_cr(body: bytes) -> bool:
    """The header's line end, the first line end of the file, decides how its lines end: a CR
    alone (not CR LF) makes every CR a line end; with LF or CR LF a CR alone is text. Only the
    header is searched where it ends in LF (a CR is looked for through the whole body, ~3 ms for
    a bank day's calls, only where there is no LF)."""
    end = body.find(b"\n")
    if end < 0:
        return b"\r" in body
    cr = body.find(b"\r", 0, end)
    return 0 <= cr < end - 1


def _first_line(data: bytes) -> bytes:
    """The bytes before the first line break (`split` would copy all the others: 0.05 s for a
    bank day's calls)."""
    end = data.find(b"\n")
    return data if end < 0 else data[:end]


def decode(data: bytes, name: str, encoding: str = "utf-8") -> tuple[bytes, str, frozenset[int]]:
    """UTF-8 bytes of a file Polars refused as UTF-8, the encoding it was found in, and the
    lines that decode in neither (held one by one; they are never guessed at).

    The header decides (it holds Chinese column names in every feed): a UTF-8 header makes a
    UTF-8 file whose stray lines (one GBK line pasted in) are held; otherwise GB18030. A header
    of plain ASCII lets the majority of the other lines decide.
    """
    header = _first_line(data)
    try:
        header.decode("utf-8")
        utf8_header = not header.isascii() or _mostly_utf8(data)
    except UnicodeDecodeError:
        utf8_header = False
    if encoding == "utf-8-sig" and not utf8_header:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceReadError(
                f"{name}: starts with a UTF-8 BOM but is not UTF-8 (undecodable byte at offset "
                f"{exc.start + 3}); re-export the file as UTF-8"
            ) from exc
    if not utf8_header and encoding != "utf-8-sig":
        encoding = "gb18030"
    body, bad = _transcoded(data, "utf-8" if encoding != "gb18030" else "gb18030")
    if 1 in bad:
        raise SourceReadError(
            f"{name}: the header row is neither UTF-8 nor GB18030/GBK; re-export the file as UTF-8"
        )
    if bad and len(bad) * 2 > body.count(b"\n") + 1:
        raise SourceReadError(
            f"{name}: not UTF-8 and not GB18030/GBK ({len(bad)} undecodable lines, the first "
            f"line {min(bad)}); re-export the file as UTF-8"
        )
    return body, encoding, bad


def looks_like_big5(data: bytes) -> bool:
    """Whether a file read as GB18030 (`decode`) looks like Big5 (traditional Chinese, as a
    Taiwan or Hong Kong system exports) instead: its header row is valid Big5, and read as
    GB18030 a quarter or more of its characters are outside GB2312 (the common simplified
    characters every feed's headers are written in; Big5 bytes read as GB18030 give rare ones,
    e.g. 投訴編號 as щ禗絪腹). Big5 bytes are nearly always valid GB18030 too, so such a file
    decodes without error and only its headers are wrong. For the message of a file none of
    whose headers is known; never on the path of a file that reads."""
    header = data[: min(i for i in (data.find(b"\n"), data.find(b"\r"), len(data)) if i >= 0)]
    try:
        header.decode("cp950")  # Big5 as Windows writes it
    except UnicodeDecodeError:
        return False
    read = [c for c in header.decode("gb18030", "replace") if not c.isascii()]
    return len(read) > 0 and 4 * sum(not _in_gb2312(c) for c in read) >= len(read)


def _in_gb2312(character: str) -> bool:
    try:
        character.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def _mostly_utf8(data: bytes) -> bool:
    """Of the lines with non-ASCII bytes, do more decode as UTF-8 than not?"""
    ok = bad = 0
    for line in data.split(b"\n"):
        if not line.isascii():
            try:
                line.decode("utf-8")
                ok += 1
            except UnicodeDecodeError:
                bad += 1
    return ok > bad


def _per_record(frame: pl.DataFrame, text: str) -> pl.Series:
    """How often `text` occurs in each record's values."""
    return frame.select(
        pl.sum_horizontal(
            pl.col(c).str.count_matches(text, literal=True).fill_null(0) for c in frame.columns
        ).cast(pl.Int64)
    ).to_series()


def _record_shapes(
    body: bytes,
    frame: pl.DataFrame,
    has_quotes: bool,
    whole: bool = False,
    extra: pl.Series | None = None,
) -> pl.DataFrame:
    """Per record: `_line` (header is line 1; quoted newlines push later records down), how
    many fields it really has, and whether it is a blank line.

    Polars pads a record that is cut short with nulls, and reads a blank line as a record of
    nulls. Only a record whose last field is null can be either; for those the raw text tells:
    the commas on its lines, less those inside its values, plus one. `extra`: the sentinel
    column of a file read with one beyond the header (`_read_fast`). An empty extra field reads
    as null there, and Polars drops whatever follows it (`…,0101,,x`), so every record whose
    sentinel is null is counted too. A count takes in the commas of the dropped fields, so it
    can only be too high for a record that has more fields than the header, never hide one.
    """
    n = frame.height
    first = pl.int_range(0, n, dtype=pl.Int64, eager=True) + 2
    if has_quotes and n:
        spans = _per_record(frame, "\n")  # lines a record spans beyond its first
        lines = first + spans.cum_sum().shift(1, fill_value=0)
    else:
        spans, lines = pl.zeros(n, pl.Int64, eager=True), first
    fields = constant(frame.width, n, pl.Int64)
    blank = constant(False, n, pl.Boolean)
    maybe = frame.get_column(frame.columns[-1]).is_null()
    if extra is not None:
        maybe = maybe | extra.is_null()
    suspect = maybe.arg_true()
    if suspect.len() and not whole:  # `whole`: every record known to have `width` fields
        # Vectorised over the raw bytes: where lines start and where commas and CRs are, so a
        # record's byte range is counted with two binary searches.
        raw = np.frombuffer(body, dtype=np.uint8)
        starts = np.concatenate(([0], np.flatnonzero(raw == 10) + 1, [len(body) + 1]))
        comma_at, cr_at = np.flatnonzero(raw == 44), np.flatnonzero(raw == 13)
        # byte range of each suspect record, from its first line's start to its last line's end
        first_line = lines.gather(suspect).to_numpy()
        last_line = (lines + spans).gather(suspect).to_numpy()
        a = starts[first_line - 1]
        b = np.minimum(starts[last_line] - 1, len(body))
        commas = pl.Series(np.searchsorted(comma_at, b) - np.searchsorted(comma_at, a))
        # a value holds a comma only between quotes: a file without any has none to take off
        inside = _per_record(frame[suspect], ",") if has_quotes else 0
        fields = fields.scatter(suspect, commas - inside + 1)
        crs = np.searchsorted(cr_at, b) - np.searchsorted(cr_at, a)
        is_blank = crs == (b - a)  # nothing but a CR
        blank = blank.scatter(suspect, pl.Series(is_blank, dtype=pl.Boolean))
    return pl.DataFrame({LINE: lines, "_fields": fields, "_blank": blank})


class _NotUtf8(Exception):
    """Polars (or the header) met bytes that are not UTF-8: take the slow, precise path."""


def read_csv_text(data: bytes, name: str, multiline: frozenset[str] | None = None) -> SourceTable:
    """Nearly every export is UTF-8, so Polars' reader, which rejects invalid UTF-8 itself,
    reads the bytes as they are; only when it refuses are they decoded in Python (`decode`),
    line by line, which transcodes GB18030 and holds the lines that decode in neither.

    `multiline`: the headers whose values may hold a line break (None: any column). A quote
    that leaves any other column open is a defect of the records it touches, which are then
    re-split at line boundaries (`kesu.warehouse.csv_records`).
    """
    notes: list[str] = []
    body, encoding = data, "utf-8"
    if data.startswith(UTF8_BOM):
        body, encoding = data[3:], "utf-8-sig"
    elif data.startswith(GB18030_BOM):
        body, encoding = data[4:], "gb18030"
    if _header_ends_in_cr(body):
        # An old Mac export: CR ends each line, though an LF may still be in it (a line break
        # inside an Excel cell, or a last line ended CR LF); read each CR as a line break
        body = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        notes.append("line ends are CR (an old Mac export); read as line breaks")
    if encoding != "gb18030":
        try:
            return _read_utf8(body, encoding, name, multiline, notes, validated=False)
        except _NotUtf8:
            pass
    body, encoding, bad = decode(body, name, encoding)
    if bad:
        shown = ", ".join(str(n) for n in sorted(bad)[:10]) + (", …" if len(bad) > 10 else "")
        notes.append(f"{len(bad)} line(s) not valid {encoding.upper()}, held: line {shown}")
    return _read_utf8(body, encoding, name, multiline, notes, validated=True, bad_lines=bad)


def _read_utf8(
    body: bytes,
    encoding: str,
    name: str,
    multiline: frozenset[str] | None,
    notes: list[str],
    validated: bool,
    bad_lines: frozenset[int] = frozenset(),
) -> SourceTable:
    """`validated`: `body` is known to be UTF-8 (so `_NotUtf8` is never raised)."""
    if not body or body.isspace():
        raise SourceReadError(f"{name}: the file is empty (not even a header row)")
    try:
        header_line = _first_line(body).decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        if validated:
            raise
        raise _NotUtf8 from None
    if not header_line:
        raise SourceReadError(
            f"{name}: the first line is empty; the header row (the column names) must be the "
            "first line"
        )
    if header_line.count('"') % 2:
        # Everything after it would read as one never-ending header: nothing could be trusted.
        raise SourceReadError(
            f"{name}: the header row has a quote that does not close on its line; the header "
            "must be one line of column names"
        )
    notes = list(notes)
    headers = clean_headers(next(csv.reader([header_line])), notes)
    width = len(headers)
    free = (
        None if multiline is None else frozenset(i for i, h in enumerate(headers) if h in multiline)
    )
    frame = None
    quotes = b'"' in body  # looked for once: ~3 ms through a bank day's calls, asked thrice
    # A quote out of place sends the file to the reading line by line, so Polars is not asked
    # first: one stray quote in a bank day's calls with every field quoted made its reader take
    # ~1 CPU-s and ~1 GB, only for the frame to be thrown away.
    if not bad_lines and (not quotes or quotes_in_place(body, body.find(b"\n") + 1)):
        try:
            frame, blank_lines = _read_fast(body, width, quotes)
        except pl.exceptions.PolarsError as exc:
            if not validated and _not_utf8(exc):
                raise _NotUtf8 from None
            # Polars' message quotes the record: it is not repeated (personal data).
        if frame is not None and quotes and _records_merged(frame, width, free):
            frame = None
    if frame is None:
        if not validated and not is_utf8(body):
            raise _NotUtf8
        # Not the parser's message: it quotes the raw record, personal data and all.
        frame, blank_lines, held = resplit(body, headers, free, bad_lines)
        if not bad_lines or held:
            notes.append(
                "malformed CSV (a quote out of place); read line by line, "
                f"{held} record(s) held for a quote"
            )
    if blank_lines:
        notes.append(f"ignored {blank_lines} blank line(s)")
    frame = frame.rename({f"_c{i}": name for i, name in enumerate(unique_headers(headers))})
    return SourceTable(frame, encoding, notes)


def _read_fast(body: bytes, width: int, quotes: bool) -> tuple[pl.DataFrame, int]:
    """Polars' reader: text columns `_c0`…, `_line`, `_ragged`, and the blank lines skipped.
    `quotes`: whether `body` holds a quote (`b'"' in body`, searched once by the caller).

    Read first with the header's columns alone, which Polars refuses if a record has more
    fields: read so, no record has more, and byte counts can vouch that none has fewer
    (`every_record_whole`). Refused, the file is read again with a sentinel column beyond the
    header, which catches the records with too many fields. An empty extra field reads as null
    there and hides any after it, so byte counts cannot vouch for such a file: each record that
    may be short, or whose sentinel is null, is counted (`_record_shapes`). A record of more
    fields than the header is held whether or not its extra fields are empty."""
    if not body.endswith(b"\n"):
        # Polars' reader takes an unterminated last record with an extra, empty field as whole
        # (`a,b,c,` at the end of the file, where `a,b,c,\n` is refused), and its byte counts
        # can then balance a record cut short: the record is read terminated. Exports end in a
        # line break, so the body is rarely copied.
        body += b"\n"
    names = [f"_c{i}" for i in range(width)]
    try:
        frame, extra = _polars_read(body, names, ragged=False), None
    except pl.exceptions.PolarsError as exc:  # more fields; or what the next read raises too
        if _not_utf8(exc):  # the caller reads it otherwise: not read a second time here
            raise
        frame = _polars_read(body, [*names, "_c_extra"], ragged=True)
        extra = frame.get_column("_c_extra")
        frame = frame.drop("_c_extra")
    whole = extra is None and every_record_whole(body, frame, quotes)
    shapes = _record_shapes(body, frame, has_quotes=quotes, whole=whole, extra=extra)
    ragged = _shape_problems(extra, shapes, width)
    like = frame.get_column(names[0])
    added = [_chunked_like(shapes.get_column(LINE), like), _chunked_like(ragged, like)]
    frame = frame.hstack(added)
    blank = shapes.get_column("_blank")
    blank_lines = int(blank.sum())
    if blank_lines:
        frame = frame.filter(~blank)
    return frame, blank_lines


def _not_utf8(exc: pl.exceptions.PolarsError) -> bool:
    """Whether Polars' reader refused the bytes as not UTF-8 (its message can quote megabytes
    of the file: only its start is looked at)."""
    return "utf-8" in str(exc)[:300].lower()


def _polars_read(body: bytes, names: list[str], ragged: bool) -> pl.DataFrame:
    """The records of `body` (its header line skipped) as text columns `names`; a record with
    fewer fields is padded with nulls; with more, an error, or (`ragged`) they are cut off."""
    return pl.read_csv(
        io.BytesIO(body),
        has_header=False,
        skip_rows=1,
        new_columns=names,
        schema={n: pl.String for n in names},
        truncate_ragged_lines=ragged,
        missing_columns="insert",
    )


def _chunked_like(series: pl.Series, like: pl.Series) -> pl.Series:
    """`series` in chunks of `like`'s lengths. Polars' reader gives a bank day's columns in ~30
    chunks; a column of one chunk beside them makes the next query copy the file's text into
    one chunk first (~0.02 CPU-s), so kesu's own columns are cut as the reader's are."""
    if like.n_chunks() == 1:
        return series
    parts, start = [], 0
    for chunk in like.get_chunks():
        parts.append(series.slice(start, len(chunk)))
        start += len(chunk)
    return pl.concat(parts, rechunk=False)


def _shape_problems(extra: pl.Series | None, shapes: pl.DataFrame, width: int) -> pl.Series:
    """`RAGGED`: why each record is not one row, null where it is. `extra`: the sentinel column
    (a value there: more fields than the header; None: no record has more); `shapes`:
    `_record_shapes`. The sentence is built only for the records whose field count is off,
    which are few."""
    fields = shapes.get_column("_fields")
    if extra is not None:
        fields = fields.zip_with(extra.is_null(), pl.Series([width + 1]))
    odd = (fields != width).arg_true()
    problems = constant(None, len(fields), pl.String, RAGGED)
    if odd.is_empty():
        return problems
    lines = shapes.get_column(LINE).gather(odd)
    why = pl.select(shape_expr(pl.lit(fields.gather(odd)), width, pl.lit(lines))).to_series()
    return problems.scatter(odd, why)


def _records_merged(frame: pl.DataFrame, width: int, free: frozenset[int] | None) -> bool:
    """Cheap signs that Polars took a quote loosely, its quotes all in place (`quotes_in_place`,
    checked before): a quote that merged records, making a record of the wrong shape, a line
    break in a column that cannot hold one, or a line of free text that is a whole record."""
    if frame.height == 0:
        return False
    checks = [pl.col(RAGGED).is_not_null()]
    fixed = [] if free is None else [i for i in range(width) if i not in free]
    checks += [pl.col(f"_c{i}").str.contains("\n", literal=True) for i in fixed]
    if width >= 5:
        record = rf"(?m)^(?:[^,\n]*,){{{width - 1}}}[^,\n]*\r?$"
        multi = range(width) if free is None else sorted(free)
        checks += [pl.col(f"_c{i}").str.contains(record) for i in multi]
    return bool(frame.select(pl.any_horizontal(checks).fill_null(False).any()).item())


# Characters that show as nothing (Unicode's format characters): a second BOM where two exports
# were joined, a zero-width space pasted from a web page; and control characters but the tab
# (a NUL a broken export wrote). In a header they hide a known name. The tab stays: a header
# split by tabs is told apart as such.
_INVISIBLE = re.compile(f"[{INVISIBLE}\x00-\x08\x0b-\x1f\x7f]")


def clean_headers(headers: Sequence[str], notes: list[str]) -> list[str]:
    """The headers without surrounding spaces or invisible characters; a note if any held one
    (a header is a column's name, not personal data: it may be named)."""
    cleaned = [_INVISIBLE.sub("", h).strip() for h in headers]
    touched = [c for h, c in zip(headers, cleaned, strict=True) if _INVISIBLE.search(h)]
    if touched:
        notes.append(
            "invisible characters (a BOM, a zero-width space) removed from the header(s) "
            + "、".join(touched)
        )
    return cleaned


def unique_headers(headers: list[str]) -> list[str]:
    """The headers as column names, each its own: a repeated one gets a suffix (`#2`) so both
    columns survive (staging reports the repeat), an empty one is named by its place. A suffix
    that another header already is (`a,a,a#2`) counts on (`a#2#2`). Counted in one pass: a file
    can have tens of thousands."""
    seen: Counter[str] = Counter()
    names: list[str] = []
    taken: set[str] = set()
    for i, header in enumerate(headers):
        base = header or f"(column {i + 1} has no header)"
        if base.startswith("_"):  # `_line` etc. are kesu's own: a source column keeps its place
            base = f"(column {i + 1}) {base}"
        seen[header] += 1
        n = seen[header]
        name = base if n == 1 else f"{base}#{n}"
        while name in taken:
            n += 1
            name = f"{base}#{n}"
        taken.add(name)
        names.append(name)
    return names


def read_source(
    path: Path, data: bytes | None = None, multiline: frozenset[str] | None = None
) -> SourceTable:
    """Read one landing file (CSV in any accepted encoding, XLSX or XLS) into text columns.

    `multiline`: the headers whose values may hold a line break (see `read_csv_text`)."""
    if path.suffix.lower() in EXCEL_SUFFIXES:
        from kesu.warehouse.landing_excel import read_excel  # imports this module

        return read_excel(path, data)
    if data is None:
        data = path.read_bytes()
    return read_csv_text(data, path.name, multiline)
