"""Each accepted source format parses; each bad value becomes a problem that quotes it."""

import re
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kesu.transforms import parsing


def _one(parse, text):
    values, problem = parse(pl.Series([text], dtype=pl.String))
    return values[0], problem[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01 08:30:15", datetime(2025, 3, 1, 8, 30, 15)),  # the contract's main form
        ("2025/03/01 08:30", datetime(2025, 3, 1, 8, 30)),  # some exports drop seconds
        ("2025年03月01日", datetime(2025, 3, 1)),  # Chinese date-only form: midnight
        (" 2025-03-01 08:30:15 ", datetime(2025, 3, 1, 8, 30, 15)),  # padding is not a value
        ("２０２５-03-01 08:30:15", datetime(2025, 3, 1, 8, 30, 15)),  # full-width digits
    ],
)
def test_datetime_formats_parse_in_china_time(text, expected):
    value, problem = _one(parsing.parse_datetime, text)
    assert problem is None
    assert value.replace(tzinfo=None) == expected
    assert str(value.tzinfo) == "Asia/Shanghai"


@pytest.mark.parametrize("text", ["2025-02-30 10:00:00", "N/A", "03/01/2025 08:30", "昨天"])
def test_impossible_or_ambiguous_datetimes_are_problems_quoting_the_value(text):
    # 30 February does not exist; 03/01/2025 could be March or January, so it is not guessed.
    value, problem = _one(parsing.parse_datetime, text)
    assert value is None
    assert text in problem


def test_empty_values_are_null_without_a_problem():
    values, problems = parsing.parse_datetime(pl.Series(["", "  ", None], dtype=pl.String))
    assert values.null_count() == 3
    assert problems.null_count() == 3


def test_dates_accept_excel_midnight_datetimes():
    # XLSX date cells are read as "YYYY-MM-DD 00:00:00".
    assert _one(parsing.parse_date, "2025-03-01 00:00:00") == (date(2025, 3, 1), None)
    assert _one(parsing.parse_date, "2025年3月1日")[0] == date(2025, 3, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1,234.50", Decimal("1234.50")), ("0", Decimal("0.00")), ("-3", Decimal("-3.00"))],
)
def test_amounts(text, expected):
    # Thousands separators are accepted; a negative amount parses (the expectations reject it).
    assert _one(parsing.parse_decimal, text) == (expected, None)


@pytest.mark.parametrize("text", ["12.345", "1e3", "abc", "1,23"])
def test_amounts_never_truncate_or_guess(text):
    # Polars' cast would silently truncate 12.345 to 12.34 and read 1e3 as 1000.
    value, problem = _one(parsing.parse_decimal, text)
    assert value is None and text in problem


def test_whole_numbers_accept_excel_floats_and_full_width():
    assert _one(parsing.parse_int, "3.0") == (3, None)
    assert _one(parsing.parse_int, "１２") == (12, None)
    assert _one(parsing.parse_int, "2.5")[1] is not None


def test_yes_no():
    values, problems = parsing.parse_yes_no(pl.Series(["是", "否", "Y", None]))
    assert values.to_list() == [True, False, None, None]
    assert problems.to_list()[:2] == [None, None] and "Y" in problems[2]


@pytest.mark.parametrize(
    "text",
    [
        "1988-04-17 02:30:00",  # China's summer time began at 02:00: this time never was
        "1988-09-11 01:30:00",  # and ended at 02:00 back to 01:00: this one was twice
    ],
)
def test_a_local_time_that_never_was_or_was_twice_is_a_row_problem_not_a_crash(text):
    value, problem = _one(parsing.parse_datetime, text)
    assert value is None
    assert problem == (
        "not one time in Asia/Shanghai (skipped or repeated by a daylight-saving change): " + text
    )


def test_china_time_by_arithmetic_is_the_zones_rules_wherever_it_is_used():
    # every hour from 1991-12-31 to 2100 and the first instants of 1992: the shift applies
    whole_hours = pl.datetime_range(
        datetime(1992, 1, 1), datetime(2100, 1, 1), "7h13m", eager=True, time_unit="us"
    )
    edge = pl.Series([datetime(1992, 1, 1), datetime(1992, 1, 1, 0, 0, 0, 1), None])
    for naive in (whole_hours, edge):
        by_rules = naive.dt.replace_time_zone("Asia/Shanghai")
        assert parsing.china_time(naive).equals(by_rules)
    # a column reaching into the summer-time years goes through the rules: the gap is null
    mixed = pl.Series([datetime(1988, 4, 17, 2, 30), datetime(2025, 3, 1, 8, 30)])
    assert parsing.china_time(mixed).to_list() == [
        None,
        datetime(2025, 3, 1, 8, 30, tzinfo=ZoneInfo("Asia/Shanghai")),
    ]
    assert parsing.china_time(pl.Series([None], dtype=pl.Datetime("us"))).to_list() == [None]


