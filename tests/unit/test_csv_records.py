"""The CSV reader against Python's `csv` module, the reference for what a record is: every record
of the header's width whose line breaks are all in the column that may hold one loads with
exactly its values, and nothing else loads (the rest is held, each with a reason)."""

from __future__ import annotations

import csv
import io

import polars as pl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from kesu.warehouse.csv_bytes import quotes_in_place
from kesu.warehouse.csv_records import _closing_line, _is_record_of_its_own, _open_field
from kesu.warehouse.landing import read_csv_text

# Values that break naive readers: commas, quotes, line breaks, a lone CR, spaces, Chinese text.
VALUES = [
    "",
    "a",
    "0101",
    "x y",
    " s ",
    "中文",
    "a,b",
    'q"q',
    "l1\nl2",
    "m\n\nn",  # a blank line inside a value
    "\n",
    "c\rr",
    "2025-07-01 10:00:00",
]


def _field(value: str, quote_anyway: bool) -> str:
    if quote_anyway or any(ch in value for ch in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[str, int, int]:
    """(text, width, the index of the one column that may hold a line break)."""
    width = draw(st.integers(1, 9))
    free = draw(st.integers(0, width - 1))
    records = draw(
        st.lists(
            st.integers(max(1, width - 1), width + 2).flatmap(
                lambda n: st.lists(
                    st.tuples(st.sampled_from(VALUES), st.booleans()), min_size=n, max_size=n
                )
            ),
            max_size=6,
        )
    )
    end = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [",".join(f"h{i}" for i in range(width))]
    lines += [",".join(_field(v, q) for v, q in record) for record in records]
    return end.join(lines) + draw(st.sampled_from(["", end])), width, free


@settings(max_examples=150, deadline=None)
@given(csv_files())
def test_exactly_the_whole_records_load_with_their_values(case):
    text, width, free = case
    table = read_csv_text(text.encode(), "f.csv", frozenset({f"h{free}"}))
    rows = table.frame.rows()
    # "" and null both mean no value (staging reads both as null; a quoted "" reads as "")
    loaded = sorted(
        (tuple(v or None for v in row[:width]) for row in rows if row[-1] is None), key=repr
    )
    reference = [r for r in csv.reader(io.StringIO(text, newline="")) if r][1:]
    whole = [
        tuple(v or None for v in r)
        for r in reference
        if len(r) == width and not any("\n" in v for k, v in enumerate(r) if k != free)
    ]
    assert loaded == sorted(whole, key=repr)
    assert all(row[-1].startswith("line") for row in rows if row[-1] is not None)


HEADER = "编号,日期,渠道,金额,投诉内容,机构\n"
WHOLE = "C0,2025-07-01,电话,1,好的,0101\n"


def _read(records: str) -> list[tuple]:
    text = HEADER + WHOLE + records + WHOLE.replace("C0", "C9")
    frame = read_csv_text(text.encode(), "c.csv", frozenset({"投诉内容"})).frame
    return frame.select("编号", "_line", "_ragged").rows()


OPENS = "a quote opened in 编号 does not close on its line, and 编号 cannot hold a line break; "
INSIDE = "it starts inside a value whose quote opened on line 3, in 编号, which cannot hold a line break; "
OWN = "the line is held as a record of its own"


def test_a_line_break_in_a_column_that_cannot_hold_one_holds_the_lines_inside_the_value_too():
    """Each line stays a record (a stray quote merges nothing), but read alone line 4 would load
    as a record whose 编号 is `C1b"`."""
    assert _read('"C1\nC1b",2025-07-01,电话,1,正常,0101\n') == [
        ("C0", 2, None),
        ("C1", 3, f"line 3: {OPENS}{OWN}"),
        ('C1b"', 4, f"line 4: {INSIDE}{OWN}"),
        ("C9", 5, None),
    ]


def test_a_blank_line_inside_the_value_is_skipped_as_blank_lines_are():
    """Found by test_rows_accounted_property: a blank line is no record, even inside a value."""
    text = HEADER + WHOLE + '"C1\n\nC1b",2025-07-01,电话,1,正常,0101\n'
    table = read_csv_text(text.encode(), "c.csv", frozenset({"投诉内容"}))
    rows = table.frame.select("_line", "_ragged").rows()
    assert [(line, why.split(":")[0] if why else None) for line, why in rows] == [
        (2, None), (3, "line 3"), (5, "line 5")
    ]  # fmt: skip
    assert "ignored 1 blank line(s)" in table.notes


def test_a_stray_quote_before_a_whole_record_holds_only_its_own_line():
    """Line 4 reads as a whole record by itself (its quotes are its own): the quote of line 3
    was a stray one, and line 4 loads."""
    assert _read('"C1,2025-07-01,电话,1,正常,0101\n"C2",2025-07-01,电话,1,"好,的",0101\n') == [
        ("C0", 2, None),
        ("C1,2025-07-01,电话,1,正常,0101", 3, f"line 3: {OPENS}{OWN}"),
        ("C2", 4, None),
        ("C9", 5, None),
    ]


def test_free_text_over_two_lines_in_a_record_of_too_many_fields_is_held_as_one_record():
    assert _read('C1,2025-07-01,电话,1,"第一行\n第二行",0101,x,y\n') == [
        ("C0", 2, None),
        (
            "C1",
            3,
            "lines 3-4: a quote opened in 投诉内容 closes on line 4, but they make 8 fields, "
            "not the 6 in the header; the lines are held as one record",
        ),
        ("C9", 5, None),
    ]


def test_free_text_over_two_lines_loads_as_one_record():
    assert _read('C1,2025-07-01,电话,1,"第一行\n第二行",0101\n') == [
        ("C0", 2, None),
        ("C1", 3, None),
        ("C9", 5, None),
    ]


def test_the_lines_inside_a_value_run_on_through_a_value_opened_where_it_closes():
    """Line 4 closes the value of line 3 and opens one in 投诉内容 that line 5 closes: all three
    start or end inside a value, and none loads."""
    rows = _read('"C1\nC1b",2025-07-01,电话,1,"第一行\n第二行",0101\n')
    assert [(line, why is None) for _, line, why in rows] == [
        (2, True), (3, False), (4, False), (5, False), (6, True)
    ]  # fmt: skip
    assert [why for _, line, why in rows if line in (4, 5)] == [
        f"line 4: {INSIDE}{OWN}",
        f"line 5: it starts inside a value whose quote opened on line 4; {OWN}",
    ]


def test_a_line_whose_quotes_do_not_pair_up_as_csv_does_is_not_a_record_of_its_own():
    """Line 4 starts by closing the value line 3 opened (`","x",…`): read loosely it has six
    fields and would load as a record (its 编号 `,x"`); read strictly it is the rest of line 3's
    record, which is held whole."""
    assert _read('C1,2025-07-01,电话,1,"\n","x",a,b,c,d,"\n",0101\n') == [
        ("C0", 2, None),
        (
            "C1",
            3,
            "lines 3-5: a quote opened in 投诉内容 closes on line 5, but they make 12 fields, "
            "not the 6 in the header; the lines are held as one record",
        ),
        ("C9", 6, None),
    ]


def _closing_line_by_joining(raw: list[str], width: int, bad_lines: frozenset[int]) -> int | None:
    """The definition `_closing_line` keeps: the first line where a strict parse of the lines
    joined from the first is no longer inside a value (what it computed until the seventh
    release's thirty-sixth session, in time quadratic in the lines)."""
    for j in range(1, len(raw)):
        line = raw[j].removesuffix("\r")
        if j + 1 in bad_lines:
            return None
        if '"' in line:
            joined = "\n".join(x.removesuffix("\r") for x in raw[: j + 1])
            if _open_field(joined) is None:
                return j
        if _is_record_of_its_own(line, width):
            return None
    return None


PIECES = ["a", "中", ",", '"', '""', '","', "\r", " "]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(PIECES), max_size=8).map("".join), min_size=2, max_size=7),
    st.integers(1, 7),
    st.frozensets(st.integers(2, 8), max_size=2),
)
def test_where_a_value_closes_is_where_a_parse_of_the_lines_joined_says(lines, width, bad):
    """Hostile lines after one whose quote is left open: read once, line by line, the value
    closes on the line where the joined lines stop being inside it, or it never closes."""
    raw = ['x,"open', *lines]
    assert _open_field(raw[0]) is not None
    assert _closing_line(raw, 0, width, bad) == _closing_line_by_joining(raw, width, bad)


