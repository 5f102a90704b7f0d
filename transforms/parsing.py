"""Text to typed values, one function per source type, each returning (values, problem).

`problem` is a String Series: null where the value parsed or was empty, otherwise a sentence a
data steward can act on. Formats are explicit: inferring them costs ~5x and guesses wrong on
ambiguous dates.

Over 250 lines: every source type's parser shares the trimmed and invisible characters, the
accepted formats and the sentences of `problem`; one module keeps them consistent.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache, partial
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

import polars as pl

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

T = TypeVar("T", pl.Series, pl.Expr)
TIME_ZONE = "Asia/Shanghai"
DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%d %H:%M",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日",
    "%Y-%m-%d",
    "%Y/%m/%d",
)
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日")
FULL_WIDTH = {chr(0xFF10 + i): str(i) for i in range(10)} | {
    "：": ":",
    "－": "-",
    "／": "/",
    "，": ",",
    "．": ".",
    "\u3000": " ",
}
ACCEPTED = "YYYY-MM-DD HH:MM:SS, YYYY/MM/DD HH:MM or YYYY年MM月DD日"
# Characters that show as nothing (a soft hyphen, zero-width spaces and joiners, bidirectional
# marks, a BOM): text pasted from a web page or a document carries them, and they hide inside a
# number, a name or a header. `INVISIBLE` is the same as the body of a regular expression's class.
_INVISIBLE_RANGES = (
    (0xAD, 0xAD),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0xFEFF, 0xFEFF),
)
INVISIBLE_CHARACTERS = "".join(
    chr(c) for first, last in _INVISIBLE_RANGES for c in range(first, last + 1)
)
INVISIBLE = "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in _INVISIBLE_RANGES)
# What `clean` trims from a value's ends: Unicode's white space (Rust's `char::is_whitespace`,
# what `strip_chars()` trims by default; the full-width space of Chinese text among it) and the
# invisible characters, so that `T001` followed by a zero-width space is the id T001, not an id
# of its own, and a value of nothing but a BOM is no value (a required one is missing).
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)
TRIMMED = WHITE_SPACE + INVISIBLE_CHARACTERS


def on_series(expression: pl.Expr, raw: pl.Series) -> pl.Series:
    """`expression` (written over `pl.col(raw.name)`) evaluated on one Series."""
    return raw.to_frame().select(expression.alias(raw.name)).to_series()


def clean(text: pl.Expr) -> pl.Expr:
    """Text without white space or invisible characters at its ends (`TRIMMED`), empty strings
    as null (exports write both for 'no value')."""
    return text.str.strip_chars(TRIMMED).replace("", None)  # one pass: a when/then strips twice


def clean_text(raw: pl.Series) -> pl.Series:
    return on_series(clean(pl.col(raw.name)), raw)


def problem(text: pl.Expr, parsed: pl.Expr, message: str) -> pl.Expr:
    """`message` and the value (its first 40 characters) where `text` did not parse, else null."""
    return sentences(text, [(text.is_not_null() & parsed.is_null(), message + ": ")])


QUOTED_CHARACTERS = 40  # of a value quoted in a sentence


def sentences(
    text: pl.Expr,
    cases: list[tuple[pl.Expr, str]],
    after: str = "",
    limit: int | None = QUOTED_CHARACTERS,
) -> pl.Expr:
    """Per row, for the first of `cases` (condition, before) that holds: `before` + the text (its
    first `limit` characters; None: all of it) + `after`. Null where no condition holds.

    Only those rows' sentences are built, and they are few. A when/then builds a sentence for
    every row and then drops most of them: ~0.01 CPU-s per column of a bank day's calls."""
    conditions = [condition for condition, _ in cases]
    befores = [before for _, before in cases]
    build = partial(_sentences, befores, after, limit)
    return pl.map_batches([text, *conditions], build, return_dtype=pl.String)


def _sentences(
    befores: list[str], after: str, limit: int | None, columns: list[pl.Series]
) -> pl.Series:
    text, conditions = columns[0].cast(pl.String), columns[1:]
    out, taken = constant(None, text.len(), pl.String, text.name), None
    for before, condition in zip(befores, conditions, strict=True):
        if not condition.any():  # most columns: no row holds it (`any` skips nulls)
            continue
        hold = condition.fill_null(False)
        if taken is not None:
            hold = hold & ~taken
        rows = hold.arg_true()
        if not rows.is_empty():
            out = out.scatter(rows, before + text.gather(rows).str.slice(0, limit) + after)
            taken = hold if taken is None else taken | hold
    return out


def constant(value: object, n: int, dtype: PolarsDataType, name: str = "") -> pl.Series:
    """`n` times `value`: made directly, ~5 us, where `pl.repeat` or `Series.clear` run a query
    (~0.2-0.4 ms, whatever `n`)."""
    return pl.Series(name, [value], dtype=dtype).new_from_index(0, n)


def _problem(raw: pl.Series, parsed: pl.Series, message: str) -> pl.Series:
    return pl.select(problem(pl.lit(raw), pl.lit(parsed), message).alias("p")).to_series()