EARLIEST, LATEST = date(2000, 1, 1), date(2025, 3, 2)  # the drop of 2025-03-01, a day ahead


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("2000-01-01 00:00:00", None),  # the first plausible instant
        ("2025-03-02 23:59:59", None),  # the end of the day after the drop
        ("1999-12-31 23:59:59", "1999-12-31 23:59:59 is before 2000-01-01, too early to be real"),
        ("0001-01-01 00:00:00", "0001-01-01 00:00:00 is before 2000-01-01, too early to be real"),
        ("2025-03-03 00:00:00", "2025-03-03 00:00:00 is after 2025-03-02, later than the export"),
        ("9999-12-31 23:59:59", "9999-12-31 23:59:59 is after 2025-03-02, later than the export"),
        ("2099-01-01 00:00:00", "2099-01-01 00:00:00 is after 2025-03-02, later than the export"),
    ],
)
def test_an_implausible_time_is_named_with_the_window(text, why):
    values, _ = parsing.parse_datetime(pl.Series([text, None]))
    found = parsing.implausible(values, EARLIEST, LATEST).to_list()
    assert found[1] is None  # no value, no problem
    assert found[0] == why or (why is not None and found[0].startswith(why))


@pytest.mark.parametrize(
    ("text", "latest", "why"),
    [
        ("2025-03-02", LATEST, None),
        ("2025-03-03", LATEST, "2025-03-03 is after 2025-03-02, later than the export can know"),
        ("2099-01-01", None, None),  # a due date may lie ahead: no end to its window
        ("1999-12-31", None, "1999-12-31 is before 2000-01-01, too early to be real"),
    ],
)
def test_an_implausible_date_is_named_with_the_window(text, latest, why):
    values, _ = parsing.parse_date(pl.Series([text]))
    assert parsing.implausible(values, EARLIEST, latest).to_list() == [why]


# What a date or date-time column of an export can hold: forms that parse, padding around
# them, full-width digits, forms that do not parse, empty text and null.
_PADS = st.sampled_from(["", " ", "\t", "\u3000", " \r", "\u00a0", "\u200b", "\ufeff", " \u2060"])
_WRITTEN = st.sampled_from(
    [
        "2025-03-01 08:30:15",
        "2025/03/01 08:30",
        "2025年03月01日",
        "２０２５-03-01 08:30:15",
        "2025-03-01",
        "2025-03-01 00:00:00",
        "2025-02-30 10:00:00",
        "N/A",
        "",
        "13812345678",
    ]
)
_AS_WRITTEN = st.one_of(st.none(), st.builds(lambda a, v, b: a + v + b, _PADS, _WRITTEN, _PADS))


@settings(max_examples=60, deadline=None)
@given(st.lists(_AS_WRITTEN, max_size=30), st.sampled_from(["date", "datetime"]))
def test_parsing_as_written_is_cleaning_first(values, kind):
    """`text_and_value` parses what it can as written and cleans the rest: the same values as
    cleaning every value first, and the same text but for the padding of values that parsed."""
    raw = pl.Series("t", values, dtype=pl.String)
    both = parsing.text_and_value(raw, kind).struct.unnest()
    clean = parsing.clean_text(raw)
    parse = parsing.dates if kind == "date" else parsing.naive_datetimes
    assert both["value"].to_list() == parse(clean).to_list()
    assert (
        both["text"].str.strip_chars(parsing.TRIMMED).replace("", None).to_list() == clean.to_list()
    )
    # a text left as written is one that parsed
    kept = (both["text"] != clean).fill_null(False)
    assert both["value"].filter(kept).null_count() == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("T001\u200b", "T001"),  # a zero-width space pasted after an id: the same id
        ("\ufeffT001", "T001"),  # a BOM before it
        ("\u3000张三\u00a0", "张三"),  # full-width and no-break spaces
        ("国家金融监督管理总局\u2060", "国家金融监督管理总局"),
        ("\ufeff", None),  # nothing but invisible characters: no value (a required one is missing)
        ("\u200b \u200d\u00ad", None),
        ("T0\u200b01", "T0\u200b01"),  # only the ends are trimmed; what is inside is the source's
    ],
)
def test_clean_trims_white_space_and_invisible_characters_at_the_ends(raw, expected):
    assert parsing.clean_text(pl.Series("t", [raw])).to_list() == [expected]


def test_what_clean_trims_is_polars_white_space_and_the_invisible_characters():
    """`WHITE_SPACE` is exactly what Polars trims by default, `INVISIBLE_CHARACTERS` exactly the
    class `INVISIBLE` that the personal-data rules and the headers use: over the whole BMP."""
    chars = [chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]
    alone = pl.Series("c", chars)
    by_default = {c for c, t in zip(chars, alone.str.strip_chars(), strict=True) if t == ""}
    assert by_default == set(parsing.WHITE_SPACE)
    invisible = re.compile(f"[{parsing.INVISIBLE}]")
    assert {c for c in chars if invisible.fullmatch(c)} == set(parsing.INVISIBLE_CHARACTERS)
    assert parsing.clean_text(alone).null_count() == len(set(parsing.TRIMMED))
