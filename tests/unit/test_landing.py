"""Reading landing files: encodings, quoting, ragged records, line numbers, the drop listing."""

import io
import os
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kesu.warehouse.landing import (
    RAGGED,
    SourceReadError,
    decode,
    list_drop,
    looks_like_big5,
    read_csv_text,
    unique_headers,
)

ROWS = '编号,内容\nA1,"含逗号,和\n换行"\nA2,普通\n'


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (ROWS.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + ROWS.encode("utf-8"), "utf-8-sig"),
        (ROWS.encode("gb18030"), "gb18030"),
    ],
)
def test_each_encoding_reads_the_same_rows(data, encoding):
    table = read_csv_text(data, "f.csv")
    assert table.encoding == encoding
    assert table.frame["编号"].to_list() == ["A1", "A2"]
    assert table.frame["内容"][0] == "含逗号,和\n换行"


def test_non_utf8_bytes_after_an_ascii_header_are_still_found():
    # UTF-8 is assumed and Polars validates it; GB18030 text that only starts in a data row (the
    # header is ASCII, valid in both) must still be transcoded, not read as mojibake or failed.
    data = "id,text\nA1,投诉内容\n".encode("gb18030")
    table = read_csv_text(data, "f.csv")
    assert table.encoding == "gb18030"
    assert table.frame["text"].to_list() == ["投诉内容"]


def test_a_gb18030_file_decodes_alike_whole_and_around_a_line_that_does_not():
    # A file that decodes is transcoded in one piece; one undecodable line sends it line by line,
    # where only that line is emptied (and named), the others decoded as in the whole file.
    lines = ["编号,内容", "A1,投诉内容𠮷", "A2,普通"]
    whole = decode("\n".join(lines).encode("gb18030"), "f.csv")
    assert whole == ("\n".join(lines).encode("utf-8"), "gb18030", frozenset())
    broken = [lines[0].encode("gb18030"), b"A3,\xff\xff", *(x.encode("gb18030") for x in lines[1:])]
    body, encoding, bad = decode(b"\n".join(broken), "f.csv")
    assert (encoding, bad) == ("gb18030", frozenset({2}))
    assert body.split(b"\n") == [lines[0].encode(), b"", *(x.encode() for x in lines[1:])]


def test_broken_quoting_in_a_non_utf8_file_is_decoded_first():
    data = 'id,text\nA1,投诉\nA2,"未闭合\n'.encode("gb18030")
    table = read_csv_text(data, "f.csv")
    assert table.encoding == "gb18030"
    # the quote never closes: the line is held as a record of its own (issue 10)
    assert table.frame["text"].to_list() == ["投诉", "未闭合"]
    assert table.frame[RAGGED][1].startswith("line 3: a quote opened in text does not close")
    assert "malformed" in table.notes[0]


def test_line_numbers_count_newlines_inside_quotes():
    # A1 starts on line 2 and spans two lines, so A2 is on line 4.
    assert read_csv_text(ROWS.encode(), "f.csv").frame["_line"].to_list() == [2, 4]


def test_too_many_fields_is_marked_not_dropped():
    table = read_csv_text(b"a,b\n1,2\n3,4,5\n", "f.csv")
    assert table.frame.height == 2
    assert table.frame[RAGGED].to_list()[0] is None
    assert "more fields" in table.frame[RAGGED][1]


def test_broken_quoting_falls_back_to_record_by_record():
    # A truncated export: the last quote never closes. The good record still reads.
    table = read_csv_text(b'a,b\n1,2\n3,"cut off\n', "f.csv")
    assert table.frame["a"].to_list() == ["1", "3"]
    assert table.notes and "malformed" in table.notes[0]


@pytest.mark.parametrize("body", [b"\na,b\n1,2\n", b"\r\na,b\r\n", "\ufeff\n投诉编号\n".encode()])
def test_a_first_line_that_is_empty_fails_the_file_with_what_to_fix(body):
    """Not an IndexError reported as kesu's own failure: the header must be the first line."""
    with pytest.raises(SourceReadError, match="f.csv: the first line is empty; the header row"):
        read_csv_text(body, "f.csv")


def test_empty_file_and_undecodable_file_fail_with_the_file_name():
    with pytest.raises(SourceReadError, match="f.csv: the file is empty"):
        read_csv_text(b"", "f.csv")
    with pytest.raises(SourceReadError, match="f.csv"):
        read_csv_text(b"\xef\xbb\xbfa\n\xff\xfe\n", "f.csv")


