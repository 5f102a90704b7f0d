"""An .xlsx made to break the Excel reader (calamine): its size check reads the XML as the
reader's parser does, so that no way of writing a far cell or a large claim gets past it.

Each file below passed the check of the thirty-sixth session, and the reader then asked for
50 GB to 9 TB and aborted the process (measured in a child process)."""

from __future__ import annotations

import io
import re
import zipfile

import fastexcel
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kesu.warehouse.landing import SourceReadError
from kesu.warehouse.xlsx_xml import MAX_CELLS, check_sheet_sizes
from test_bad_input_corpus import _with_part, _xlsx, ingest, ingest_in_child, transfer

FAR = b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>'


def _with_far_cell(cell: bytes, pad: int = 0) -> bytes:
    """A sound workbook of one transfer, with `cell` (a row holding one far cell) added at the
    end of its sheet, after `pad` bytes of white space."""
    return _with_part(
        _xlsx([transfer(1)]),
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(b"</sheetData>", b" " * pad + cell + b"</sheetData>"),
    )


def _straddling() -> bytes:
    """The far cell's reference starting 10 bytes past the first MiB of the sheet's XML, its
    tag 100 bytes before: the check read the two in different pieces."""
    cell = b'<row r="1048576"><c t="inlineStr"' + b" " * 100 + FAR[FAR.index(b' r="XFD') :]
    cell = cell.replace(b' t="inlineStr"><is>', b"><is>")
    head = _xml(_xlsx([transfer(1)])).split(b"</sheetData>")[0]
    return _with_far_cell(cell, pad=(1 << 20) + 10 - len(head) - cell.index(b'r="XFD'))


def _xml(workbook: bytes) -> bytes:
    return zipfile.ZipFile(io.BytesIO(workbook)).read("xl/worksheets/sheet1.xml")


BROKEN = {
    "a reference of eight digits": (
        lambda: _with_far_cell(FAR.replace(b"1048576", b"17295575")),
        "sheet sheet1.xml claims 17295575 rows × 16384 columns",
    ),
    "a reference in lower case": (
        lambda: _with_far_cell(FAR.replace(b'r="XFD', b'r="xfd')),
        "sheet sheet1.xml claims 1048576 rows × 16384 columns",
    ),
    "a reference of four letters": (
        lambda: _with_far_cell(FAR.replace(b'r="XFD', b'r="AAAA')),
        "sheet sheet1.xml claims 1048576 rows × 18279 columns",
    ),
    "a reference in single quotes": (
        lambda: _with_far_cell(re.sub(rb'r="([A-Z0-9]+)"', rb"r='\1'", FAR)),
        "sheet sheet1.xml claims 1048576 rows × 16384 columns",
    ),
    "a `>` in an attribute before the reference": (
        lambda: _with_far_cell(FAR.replace(b'<c r="XFD1048576"', b'<c cm=">" r="XFD1048576"')),
        "sheet sheet1.xml claims 1048576 rows × 16384 columns",
    ),
    "a reference across the check's first MiB": (
        _straddling,
        "sheet sheet1.xml claims 1048576 rows × 16384 columns",
    ),
    "a reference given twice, the reader taking the second": (
        lambda: _with_far_cell(FAR.replace(b'<c r="XFD', b'<c r="A1048576" r="XFD')),
        "sheet sheet1.xml claims 1048576 rows × 16384 columns",
    ),
    "cells whose reference the reader does not see (`x r=`), placed one after another": (
        lambda: _with_far_cell(
            FAR.replace(b'r="XFD', b'r="A').replace(
                b"</row>", b'<c x r="A1" t="inlineStr"><is><t>x</t></is></c>' * 30 + b"</row>"
            )
        ),
        "sheet sheet1.xml claims 1048576 rows × 31 columns",
    ),
    "shared strings claiming two billion": (
        lambda: _with_part(
            _xlsx([transfer(1)]),
            "xl/sharedStrings.xml",
            lambda xml: re.sub(rb'uniqueCount="[0-9]+"', b'uniqueCount="2147483648"', xml),
        ),
        f"its shared strings claim 2147483648 strings, more than the {MAX_CELLS} kesu reads",
    ),
    "a sheet stored outside xl/worksheets/": (
        lambda: _moved_sheet(_with_far_cell(FAR)),
        "sheet data.xml claims 1048576 rows × 16384 columns",
    ),
}