def _first_format(text: pl.Series, formats: tuple[str, ...], dtype: pl.DataType) -> pl.Series:
    """Parse with the first format; only rows it misses try the others (most rows hit the first),
    all of them in one query: each eager call costs ~0.1-0.2 ms whatever its size, and a small
    feed's few odd values paid for twenty of them per column."""
    parsed = _parse(text, formats[0], dtype)
    missed = parsed.is_null() & text.is_not_null()
    if not missed.any():
        return parsed
    rows = missed.arg_true()
    rest = text.filter(missed).str.replace_many(list(FULL_WIDTH), list(FULL_WIDTH.values()))
    fallback = rest.to_frame("t").select_seq(
        pl.coalesce([_parse(pl.col("t"), fmt, dtype) for fmt in formats])
    )
    return parsed.scatter(rows, fallback.to_series())


def _parse(text: T, fmt: str, dtype: pl.DataType) -> T:
    """`text` (a Series or an expression) as `dtype` in format `fmt`, null where it does not fit."""
    if dtype == pl.Date:
        return text.str.to_date(fmt, strict=False)  # type: ignore[return-value]
    return text.str.to_datetime(fmt, time_unit="us", strict=False)  # type: ignore[return-value]


def naive_datetimes(text: pl.Series) -> pl.Series:
    """Wall-clock date-times of clean text in any accepted format (null where none fits)."""
    return _first_format(text, DATETIME_FORMATS, pl.Datetime("us"))


def text_and_value(raw: pl.Series, kind: str) -> pl.Series:
    """{text, value} of a date (`kind` "date") or date-time column's text as written: its clean
    text (`clean`) and its value (`dates`, `naive_datetimes`), but trimmed only where needed.

    Each value is tried as written in the first format first; most of them parse so, and
    need no trimming (Polars' parser itself skips the spaces a format's space or start can meet,
    and those values keep them in `text`). Only the others are cleaned and parsed as before.
    That spares a pass trimming every value (~4 ms per date-time column of a bank day's calls).
    For long columns: in a short one the steps cost more than the values (`PARSED_AS_WRITTEN`).
    """
    parse = dates if kind == "date" else naive_datetimes
    first = DATE_FORMATS[0] if kind == "date" else DATETIME_FORMATS[0]
    value = _parse(raw, first, pl.Date() if kind == "date" else pl.Datetime("us"))
    text = raw
    missed = value.is_null() & raw.is_not_null()
    if missed.any():
        rows = missed.arg_true()
        rest = clean_text(raw.gather(rows))
        text = raw.scatter(rows, rest)
        value = value.scatter(rows, parse(rest))
    return pl.DataFrame({"text": text, "value": value}).to_struct(raw.name)


# Rows from which a file's dates and date-times are parsed as written (`text_and_value`); a
# shorter file's are cleaned first, in one query with its other columns (a small feed's file:
# ~1-2 ms less than parsing as written).
PARSED_AS_WRITTEN = 20_000


# China kept summer time 1986-1991; since then its clocks are UTC+8 all year.
FIXED_OFFSET_SINCE = datetime(1992, 1, 1)
UTC_OFFSET = timedelta(hours=8)


def china_time(naive: pl.Series) -> pl.Series:
    """Wall-clock date-times as instants in China time, null where a time never happened or
    happened twice (a spring gap or an autumn hour of 1986-1991: a defect of its row, not a
    crash). A column that lies wholly after 1991 is shifted by 8 hours instead of going through
    the zone's rules: the same values, 0.001 s instead of 0.03 s per column of a bank day."""
    earliest = naive.min()
    if isinstance(earliest, datetime) and earliest >= FIXED_OFFSET_SINCE:
        utc = (naive - UTC_OFFSET).dt.replace_time_zone("UTC")
        return utc.dt.convert_time_zone(TIME_ZONE)
    return naive.dt.replace_time_zone(TIME_ZONE, ambiguous="null", non_existent="null")