def test_header_only_file_has_no_rows():
    assert read_csv_text("编号,内容\n".encode(), "f.csv").frame.height == 0


def _unique_header_as_it_was(headers: list[str], i: int) -> str:
    """The definition `unique_headers` replaced (quadratic: 20,000 columns took 6 s)."""
    h = headers[i] or f"(column {i + 1} has no header)"
    if h.startswith("_"):
        h = f"(column {i + 1}) {h}"
    seen = headers[:i].count(headers[i])
    return h if seen == 0 else f"{h}#{seen + 1}"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["", "a", "b", "_line", "a#2", "(column 2 has no header)"])))
def test_unique_headers_names_columns_as_before_and_each_its_own(headers):
    """As before wherever that gave distinct names; where it did not (`a,a,a#2`: two `a#2`),
    the file failed as "could not be read (DuplicateError)"."""
    names = unique_headers(headers)
    assert len(set(names)) == len(names)
    before = [_unique_header_as_it_was(headers, i) for i in range(len(headers))]
    if len(set(before)) == len(before):
        assert names == before


def test_a_header_like_a_repeats_suffix_is_read():
    table = read_csv_text(b"a,a,a#2\n1,2,3\n", "f.csv")
    assert table.frame.columns[:3] == ["a", "a#2", "a#2#2"]


def test_repeated_header_keeps_both_columns():
    table = read_csv_text(b"a,a\n1,2\n", "f.csv")
    assert table.frame.columns[:2] == ["a", "a#2"]


def test_listing_skips_what_it_cannot_read_and_never_follows_links(tmp_path):
    day = tmp_path / "hotline" / "2025-01-02"
    day.mkdir(parents=True)
    (day / "b.csv").write_text("x")
    (day / "a.XLSX").write_bytes(b"x")
    (day / "notes.txt").write_text("x")
    (day / ".partial.csv").write_text("x")
    outside = tmp_path / "secret.csv"
    outside.write_text("x")
    os.symlink(outside, day / "link.csv")
    listing = list_drop(tmp_path, "hotline", date(2025, 1, 2))
    assert [p.name for p in listing.files] == ["a.XLSX", "b.csv"]
    assert dict(listing.skipped) == {
        ".partial.csv": "hidden or temporary file",
        "link.csv": "symbolic link (not followed)",
        "notes.txt": "not a .csv, .xlsx or .xls file",
    }
    assert not list_drop(tmp_path, "hotline", date(2025, 1, 3)).exists


def test_a_bare_carriage_return_inside_a_quoted_line_is_text_not_a_crash():
    # Python's csv refuses a lone CR in a field ("new-line character seen in unquoted field");
    # found by the broken-export property test: the whole file failed instead of one record.
    from kesu.warehouse.csv_records import _fields, _open_field

    assert _fields('""\r",B03,x') == ['\r"', "B03", "x"]
    assert _open_field('a,"b\rc') == 1
    assert _open_field('a,"b\rc"') is None


@pytest.mark.parametrize("prefixed", [False, True])
def test_long_numbers_are_counted_as_the_excel_reader_counts_rows_and_columns(prefixed):
    """A sheet starting at C3 (formatted rows and columns before it): the reader's record 0 is
    row 4 and its column 0 is C. Only numeric cells of 16 or more digits count, not text. The
    same under a namespace prefix (`<x:c …>`), which the reader reads too."""
    import re
    import zipfile

    import openpyxl
    from kesu.warehouse.xlsx_xml import header_row, long_numbers

    book = openpyxl.Workbook()
    sheet = book.active
    sheet["A1"].fill = openpyxl.styles.PatternFill("solid", fgColor="FFFF00")
    for r, row in enumerate(
        [
            ["id", "证件号码", "金额"],
            [202506270000012345, "110101199003077777", 100.5],  # a number; text
            ["R2", 110101199003077777, 1e15],  # 16 digits before the point, written 1e+15
            ["R3", 999999999999999, -2.5e16],  # 15 digits: exact; a negative one of 17
        ],
        start=3,
    ):
        for c, value in enumerate(row, start=3):
            sheet.cell(row=r, column=c, value=value)
    buffer = io.BytesIO()
    book.save(buffer)
    data = buffer.getvalue()
    if prefixed:
        src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
        with zipfile.ZipFile(out, "w") as dst:
            for info in src.infolist():
                xml = src.read(info)
                if info.filename == "xl/worksheets/sheet1.xml":
                    xml = re.sub(rb"<(/?)(?=[A-Za-z])", rb"<\1x:", xml)
                    xml = xml.replace(b"<x:worksheet xmlns=", b"<x:worksheet xmlns:x=")
                dst.writestr(info, xml)
        data = out.getvalue()
    assert header_row(data) == 3
    assert long_numbers(data, 3) == {0: [0], 1: [1, 2], 2: [2]}


