"""The cheap record-shape check: byte counts vouch for a file whose every record is whole, and
anything else (a record cut short, a blank line, an extra field, quotes, CRs) is counted field by
field, so the file reads exactly as before."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from kesu.warehouse.csv_bytes import byte_positions, count_byte, every_record_whole, is_utf8
from kesu.warehouse.landing import _read_fast, read_csv_text

HEADER = "通话编号,来电时间,归属机构\n"


def polars_frame(body: bytes) -> pl.DataFrame:
    """The columns `_read_fast` gives the check: the header's three (Polars refuses a record
    with more fields, which the check is then not asked about)."""
    names = ["_c0", "_c1", "_c2"]
    return pl.read_csv(
        body,
        has_header=False,
        skip_rows=1,
        new_columns=names,
        schema={n: pl.String for n in names},
        truncate_ragged_lines=False,
        missing_columns="insert",
    )


@pytest.mark.parametrize(
    ("records", "whole"),
    [
        ("C1,2025-07-01 10:00:00,0101\nC2,2025-07-01 10:01:00,\n", True),  # empty last field
        ("C1,,\nC2,2025-07-01 10:01:00,0101", True),  # empty fields, no final line break
        ("C1,2025-07-01 10:00:00,0101\nC2,2025-07-01\n", False),  # cut short: 2 of 3 fields
        ("C1,2025-07-01 10:00:00,0101\n\nC2,,\n", False),  # a blank line: counted as before
        ('C1,"2025-07-01 10:00:00",0101\n', False),  # quotes: values are not their bytes
        ("C1,2025-07-01 10:00:00,0101\r\n", False),  # CRs: counted as before
    ],
)
def test_byte_counts_vouch_only_for_files_of_whole_records(records, whole):
    body = (HEADER + records).encode()
    assert every_record_whole(body, polars_frame(body), b'"' in body) is whole


@pytest.mark.parametrize(
    "records",
    [
        "C1,2025-07-01 10:00:00\nC2,2025-07-01 10:01:00,0101,x\n",  # short + extra
        "C1,2025-07-01 10:00:00,0101,\nC2,2025-07-01\n",  # short + extra empty: balanced
        "C1,2025-07-01,0101,,x\nC2\nC3,2025-07-01,0101\n",  # two short of two extra
    ],
)
def test_a_record_cut_short_is_held_beside_one_with_more_fields(records):
    """The byte counts of these files add up to whole records; only the records' own counts
    tell the short one."""
    frame = read_csv_text((HEADER + records).encode(), "hotline.csv", frozenset()).frame
    shapes = zip(frame["_line"], frame["_ragged"], strict=True)
    short = [line for line, why in shapes if why and "only" in why]
    assert short == [
        line for line, record in enumerate(records.splitlines(), 2) if record.count(",") < 2
    ]


_VALUE = st.sampled_from(["", "C1", "2025-07-01 10:00:00", "0101", "x"])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(_VALUE, min_size=1, max_size=5), min_size=1, max_size=8))
@example([["C1", "x", "0101", ""], ["C2", "x"]])  # one extra (empty) field, one missing
@example([["C1", "x", "0101", "", ""], ["C2"], ["C3", "", ""]])
def test_every_record_cut_short_is_held(records):
    """Records of 1 to 5 fields beside a header of 3, no quotes: each record of fewer fields is
    held as cut short, each of more as too long (its extra fields empty or not), each of exactly
    3 is not held (a blank line: a 1-field record of "")."""
    records = [r for r in records if r != [""]]  # a blank line is skipped, not a record
    if not records:
        return
    body = (HEADER + "".join(",".join(r) + "\n" for r in records)).encode()
    frame = read_csv_text(body, "hotline.csv", frozenset()).frame
    why = dict(zip(frame["_line"], frame["_ragged"], strict=True))
    for line, record in enumerate(records, 2):
        if len(record) < 3:
            assert f"only {len(record)} of the 3" in why[line]
        elif len(record) > 3:
            assert why[line] == f"line {line}: the record has more fields than the 3 in the header"
        else:
            assert why[line] is None


@pytest.mark.parametrize(
    "record",
    [
        "C2,2025-07-01 10:01:00,0101,",  # one extra field, empty
        "C2,2025-07-01 10:01:00,0101,,",  # two, both empty
        "C2,2025-07-01 10:01:00,0101,,x",  # an empty one, then a value Polars would drop
        "C2,2025-07-01 10:01:00,,",  # the last real field empty as well
        "C2,2025-07-01 10:01:00,0101,x",  # a value in the extra field
    ],
)
def test_a_record_with_more_fields_is_held_whether_or_not_they_are_empty(record):
    """Polars reads an empty extra field as null and drops what follows it; counted, every
    record longer than the header is held (line 3), beside whole ones that load."""
    body = (HEADER + f"C1,2025-07-01 10:00:00,0101\n{record}\nC3,2025-07-01,\n").encode()
    frame = read_csv_text(body, "hotline.csv", frozenset()).frame
    assert frame.select("_line", "_ragged").rows() == [
        (2, None),
        (3, "line 3: the record has more fields than the 3 in the header"),
        (4, None),
    ]


def test_a_record_cut_short_is_still_held_when_the_others_are_whole():
    body = (HEADER + "C1,2025-07-01 10:00:00,\nC2,2025-07-01 10:01:00\nC3,,\n").encode()
    frame, blank = _read_fast(body, 3, b'"' in body)
    assert blank == 0
    assert frame["_ragged"].to_list() == [
        None,
        "line 3: the record has only 2 of the 3 fields in the header (cut short, or split by a "
        "line break outside quotes)",
        None,
    ]


def test_a_file_of_whole_records_reads_with_its_lines_and_no_shape_problem():
    body = (HEADER + "C1,2025-07-01 10:00:00,\nC2,,0101\n").encode()
    table = read_csv_text(body, "hotline.csv", frozenset())
    assert table.frame.select("_line", "_ragged").rows() == [(2, None), (3, None)]
    assert table.frame["归属机构"].to_list() == [None, "0101"]


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300), start=st.integers(0, 320), chunk=st.integers(1, 64))
def test_the_chunked_byte_count_is_bytes_count(body, start, chunk):
    """Chunks of every size, starts inside and past the body: the count `every_record_whole`
    relies on is the one `bytes.count` gives."""
    for byte in (ord("\n"), 0, 255):
        assert count_byte(body, byte, start, chunk) == body.count(bytes([byte]), start)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300), start=st.integers(0, 320), chunk=st.integers(1, 64))
def test_the_chunked_byte_positions_are_where_the_byte_is(body, start, chunk):
    for byte in (ord("\n"), 0, 255):
        expected = [i for i in range(start, len(body)) if body[i] == byte]
        assert byte_positions(body, byte, start, chunk).tolist() == expected


@settings(max_examples=200, deadline=None)
@given(body=st.one_of(st.binary(max_size=40), st.text(max_size=20).map(str.encode)))
@example(body=b"\xed\xa0\x80")  # a surrogate
@example(body=b"\xc0\x80")  # an overlong NUL
@example(body=b"\xf4\x90\x80\x80")  # past U+10FFFF
@example(body="中文".encode()[:-1])  # cut inside a character
def test_utf8_is_told_without_decoding_as_decoding_tells_it(body):
    try:
        body.decode("utf-8")
        decodes = True
    except UnicodeDecodeError:
        decodes = False
    assert is_utf8(body) is decodes


def test_a_file_read_in_chunks_keeps_each_records_line_and_shape():
    """A file large enough for Polars' reader to cut it into chunks: kesu's own columns are cut
    as the reader's are (no copy of the text into one chunk), and still name the right lines."""
    rows = [f"C{i},2025-07-01 10:00:00,0101" for i in range(60_000)]
    rows[30_000] = "C30000,2025-07-01 10:00:00"  # cut short: line 30002 (the header is line 1)
    rows[45_000] = ""  # a blank line (line 45002) in place of a record: not a record
    body = (HEADER + "\n".join(rows) + "\n").encode()
    frame, blank = _read_fast(body, 3, b'"' in body)
    layouts = {tuple(len(c) for c in frame[name].get_chunks()) for name in frame.columns}
    assert len(layouts) == 1 and frame["_c0"].n_chunks() > 1
    assert blank == 1 and frame.height == 59_999
    held = frame.filter(pl.col("_ragged").is_not_null())
    assert held.select("_c0", "_line").rows() == [("C30000", 30_002)]
    assert held["_ragged"][0].startswith("line 30002: the record has only 2 of the 3 fields")
    lines = dict(frame.select("_c0", "_line").iter_rows())
    assert (lines["C0"], lines["C44999"], lines["C45001"], lines["C59999"]) == (
        2,
        45_001,
        45_003,
        60_001,
    )
