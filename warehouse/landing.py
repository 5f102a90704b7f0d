"""The landing zone: which files a drop holds, and reading one file into text columns.

Every field is read as text; parsing types is staging's job, so a bad value becomes a
quarantine reason instead of a failed read. Each row keeps `_line`, the physical line (CSV) or
sheet row (XLSX) where its record starts, so a data steward can find it in the source file.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

ACCEPTED_SUFFIXES = (".csv", ".xlsx")
LINE = "_line"
RAGGED = "_ragged"  # why a record's field count does not match the header, else null


class SourceReadError(Exception):
    """The file as a whole cannot be read; the message names the file and what is wrong."""


@dataclass(frozen=True)
class DropListing:
    feed: str
    drop_date: date
    folder: Path
    exists: bool
    files: list[Path] = field(default_factory=list)
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
            skipped.append((entry.name, "not a .csv or .xlsx file"))
        else:
            files.append(Path(entry.path))
    return DropListing(feed, drop_date, folder, exists=True, files=files, skipped=skipped)


def decode(data: bytes, name: str) -> tuple[bytes, str]:
    """UTF-8 bytes of the file and the encoding it was found in (UTF-8, UTF-8+BOM or GB18030)."""
    if data.startswith(b"\xef\xbb\xbf"):
        body = data[3:]
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceReadError(
                f"{name}: starts with a UTF-8 BOM but is not UTF-8 (undecodable byte at offset "
                f"{exc.start + 3}); re-export the file as UTF-8"
            ) from exc
        return body, "utf-8-sig"
    try:
        data.decode("utf-8")
        return data, "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030").encode("utf-8"), "gb18030"
    except UnicodeDecodeError as exc:
        raise SourceReadError(
            f"{name}: not UTF-8 and not GB18030/GBK (undecodable byte at offset {exc.start}); "
            "re-export the file as UTF-8"
        ) from exc


def _per_record(frame: pl.DataFrame, text: str) -> pl.Series:
    """How often `text` occurs in each record's values."""
    return frame.select(
        pl.sum_horizontal(
            pl.col(c).str.count_matches(text, literal=True).fill_null(0) for c in frame.columns
        ).cast(pl.Int64)
    ).to_series()


def _record_shapes(body: bytes, frame: pl.DataFrame, has_quotes: bool) -> pl.DataFrame:
    """Per record: `_line` (header is line 1; quoted newlines push later records down), how
    many fields it really has, and whether it is a blank line.

    Polars pads a record that is cut short with nulls, and reads a blank line as a record of
    nulls. Only a record whose last field is null can be either; for those the raw text tells:
    the commas on its lines, less those inside its values, plus one.
    """
    n = frame.height
    first = pl.int_range(0, n, dtype=pl.Int64, eager=True) + 2
    if has_quotes and n:
        spans = _per_record(frame, "\n")  # lines a record spans beyond its first
        lines = first + spans.cum_sum().shift(1, fill_value=0)
    else:
        spans, lines = pl.zeros(n, pl.Int64, eager=True), first
    fields = pl.repeat(frame.width, n, dtype=pl.Int64, eager=True)
    blank = pl.repeat(False, n, dtype=pl.Boolean, eager=True)
    suspect = frame.get_column(frame.columns[-1]).is_null().arg_true()
    if suspect.len():
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
        inside = _per_record(frame[suspect], ",")
        fields = fields.scatter(suspect, commas - inside + 1)
        crs = np.searchsorted(cr_at, b) - np.searchsorted(cr_at, a)
        is_blank = crs == (b - a)  # nothing but a CR
        blank = blank.scatter(suspect, pl.Series(is_blank, dtype=pl.Boolean))
    return pl.DataFrame({LINE: lines, "_fields": fields, "_blank": blank})


class _NotUtf8(Exception):
    """Polars (or the header) met bytes that are not UTF-8: take the slow, precise path."""


def read_csv_text(data: bytes, name: str) -> SourceTable:
    """Nearly every export is UTF-8, so Polars' reader, which rejects invalid UTF-8 itself,
    reads the bytes as they are; only when it refuses are they decoded in Python (`decode`),
    which names the offending offset or transcodes GB18030. Saves a full decode pass."""
    if data.startswith(b"\xef\xbb\xbf"):
        body, encoding = data[3:], "utf-8-sig"
    else:
        body, encoding = data, "utf-8"
    try:
        return _read_utf8(body, encoding, name, validated=False)
    except _NotUtf8:
        body, encoding = decode(data, name)  # raises SourceReadError if not GB18030 either
        return _read_utf8(body, encoding, name, validated=True)