@pytest.mark.parametrize(
    "header",
    [
        "\ufeff\ufeff通话编号,来电时间",
        "通话编号\u200b,来电时间",
        "\u2060通话编号, 来电时间\u200d",
        "通话\x00编号,来电时间",  # a NUL a broken export wrote
    ],
)
def test_invisible_characters_in_a_header_are_removed_and_noted(header):
    """A second BOM where two exports were joined, a zero-width space pasted from a web page:
    the header looked like 通话编号 and was an unknown column, so the file failed for a
    required column that was there."""
    table = read_csv_text(f"{header}\nC1,2025-07-01 10:00:00\n".encode(), "f.csv", frozenset())
    assert table.frame.columns[:2] == ["通话编号", "来电时间"]
    assert table.frame.row(0)[:2] == ("C1", "2025-07-01 10:00:00")
    assert table.notes == [
        "invisible characters (a BOM, a zero-width space) removed from the header(s) "
        + ("通话编号、来电时间" if header.endswith("\u200d") else "通话编号")
    ]


def test_invisible_characters_in_an_excel_header_are_removed_and_noted(tmp_path):
    import openpyxl
    from kesu.warehouse.landing_excel import read_excel

    book = openpyxl.Workbook()
    book.active.append(["\u200b转办单号", "来源"])
    book.active.append(["R1", "12378热线"])
    book.save(tmp_path / "t.xlsx")
    table = read_excel(tmp_path / "t.xlsx")
    assert table.frame.columns[:2] == ["转办单号", "来源"]
    assert table.notes == [
        "invisible characters (a BOM, a zero-width space) removed from the header(s) 转办单号"
    ]


def test_a_file_with_a_quote_out_of_place_and_a_line_not_utf8_holds_that_line():
    """Such a file skips Polars' reader, which would have refused the line not in UTF-8: whether
    the bytes are UTF-8 is told before the reading line by line, and the file is then decoded
    line by line, the undecodable line held, the stray quote's line held, the rest loaded."""
    header = "投诉编号,受理时间,渠道,金额,投诉内容,机构\n".encode()
    good = 'C1,2025-07-01,电话,1,"好的",0101\n'.encode()
    stray = '""C2",2025-07-01,电话,1,坏,0101\n'.encode()
    gbk = "C3,2025-07-01,电话,1,没有转换,0101\n".encode("gb18030")
    last = 'C4,2025-07-01,电话,1,"他说""你好""",0101\n'.encode()
    table = read_csv_text(header + good + stray + gbk + last, "c.csv", frozenset({"投诉内容"}))
    assert table.encoding == "utf-8"
    rows = table.frame.select("投诉编号", "投诉内容", "_line").rows()
    assert rows == [("C1", "好的", 2), ('C2"', "坏", 3), (None, None, 4), ("C4", '他说"你好"', 5)]
    held = table.frame.get_column("_ragged").to_list()
    assert held[0] is None and held[3] is None
    assert held[1].startswith("line 3: a quoted value in 投诉编号 has text after its closing quote")
    assert held[2] == "line 4: not valid text in the file's encoding (UTF-8)"


@pytest.mark.parametrize(
    ("header", "encoding", "big5"),
    [
        ("投訴編號,工單類型,受理渠道,機構代碼", "big5", True),
        ("通話編號,來電時間,主叫號碼,處理結果\r\nC001", "cp950", True),
        ("投诉编号,工单类型,受理渠道,机构代码", "gb18030", False),
        ("投诉编号,工单类型,受理渠道,机构代码", "utf-8", False),
        ("ticket,type", "ascii", False),
    ],
)  # fmt: skip
def test_a_header_row_in_big5_is_told_from_one_in_gb18030(header, encoding, big5):
    assert looks_like_big5(f"{header}\n1,2".encode(encoding)) is big5