def test_lines_inside_a_value_that_never_closes_are_each_a_record_of_their_own():
    """An open quote in 投诉内容 that never closes, then lines of text with doubled quotes: none
    closes the value, and each is held as a record of its own (what the joined lines make is
    not one record). `bench/hostile_csv.py` times this with 40,000 lines."""
    lines = [f'继续说""第{i}行""' for i in range(2_000)]
    text = HEADER + 'C1,2025-07-01,电话,1,"从未闭合\n' + "\n".join(lines) + "\n" + WHOLE
    frame = read_csv_text(text.encode(), "c.csv", frozenset({"投诉内容"})).frame
    assert frame.height == 2_002
    assert frame.filter(pl.col("_ragged").is_null())["编号"].to_list() == ["C0"]
    assert frame["_ragged"][0].startswith("line 2: a quote opened in 投诉内容 does not close")
    assert (
        frame["_ragged"][1] == "line 3: the record has only 1 of the 6 fields in the header "
        "(cut short, or split by a line break outside quotes)"
    )


QUOTED_TEXT = "a quoted value in 投诉内容 has text after its closing quote"


def test_a_quoted_value_whose_inner_quotes_are_not_doubled_holds_its_line():
    """`"他说"你好""`: Polars read it as `他说你好`, without a word; no reading of it is sure."""
    assert _read('C1,2025-07-01,电话,1,"他说"你好"",0101\n') == [
        ("C0", 2, None),
        (
            "C1",
            3,
            f"line 3: {QUOTED_TEXT}, so the line's values cannot be read for sure; the line is "
            "held as a record of its own",
        ),
        ("C9", 4, None),
    ]