def _read_utf8(body: bytes, encoding: str, name: str, validated: bool) -> SourceTable:
    """`validated`: `body` is known to be UTF-8 (so `_NotUtf8` is never raised)."""
    if not body or body.isspace():
        raise SourceReadError(f"{name}: the file is empty (not even a header row)")
    try:
        header_line = body.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        if validated:
            raise
        raise _NotUtf8 from None
    if header_line.count('"') % 2:
        # Everything after it would read as one never-ending header: nothing could be trusted.
        raise SourceReadError(
            f"{name}: the header row has a quote that does not close on its line; the header "
            "must be one line of column names"
        )
    headers = [h.strip() for h in next(csv.reader([header_line]))]
    width = len(headers)
    notes: list[str] = []
    # One sentinel column beyond the header catches records with too many fields.
    names = [f"_c{i}" for i in range(width)] + ["_c_extra"]
    try:
        frame = pl.read_csv(
            io.BytesIO(body),
            has_header=False,
            skip_rows=1,
            new_columns=names,
            schema={n: pl.String for n in names},
            truncate_ragged_lines=True,
            missing_columns="insert",
        )
        shapes = _record_shapes(body, frame.drop("_c_extra"), has_quotes=b'"' in body)
        fields = pl.col("_fields")
        frame = pl.concat([frame, shapes], how="horizontal").with_columns(
            pl.when(pl.col("_c_extra").is_not_null() | (fields > width))
            .then(pl.lit(_shape_problem(width + 1, width)))
            .when(fields < width)
            .then(pl.format(_shape_problem(None, width), fields))
            .alias(RAGGED)
        )
        blank_lines = int(frame["_blank"].sum())
        if blank_lines:
            frame = frame.filter(~pl.col("_blank"))
        frame = frame.drop("_c_extra", "_fields", "_blank")
    except pl.exceptions.PolarsError as exc:
        if not validated and "utf-8" in str(exc).lower():
            raise _NotUtf8 from None
        # Broken quoting (often a truncated export): the tolerant reader keeps what it can.
        try:
            frame, blank_lines = _read_csv_tolerant(body, width)
        except UnicodeDecodeError:
            if validated:
                raise
            raise _NotUtf8 from None
        # Not the parser's message: it quotes the raw record, personal data and all.
        notes.append("malformed CSV (unbalanced quotes); read record by record")
    if blank_lines:
        notes.append(f"ignored {blank_lines} blank line(s)")
    frame = frame.rename({f"_c{i}": _unique_header(headers, i) for i in range(width)})
    return SourceTable(frame, encoding, notes)


def _shape_problem(fields: int | None, width: int) -> str:
    """Why a record of `fields` fields (None: a `{}` placeholder for pl.format) is not one row."""
    if fields is not None and fields > width:
        return f"the record has more fields than the {width} in the header"
    n = "{}" if fields is None else str(fields)
    return (
        f"the record has only {n} of the {width} fields in the header "
        "(cut short, or split by a line break outside quotes)"
    )


def _read_csv_tolerant(body: bytes, width: int) -> tuple[pl.DataFrame, int]:
    """Python's csv reader, record by record, marking every record whose field count is off;
    also how many blank lines it skipped."""
    reader = csv.reader(io.StringIO(body.decode("utf-8"), newline=""), strict=False)
    next(reader, None)
    columns: list[list[str | None]] = [[] for _ in range(width)]
    lines: list[int] = []
    ragged: list[str | None] = []
    start = reader.line_num + 1
    blank_lines = 0
    for record in reader:
        blank_lines += not record
        if record:
            lines.append(start)
            n = len(record)
            ragged.append(None if n == width else _shape_problem(n, width))
            for i in range(width):
                columns[i].append((record[i] or None) if i < n else None)
        start = reader.line_num + 1
    data: dict[str, list] = {f"_c{i}": col for i, col in enumerate(columns)}
    schema: dict[str, pl.DataType] = {f"_c{i}": pl.String() for i in range(width)}
    data[LINE], schema[LINE] = lines, pl.Int64()
    data[RAGGED], schema[RAGGED] = ragged, pl.String()
    return pl.DataFrame(data, schema=schema), blank_lines


def _unique_header(headers: list[str], i: int) -> str:
    """A repeated header gets a suffix so both columns survive; staging reports the repeat."""
    h = headers[i] or f"(column {i + 1} has no header)"
    seen = headers[:i].count(headers[i])
    return h if seen == 0 else f"{h}#{seen + 1}"


def read_xlsx(path: Path) -> SourceTable:
    import fastexcel  # only XLSX files pay for it

    try:
        reader = fastexcel.read_excel(str(path))
        sheet = reader.load_sheet(0, header_row=0, dtypes="string")
        frame = sheet.to_polars()
    except Exception as exc:  # fastexcel raises its own hierarchy; all mean "unreadable"
        raise SourceReadError(f"{path.name}: cannot be read as XLSX ({exc})") from exc
    notes = []
    if len(reader.sheet_names) > 1:
        notes.append(f"read the first sheet '{reader.sheet_names[0]}' of {len(reader.sheet_names)}")
    # fastexcel names a column without a header `__UNNAMED__<i>`; name it as the CSV reader does
    # so that staging reports it instead of dropping it as one of kesu's own `_` columns.
    frame = frame.rename(
        {
            c: f"(column {i + 1} has no header)" if c.startswith("__UNNAMED__") else c.strip()
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


def read_source(path: Path, data: bytes | None = None) -> SourceTable:
    """Read one landing file (CSV in any accepted encoding, or XLSX) into text columns."""
    if path.suffix.lower() == ".xlsx":
        return read_xlsx(path)
    if data is None:
        data = path.read_bytes()
    return read_csv_text(data, path.name)