def _moved_sheet(workbook: bytes) -> bytes:
    """The same workbook with its sheet at xl/data.xml: the reader finds it by the workbook's
    relationships, whatever its path."""
    src, out = zipfile.ZipFile(io.BytesIO(workbook)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            data = data.replace(b"worksheets/sheet1.xml", b"data.xml")
            dst.writestr(info.filename.replace("worksheets/sheet1.xml", "data.xml"), data)
    return out.getvalue()


@pytest.mark.parametrize("kind", BROKEN)
def test_a_far_cell_or_a_large_claim_is_refused_however_it_is_written(kind):
    """Checked directly, not through the reader: had the check missed one, the reader would
    have taken the test process down. Where a file is written as no usual writer writes, the
    check may claim more than the reader would take (never less)."""
    make, message = BROKEN[kind]
    with pytest.raises(SourceReadError) as refused:
        check_sheet_sizes(make(), "bomb.xlsx")
    said = str(refused.value)
    assert said.startswith("bomb.xlsx: ")
    claim = re.fullmatch(r"(sheet \S+) claims (\d+) rows × (\d+) columns", message)
    if claim is None:
        assert message in said
    else:
        sheet, rows, cols = claim.groups()
        found = re.search(r"(sheet \S+) claims (\d+) rows × (\d+) columns", said)
        assert found and found.group(1) == sheet
        assert int(found.group(2)) >= int(rows) and int(found.group(3)) >= int(cols)


def test_no_file_made_to_break_the_reader_takes_the_process_down(tmp_path):
    """End to end, in a child process limited to 4 GB of address space (a check gone wrong
    shows as a failed test, not a test run killed): each file beside a good one fails alone."""
    files = {f"{i}.xlsx": make() for i, (make, _) in enumerate(BROKEN.values())}
    files["good.xlsx"] = _xlsx([transfer(1)])
    outcomes = ingest_in_child(tmp_path, files, "regulator_transfers")
    expected = [f"{i}.xlsx|failed|0" for i in range(len(BROKEN))] + ["good.xlsx|ok|1"]
    assert ["|".join(o[:3]) for o in outcomes] == expected


# --- where the reader places cells -------------------------------------------------------------

# A cell: how its reference is written (None: left out, as the format allows), how many columns
# it skips (only with a reference), and its value: text, a number, a number of 16+ digits (by its
# index: each is its own), or nothing (a formatted, empty cell).
_REFERENCE_STYLE = st.sampled_from([None, "upper", "lower", "single"])
_VALUE = st.one_of(
    st.just(("empty", 0)),
    st.tuples(st.just("text"), st.integers(0, 10**6)),
    st.tuples(st.just("number"), st.integers(1, 10**6)),
    st.tuples(st.sampled_from(["long", "exponent"]), st.integers(1, 99)),
)
_CELL = st.tuples(_REFERENCE_STYLE, st.integers(0, 3), _VALUE)
_ROW = st.tuples(st.one_of(st.none(), st.integers(0, 3)), st.lists(_CELL, max_size=5))


def _letters(column: int) -> str:
    name = ""
    while column >= 0:
        column, rest = divmod(column, 26)
        name, column = chr(65 + rest) + name, column - 1
    return name


def _sheet(rows: list) -> tuple[bytes, list[tuple[str, float | str]]]:
    """A sheet's XML as odd writers write it, and the values in the order written."""
    xml, values, row = [], [], -1
    for k, (gap, cells) in enumerate(rows):
        row += 1 if gap is None else 1 + gap
        xml.append("<row>" if gap is None else f'<row r="{row + 1}">')
        column = -1
        for i, (style, skip, (kind, n)) in enumerate(cells):
            column += 1 if style is None else 1 + skip
            ref = f"{_letters(column)}{row + 1}"
            ref = {"lower": f' r="{ref.lower()}"', "single": f" r='{ref}'", "upper": f' r="{ref}"'}
            tag = f"<c{ref.get(style, '')}"
            if kind == "empty":
                xml.append(f'{tag} s="0"/>')
            elif kind == "text":
                text = f"t{k}.{i}.{n}"  # each its own
                xml.append(f'{tag} t="inlineStr"><is><t>{text}</t></is></c>')
                values.append(("text", text))
            else:
                n = n * 100 + len(values)  # each its own, a header's name too
                number = {"number": n, "long": 10**17 + n * 1000, "exponent": 10**19 + n * 10**8}
                written = f"{number[kind]:.12E}" if kind == "exponent" else str(number[kind])
                xml.append(f"{tag}><v>{written}</v></c>")
                values.append((kind, float(written)))
        xml.append("</row>")
    return "".join(xml).encode(), values


def _workbook(body: bytes) -> bytes:
    """A workbook whose first sheet's rows are `body` (and no <dimension>)."""
    return _with_part(
        _xlsx([transfer(1)]),
        "xl/worksheets/sheet1.xml",
        lambda xml: re.sub(
            rb"<sheetData>.*</sheetData>",
            lambda _: b"<sheetData>" + body + b"</sheetData>",
            re.sub(rb"<dimension[^>]*/>", b"", xml),
            flags=re.S,
        ),
    )


def test_a_sheet_without_upper_case_references_has_its_lines_and_long_numbers():
    """The header on row 3, its first reference in lower case and the rest left out: the lines
    counted from 2 (the header taken for row 1), and a 转办单号 typed as a number of 18 digits,
    in a cell without a reference, loaded rounded without a word."""
    from kesu.warehouse.xlsx_xml import header_row, long_numbers

    header = [("lower", 0, ("text", 1)), (None, 0, ("text", 2))]
    record = [(None, 0, ("text", 3)), (None, 0, ("long", 4))]
    data = _workbook(_sheet([(2, header), (None, record)])[0])
    assert header_row(data) == 3
    assert long_numbers(data, 3) == {0: [1]}


@settings(max_examples=150, deadline=None)
@given(st.lists(_ROW, min_size=1, max_size=6))
def test_cells_are_placed_and_long_numbers_found_where_the_reader_puts_them(rows):
    """Against the reader itself, on sheets written as odd writers write them: references left
    out (each cell after the one before, each row after the last), in lower case, in single
    quotes; rows numbered with gaps or not at all. Every value is where kesu says the reader
    puts it, and the long numbers are the reader's (they were missed without a reference, and
    loaded rounded)."""
    from kesu.warehouse.xlsx_xml import _placed_cells, header_row, long_numbers

    body, values = _sheet(rows)
    data = _workbook(body)
    placed = list(_placed_cells(data, to_the_end=True))
    assert len(placed) == len(values)
    if not values:
        assert (header_row(data), long_numbers(data, 1)) == (1, {})
        return
    sheet = fastexcel.read_excel(data).load_sheet(0, header_row=0, dtypes="string")
    frame = pl.DataFrame(pl.from_arrow(sheet.to_arrow()))
    names, records = frame.columns, frame.rows()
    top, left = header_row(data), min(column for _, column, _ in placed)
    assert top == placed[0][0] + 1
    expected: dict[int, list[int]] = {}
    for (row, column, long), (kind, value) in zip(placed, values, strict=True):
        assert long == (kind in ("long", "exponent"))
        read = names[column - left] if row == top - 1 else records[row - top][column - left]
        assert (read if kind == "text" else float(read)) == value
        if long and row >= top:
            expected.setdefault(row - top, []).append(column - left)
    assert long_numbers(data, top) == expected


@pytest.mark.parametrize("offset", [-30, -5, 0, 3, 12])
def test_a_long_number_across_the_first_mib_of_the_sheet_is_found(offset):
    """The sheet is read a MiB at a time, each piece ending before a tag: a value of 18 digits
    whose tag or digits straddle the first MiB is still one value, found and placed."""
    from kesu.warehouse.xlsx_xml import long_numbers

    cell = b'<row r="3"><c r="A3"><v>202506270000012345</v></c></row>'
    head = _xml(_xlsx([transfer(1)])).split(b"</sheetData>")[0]
    pad = (1 << 20) + offset - len(head) - cell.index(b"<v>")
    assert long_numbers(_with_far_cell(cell, pad=pad), 1) == {1: [0]}


def test_a_panic_in_the_reader_fails_its_file_alone(tmp_path):
    """A date cell (转办日期) holding -1e300: the reader's date arithmetic panics on it, which
    reaches Python as a `BaseException` that the file's `except Exception` let through: the
    whole drop stopped. (The .xls records that made it panic are refused before it now.)"""

    def far_past(sheet: bytes) -> bytes:
        # the first record's 转办日期, the only cell of row 2 with a style and a number
        return re.sub(rb'(<c r="[A-Z]+2" s="[0-9]+"><v>)[0-9.]+(</v>)', rb"\g<1>-1e300\2", sheet)

    broken = _with_part(_xlsx([transfer(1)]), "xl/worksheets/sheet1.xml", far_past)
    drop = ingest(
        tmp_path,
        {"broken.xlsx": broken, "good.xlsx": _xlsx([transfer(2)])},
        feed="regulator_transfers",
    )
    failed = drop.files["broken.xlsx"]
    assert failed.status == "failed"
    assert failed.message == "broken.xlsx: cannot be read as XLSX (the Excel reader crashed on it)"
    assert drop.files["good.xlsx"].loaded == 1