def test_text_after_a_closing_quote_names_the_column_it_is_in():
    """`""C1"` read as the id `C1"`."""
    rows = _read('""C1",2025-07-01,电话,1,好,0101\n')
    assert rows[1][1:] == (
        3,
        "line 3: a quoted value in 编号 has text after its closing quote, so the line's values "
        "cannot be read for sure; the line is held as a record of its own",
    )


def test_a_quote_inside_a_value_that_is_not_quoted_is_text():
    text = HEADER + WHOLE + 'C1,2025-07-01,电话,1,他说"你好",0101\n'
    table = read_csv_text(text.encode(), "c.csv", frozenset({"投诉内容"}))
    assert table.frame.filter(pl.col("编号") == "C1")["投诉内容"].to_list() == ['他说"你好"']
    assert table.frame["_ragged"].null_count() == 2


def test_free_text_over_two_lines_with_text_after_its_closing_quote_is_held_as_one_record():
    assert _read('C1,2025-07-01,电话,1,"第一行\n第二"行",0101\n') == [
        ("C0", 2, None),
        (
            "C1",
            3,
            "lines 3-4: a quote opened in 投诉内容 closes on line 4, but a quoted value in "
            "投诉内容 has text after its closing quote; the lines are held as one record",
        ),
        ("C9", 5, None),
    ]


@pytest.mark.parametrize(
    ("records", "in_place"),
    [
        (b'"a","b"\n', True),
        (b'"a""b",c\r\n"",""""\r\n', True),  # doubled quotes, empty values, CR LF
        (b'"a"\r', True),  # a CR ending the file
        (b'"a"\rx\n', False),  # a lone CR after a closing quote
        (b'""C1",x\n', False),
        (b'"a"b",c\n', False),
        (b'a"b,c\n', False),  # text, but not where CSV puts a quote: read line by line
        (b'"a', False),  # left open
    ],
)
def test_quotes_in_place_only_where_csv_puts_them(records, in_place):
    assert quotes_in_place(b"h1,h2\n" + records, len(b"h1,h2\n"), chunk=4) is in_place


