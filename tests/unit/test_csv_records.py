"""The CSV reader against Python's `csv` module, the reference for what a record is: every record
of the header's width whose line breaks are all in the column that may hold one loads with
exactly its values, and nothing else loads (the rest is held, each with a reason)."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st
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
