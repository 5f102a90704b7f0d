"""Text to typed values, one function per source type, each returning (values, problem).

`problem` is a String Series: null where the value parsed or was empty, otherwise a sentence a
data steward can act on. Formats are explicit: inferring them costs ~5x and guesses wrong on
ambiguous dates.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import polars as pl

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


def clean_text(raw: pl.Series) -> pl.Series:
    """Trimmed text with empty strings as null (exports write both for 'no value')."""
    trimmed = raw.str.strip_chars()
    return trimmed.set(trimmed == "", None) if trimmed.len() else trimmed


def _problem(raw: pl.Series, parsed: pl.Series, message: str) -> pl.Series:
    failed = raw.is_not_null() & parsed.is_null()
    return pl.select(
        pl.when(failed).then(pl.lit(message + ": ") + pl.lit(raw).str.slice(0, 40)).alias("p")
    ).to_series()


def _first_format(text: pl.Series, formats: tuple[str, ...], dtype: pl.DataType) -> pl.Series:
    """Parse with the first format; only rows it misses try the others (most rows hit the first)."""
    parse = (
        (lambda s, f: s.str.to_date(f, strict=False))
        if dtype == pl.Date
        else (lambda s, f: s.str.to_datetime(f, time_unit="us", strict=False))
    )
    parsed = parse(text, formats[0])
    missed = parsed.is_null() & text.is_not_null()
    if not missed.any():
        return parsed
    rest = text.filter(missed).str.replace_many(list(FULL_WIDTH), list(FULL_WIDTH.values()))
    fallback = parse(rest, formats[0])
    for fmt in formats[1:]:
        fallback = fallback.fill_null(parse(rest, fmt))
    return parsed.scatter(missed.arg_true(), fallback)


def parse_datetime(raw: pl.Series) -> tuple[pl.Series, pl.Series]:
    text = clean_text(raw)
    naive = _first_format(text, DATETIME_FORMATS, pl.Datetime("us"))
    # China kept summer time 1986-1991: a wall-clock time in a spring gap never happened and
    # one in the autumn hour happened twice. Either is a defect of its row, not a crash.
    values = naive.dt.replace_time_zone(TIME_ZONE, ambiguous="null", non_existent="null")
    problem = _problem(text, naive, f"not a date-time in {ACCEPTED}")
    not_local = _problem(
        text.set(naive.is_null(), None) if text.len() else text,
        values,
        f"not one time in {TIME_ZONE} (skipped or repeated by a daylight-saving change)",
    )
    return values, problem.fill_null(not_local)


def implausible(values: pl.Series, earliest: date, latest: date | None) -> pl.Series:
    """Why each date or time is not plausible (before `earliest`, or after the end of the day
    `latest`), else null. A version "from the future" cannot be in tonight's export."""
    is_date = values.dtype == pl.Date
    if is_date:
        lo, hi = pl.lit(earliest), pl.lit(latest)
    else:  # compared as instants: no per-row conversion to a local date (a bank day: 4 x 300k)
        lo = pl.lit(datetime.combine(earliest, time(), ZoneInfo(TIME_ZONE)))
        end = latest + timedelta(days=1) if latest is not None else None
        hi = pl.lit(datetime.combine(end, time(), ZoneInfo(TIME_ZONE)) if end else None)
    early = pl.lit(values) < lo
    late = (pl.lit(values) >= hi) if not is_date else (pl.lit(values) > hi)
    flags = pl.select(early.fill_null(False).alias("early"), late.fill_null(False).alias("late"))
    problem = pl.repeat(None, values.len(), dtype=pl.String, eager=True)
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


def parse_date(raw: pl.Series) -> tuple[pl.Series, pl.Series]:
    text = clean_text(raw)
    values = _first_format(text, DATE_FORMATS, pl.Date())
    missed = values.is_null() & text.is_not_null()
    if missed.any():  # XLSX date cells arrive as "YYYY-MM-DD 00:00:00"
        as_datetime = _first_format(text.filter(missed), DATETIME_FORMATS, pl.Datetime("us"))
        values = values.scatter(missed.arg_true(), as_datetime.dt.date())
    return values, _problem(text, values, "not a date in YYYY-MM-DD, YYYY/MM/DD or YYYY年MM月DD日")


def parse_int(raw: pl.Series) -> tuple[pl.Series, pl.Series]:
    text = clean_text(raw).str.replace_many(list(FULL_WIDTH), list(FULL_WIDTH.values()))
    whole = text.str.replace(r"\.0+$", "")  # XLSX numbers arrive as "3.0"
    values = pl.select(
        pl.when(pl.lit(whole).str.contains(r"^[+-]?\d{1,9}$")).then(
            pl.lit(whole).cast(pl.Int32, strict=False)
        )
    ).to_series()
    return values, _problem(text, values, "not a whole number")


def parse_decimal(raw: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Yuan with at most two decimals; thousands separators are accepted, exponents are not."""
    text = clean_text(raw).str.replace_many(list(FULL_WIDTH), list(FULL_WIDTH.values()))
    grouped = text.str.contains(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
    plain = pl.select(
        pl.when(pl.lit(grouped)).then(pl.lit(text).str.replace_all(",", "")).otherwise(pl.lit(text))
    ).to_series()
    values = pl.select(
        pl.when(pl.lit(plain).str.contains(r"^[+-]?\d{1,16}(\.\d{1,2})?$")).then(
            pl.lit(plain).cast(pl.Decimal(18, 2), strict=False)
        )
    ).to_series()
    return values, _problem(text, values, "not an amount in yuan with at most 2 decimals")


def parse_yes_no(raw: pl.Series) -> tuple[pl.Series, pl.Series]:
    text = clean_text(raw)
    values = text.replace_strict({"是": True, "否": False}, default=None, return_dtype=pl.Boolean)
    return values, _problem(text, values, "not 是 or 否")