LINE_PIECES = ["a", "中", ",", '"', '""', '","', " ", "0101"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(LINE_PIECES), max_size=8).map("".join), max_size=6),
    st.integers(1, 5),
)
def test_a_line_loads_only_if_its_quotes_pair_up_as_csv_does(lines, width):
    """One line a record, quotes anywhere (none left open at the end of a line): a line loads,
    with the values of a strict CSV parse, if that parse reads it as the header's fields; a line
    the strict parse refuses or of another width is held."""
    expected = []
    for number, line in enumerate(lines, start=2):
        try:
            fields = next(csv.reader([line], strict=True), [])
        except csv.Error as exc:
            assume("unexpected end of data" not in str(exc))
            continue
        if line and len(fields) == width:
            expected.append((number, tuple(v or None for v in fields)))
    text = ",".join(f"h{k}" for k in range(width)) + "\n" + "".join(f"{x}\n" for x in lines)
    frame = read_csv_text(text.encode(), "f.csv", frozenset()).frame
    loaded = [
        (row[-2], tuple(v or None for v in row[:width])) for row in frame.rows() if row[-1] is None
    ]
    assert loaded == expected
    assert frame.height == sum(1 for x in lines if x)  # blank lines are no records


def test_a_whole_line_that_closes_a_value_opened_above_is_held_with_it():
    """`"x","y","z"` is a record by itself (Polars' reader would take it so), but it closes the
    quote opened in 投诉内容 on the line above (its first quote), and text follows: the two lines
    are held as one record, and the second never loads on its own."""
    text = 'h0,h1,h2\na,"start\n"x","y","z"\n"p","q","r"\n'
    frame = read_csv_text(text.encode(), "f.csv", frozenset({"h1"})).frame
    assert frame.select("h0", "_line").rows() == [("a", 2), ("p", 4)]
    assert frame.get_column("_ragged").to_list()[0].startswith("lines 2-3: a quote opened in h1")
    assert frame.get_column("_ragged").to_list()[1] is None


def _whole_record(width: int) -> st.SearchStrategy[str]:
    """A line that is a whole record, its quotes where CSV puts them (every field quoted, or
    some), values with commas, doubled quotes and Chinese but no line break."""
    one_line = [v for v in VALUES if "\n" not in v and "\r" not in v]
    fields = st.tuples(st.sampled_from(one_line), st.booleans()).map(lambda f: _field(*f))
    return st.lists(fields, min_size=width, max_size=width).map(",".join)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda width: st.tuples(
            st.just(width),
            st.lists(
                st.one_of(
                    _whole_record(width),
                    st.lists(st.sampled_from([*PIECES, "\n"]), max_size=8).map("".join),
                ),
                max_size=8,
            ),
            st.sampled_from([None, 0, width - 1]),
            st.sampled_from(["\n", "\r\n"]),
        )
    )
)
def test_whole_lines_read_in_bulk_make_the_rows_they_made_one_by_one(case):
    """A line that is a whole record by itself is read by Polars' reader with the others like
    it (`_whole_line`); read one by one through Python's csv, as every line with a quote was
    before, the file makes exactly the same rows: values, lines and reasons."""
    from kesu.warehouse import csv_records

    width, lines, free, end = case
    text = ",".join(f"h{k}" for k in range(width)) + end + end.join(lines) + end
    headers = [f"h{k}" for k in range(width)]
    multiline = None if free is None else frozenset({free})
    bulk = csv_records.resplit(text.encode(), headers, multiline)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(csv_records, "_whole_line", lambda width: r"^\b\B$")  # matches nothing
        one_by_one = csv_records.resplit(text.encode(), headers, multiline)
    assert bulk[0].rows() == one_by_one[0].rows()
    assert bulk[1:] == one_by_one[1:]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "中", "\n", "\r", '"', ",", "\ufeff"]), max_size=12))
def test_the_lines_kept_as_bytes_are_the_lines_split_from_the_text(pieces):
    """A line is decoded where it is read, and the column of lines points into the file's
    bytes; both are the text's lines as `str.split` gives them, a final line break ending the
    last line (the column keeps each line's break, which `resplit` strips)."""
    from kesu.warehouse.csv_records import _Lines

    text = "".join(pieces)
    expected = text.split("\n")
    if expected[-1] == "":
        expected.pop()
    lines = _Lines(text.encode())
    assert [lines[k] for k in range(len(lines))] == expected == lines[:]
    breaks = [line + "\n" for line in expected]
    if breaks and not text.endswith("\n"):
        breaks[-1] = breaks[-1].removesuffix("\n")
    assert lines.frame().get_column("text").to_list() == breaks