def local_datetimes(text: pl.Expr, naive: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(values in China time, problem) of clean text and its `naive_datetimes`."""
    values = naive.map_batches(china_time, return_dtype=pl.Datetime("us", TIME_ZONE))
    unparsed = text.is_not_null() & naive.is_null()
    not_local = naive.is_not_null() & values.is_null()
    why = sentences(
        text,
        [
            (unparsed, f"not a date-time in {ACCEPTED}: "),
            (
                not_local,
                f"not one time in {TIME_ZONE} (skipped or repeated by a daylight-saving change): ",
            ),
        ],
    )
    return values, why


def parse_datetime(raw: pl.Series) -> tuple[pl.Series, pl.Series]:
    text = clean_text(raw)
    naive = naive_datetimes(text)
    values, why = local_datetimes(pl.col("text"), pl.col("naive"))
    frame = pl.DataFrame({"text": text, "naive": naive}).select(values.alias(raw.name), why)
    return frame.to_series(0), frame.to_series(1)


def outside_window(
    values: pl.Expr, dtype: pl.DataType, earliest: date, latest: date | None
) -> tuple[pl.Expr, pl.Expr]:
    """(too early, too late) for each date or time of `dtype`: before `earliest`, or after the
    end of the day `latest` (None: no end); False for null."""
    is_date = dtype == pl.Date
    lo, hi = _window(earliest, latest, is_date)
    late = (values >= hi) if not is_date else (values > hi)
    return (values < lo).fill_null(False), late.fill_null(False)


@lru_cache(maxsize=32)
def _window(earliest: date, latest: date | None, is_date: bool) -> tuple[pl.Expr, pl.Expr]:
    """The bounds of `outside_window` as literals, made once per window: a zoned date-time
    literal costs ~0.5 ms (a Series and a query of its own), and every date or time column of
    every file asked for two, which was ~3% of a small feed's CPU."""
    if is_date:
        return pl.lit(earliest), pl.lit(latest)
    # compared as instants: no per-row conversion to a local date (a bank day: 4 x 300k)
    lo = pl.lit(datetime.combine(earliest, time(), ZoneInfo(TIME_ZONE)))
    end = latest + timedelta(days=1) if latest is not None else None
    hi = pl.lit(datetime.combine(end, time(), ZoneInfo(TIME_ZONE)) if end else None)
    return lo, hi


def implausible(values: pl.Series, earliest: date, latest: date | None) -> pl.Series:
    """Why each date or time is not plausible (before `earliest`, or after the end of the day
    `latest`), else null. A version "from the future" cannot be in tonight's export."""
    is_date = values.dtype == pl.Date
    early, late = outside_window(pl.lit(values), values.dtype, earliest, latest)
    flags = pl.select(early.alias("early"), late.alias("late"))
    problem = constant(None, values.len(), pl.String)
    odd = (flags["early"] | flags["late"]).arg_true()
    if odd.len() == 0:
        return problem
    shown = values.gather(odd).dt.to_string("%Y-%m-%d" if is_date else "%Y-%m-%d %H:%M:%S")
    why = pl.select(
        pl.when(pl.lit(flags["early"].gather(odd)))
        .then(pl.lit(shown) + f" is before {earliest.isoformat()}, too early to be real")
        .otherwise(pl.lit(shown) + f" is after {latest}, later than the export can know")
    ).to_series()
    return problem.scatter(odd, why)


def dates(text: pl.Series) -> pl.Series:
    """Dates of clean text in any accepted format (null where none fits)."""
    values = _first_format(text, DATE_FORMATS, pl.Date())
    missed = values.is_null() & text.is_not_null()
    if missed.any():  # XLSX date cells arrive as "YYYY-MM-DD 00:00:00"
        as_datetime = _first_format(text.filter(missed), DATETIME_FORMATS, pl.Datetime("us"))
        values = values.scatter(missed.arg_true(), as_datetime.dt.date())
    return values


DATE_PROBLEM = "not a date in YYYY-MM-DD, YYYY/MM/DD or YYYY年MM月DD日"


def parse_date(raw: pl.Series) -> tuple[pl.Series, pl.Series]:
    text = clean_text(raw)
    values = dates(text)
    return values, _problem(text, values, DATE_PROBLEM)


def _ascii_text(text: pl.Expr) -> pl.Expr:
    return text.str.replace_many(list(FULL_WIDTH), list(FULL_WIDTH.values()))


def ints(text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(values, problem) of clean text."""
    text = _ascii_text(text)
    whole = text.str.replace(r"\.0+$", "")  # XLSX numbers arrive as "3.0"
    values = pl.when(whole.str.contains(r"^[+-]?\d{1,9}$")).then(whole.cast(pl.Int32, strict=False))
    return values, problem(text, values, "not a whole number")


def decimals(text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(values, problem) of clean text: yuan with at most two decimals; thousands separators
    are accepted, exponents are not."""
    text = _ascii_text(text)
    grouped = text.str.contains(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
    plain = pl.when(grouped).then(text.str.replace_all(",", "")).otherwise(text)
    values = pl.when(plain.str.contains(r"^[+-]?\d{1,16}(\.\d{1,2})?$")).then(
        plain.cast(pl.Decimal(18, 2), strict=False)
    )
    return values, problem(text, values, "not an amount in yuan with at most 2 decimals")


def yes_no(text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(values, problem) of clean text."""
    values = pl.when(text == "是").then(True).when(text == "否").then(False)  # faster than a map
    return values, problem(text, values, "not 是 or 否")


def _parsed(parse, raw: pl.Series) -> tuple[pl.Series, pl.Series]:  # type: ignore[no-untyped-def]
    values, why = parse(pl.col("text"))
    frame = clean_text(raw).rename("text").to_frame().select(values.alias(raw.name), why)
    return frame.to_series(0), frame.to_series(1)


def parse_int(raw: pl.Series) -> tuple[pl.Series, pl.Series]:
    return _parsed(ints, raw)


def parse_decimal(raw: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Yuan with at most two decimals; thousands separators are accepted, exponents are not."""
    return _parsed(decimals, raw)


def parse_yes_no(raw: pl.Series) -> tuple[pl.Series, pl.Series]:
    return _parsed(yes_no, raw)
