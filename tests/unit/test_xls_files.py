"""An .xls export (Excel 97-2003), read as the Excel reader (calamine) reads it but walked first
(`kesu.warehouse.xls_biff`): its records' lines are their sheet rows, numbers Excel has cut short
are held, and no file, however made, can hang the process or take it down."""

from __future__ import annotations

import struct

import fastexcel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kesu.warehouse.landing import SourceReadError
from kesu.warehouse.xls_biff import XlsSheet, check_xls
from kesu.warehouse.xlsx_xml import MAX_CELLS
from test_bad_input_corpus import (
    XlsError,
    _single,
    _transfer_cells,
    _xls,
    ingest,
    ingest_in_child,
    transfer,
)


def _moved_right(rows: list[list], columns: int) -> list[list]:
    return [[None] * columns + row for row in rows]


def test_rows_and_columns_before_the_header_count_in_each_records_line(tmp_path):
    """The reader starts at the first row and column holding a cell: with two rows above the
    header, every record's line was off by two."""
    cells = [[None], [None]] + _transfer_cells(transfer(1), transfer(2, due_on="2025-02-20"))
    data = _xls(_moved_right(cells, 1))
    drop = ingest(tmp_path, {"transfers.xls": data}, feed="regulator_transfers")
    assert drop.loaded["source_line"].to_list() == [4]  # the header is row 3
    bad = drop.bad("R002")
    assert (bad["source_line"], bad["rule"]) == (5, "order")


def test_an_xls_renamed_xlsx_is_read_as_what_it_is(tmp_path):
    """The reader goes by the bytes; the checks went by the name, and refused the file as "not a
    zip archive"."""
    data = _xls(_transfer_cells(transfer(1)))
    drop = ingest(tmp_path, {"transfers.xlsx": data}, feed="regulator_transfers")
    assert (_single(drop).status, _single(drop).loaded) == ("ok", 1)


def test_a_workbook_of_several_sheets_is_read_from_its_first(tmp_path):
    data = _xls(_transfer_cells(transfer(1)), copies=3)
    drop = ingest(tmp_path, {"transfers.xls": data}, feed="regulator_transfers")
    outcome = _single(drop)
    assert (outcome.loaded, outcome.notes) == (1, ["read the first sheet '转办清单' of 3"])


def test_ids_typed_as_numbers_of_16_digits_and_error_values_are_held(tmp_path):
    """As in an .xlsx: a 转办单号 typed as a number has lost its last digits (Excel keeps 15),
    and `#N/A` is no value. The reader gave both as text (the rounded number, an empty cell)
    and they loaded. A phone typed as a number (11 digits) is exact, and loads."""
    cells = _moved_right(_transfer_cells(transfer(1), transfer(2), transfer(3), transfer(4)), 2)
    at = {name: 2 + i for i, name in enumerate(transfer(0))}
    cells[1][at["contact_phone"]] = 13900001111.0
    cells[2][at["transfer_id"]] = 2025062700000123.0
    cells[3][at["transfer_id"]] = 2.02506270000012e17
    cells[4][at["matter"]] = XlsError(0x2A)
    drop = ingest(tmp_path, {"transfers.xls": _xls([[None]] + cells)}, feed="regulator_transfers")
    outcome = _single(drop)
    assert (outcome.rows_in, outcome.loaded, outcome.quarantined) == (4, 1, 3)
    assert drop.loaded["source_line"].to_list() == [3]
    bad = drop.quarantined.sort("source_line")
    assert bad["reason"].to_list() == [
        f"line {n}: 转办单号 holds a number of 16 or more digits, more than the 15 Excel keeps: "
        "its last digits are lost (the column must be stored as text)"
        for n in (4, 5)
    ] + ["line 6: 投诉事项 holds an Excel error value (#N/A), not a value"]
    assert "2025062700000" not in " ".join(bad["reason"])  # the value is never quoted


_VALUES = st.one_of(
    st.none(),
    st.just(""),  # no cell, as None
    st.sampled_from(["转办单号", "R001", "x"]),
    st.sampled_from([1.0, 13900001111.0, 999999999999999.0, 1e15, 2025062700000123.0, -3e16]),
    st.just(XlsError(0x2A)),
)


@settings(max_examples=120, deadline=None)
@given(st.lists(st.lists(_VALUES, min_size=1, max_size=5), min_size=1, max_size=7))
def test_the_header_row_and_long_numbers_are_where_the_reader_puts_them(rows):
    """Against the reader itself: its header is the first row holding a cell (of text, a
    number or an error value), its records the rows after, its columns from the first column
    holding one."""
    cells = [
        (r, c, v) for r, row in enumerate(rows) for c, v in enumerate(row) if v not in (None, "")
    ]
    facts = check_xls(_xls(rows), "t.xls")
    if not cells:
        assert facts == XlsSheet()
        return
    top, left = min(r for r, _, _ in cells), min(c for _, c, _ in cells)
    bottom = max(r for r, _, _ in cells)
    sheet = fastexcel.read_excel(_xls(rows)).load_sheet(0, header_row=0, dtypes="string")
    assert sheet.height == bottom - top  # the reader's records: the rows after its header
    assert sheet.width == max(c for _, c, _ in cells) - left + 1  # its columns from `left`
    assert facts.header_row == top + 1
    long: dict[int, list[int]] = {}
    for r, c, v in sorted(cells):
        if isinstance(v, float) and abs(v) >= 1e15 and r > top:
            long.setdefault(r - top - 1, []).append(c - left)
    assert facts.long_numbers == long


# --- files made to break the reader ------------------------------------------------------------


def _patched(data: bytes, at: int, layout: str, *values: int) -> bytes:
    changed = bytearray(data)
    struct.pack_into(layout, changed, at, *values)
    return bytes(changed)


def _record(data: bytes, kind: int, size: int | None = None, last: bool = False) -> int:
    """Where the first (or last) BIFF record of `kind` (of `size` bytes) begins in `data`."""
    head = struct.pack("<HH", kind, size) if size is not None else struct.pack("<H", kind)
    return data.rindex(head) if last else data.index(head)


def _cut_short(data: bytes, at: int, keep: int) -> bytes:
    """`data` with its BIFF record at `at` shortened to its first `keep` bytes, the rest of it in
    a record of a type no reader knows, so that every offset stays where it was."""
    size = struct.unpack_from("<H", data, at + 2)[0]
    filler = struct.pack("<HH", 0x0000, size - keep - 4) + b"\x00" * (size - keep - 4)
    short = data[: at + 2] + struct.pack("<H", keep) + data[at + 4 : at + 4 + keep] + filler
    return short + data[at + 4 + size :]


def _broken_xls(kind: str) -> bytes:
    """A 5 KB .xls changed in a few bytes so that the reader, given it unchecked, would abort
    the process (asking for more memory than the machine has), or panic."""
    good = _xls(_transfer_cells(transfer(1)))
    directory = struct.unpack_from("<I", good, 48)[0]  # the directory's first sector
    fat = 512  # the one FAT sector, right after the header
    if kind == "claims 100 million rows":
        at = _record(good, 0x0200, 14)
        return _patched(good, at + 4, "<IIHH", 0, 100_000_000, 0, 52)
    if kind == "first row after the last":  # the reader's row count wraps round to 4 billion
        return _patched(good, _record(good, 0x0200, 14) + 4, "<IIHH", 10, 5, 0, 52)
    if kind == "a cell 65,535 rows and columns away":  # past column IV
        return _patched(good, _record(good, 0x00FD, last=True) + 4, "<HH", 65535, 65535)
    if kind == "two sheets of 65,536 rows × 256 columns":  # each within the limit, not both
        return _xls([["转办单号"]] + [[None]] * 65534 + [[None] * 255 + ["R001"]], copies=2)
    if kind == "directory chain loops":
        return _patched(good, fat + 4 * directory, "<I", directory)
    if kind == "sector table chain loops":  # the FAT sector is its own DIFAT sector's next one
        return _patched(_patched(good, 68, "<I", 0), fat + 4 * 127, "<I", 0)
    if kind == "forty sheets over one another":  # each would be walked again
        return _xls(_transfer_cells(transfer(1)), copies=40, overlapping=True)
    # records the reader reads a few bytes of without checking they are there: it panicked, and
    # Rust printed the panic on stderr (the file failed alone, kesu's one line after it)
    if kind == "sheet list record cut short":  # its offset only, not its state and type
        return _cut_short(good, _record(good, 0x0085), 4)
    if kind == "beginning-of-stream record cut short":
        return _cut_short(good, _record(good, 0x0809), 0)
    if kind == "sheet starts past the workbook":
        return _patched(good, _record(good, 0x0085) + 4, "<I", 0xFFFFFF)
    raise ValueError(kind)


BROKEN = {
    "claims 100 million rows": "sheet 1 claims 100000000 rows × 52 columns, more than the "
    f"{MAX_CELLS} cells kesu reads; not read (re-export only the used range)",
    "first row after the last": "sheet 1 claims 4294967291 rows × 52 columns",
    "a cell 65,535 rows and columns away": "sheet 1 has a cell past column 256, more than an "
    ".xls holds; not read",
    "two sheets of 65,536 rows × 256 columns": "its sheets' cells span 33554432 cells, more than "
    f"the {MAX_CELLS} kesu reads",
    "directory chain loops": "cannot be read as XLS (a sector chain loops)",
    "sector table chain loops": "cannot be read as XLS (a sector chain loops)",
    "sheet starts past the workbook": "cannot be read as XLS (sheet 1 starts past the end of the "
    "workbook)",
    "forty sheets over one another": "cannot be read as XLS (its sheets overlap)",
    "sheet list record cut short": "cannot be read as XLS (its sheet list record is cut short)",
    "beginning-of-stream record cut short": "cannot be read as XLS (its beginning-of-stream "
    "record is cut short)",
}


@pytest.mark.parametrize("kind", BROKEN)
def test_a_file_that_would_break_the_reader_is_refused_before_it(kind):
    with pytest.raises(SourceReadError) as refused:
        check_xls(_broken_xls(kind), "transfers.xls")
    assert str(refused.value).startswith("transfers.xls: ")
    assert BROKEN[kind] in str(refused.value)


def test_the_checks_read_a_sound_file_as_the_reader_does():
    cells = [[None, None], [None, "转办单号", "金额"], [None, "R001", 2025062700000123.0]]
    assert check_xls(_xls(cells), "t.xls") == XlsSheet(header_row=2, long_numbers={0: [1]})
    assert check_xls(_xls([["转办单号"], ["R001"]]), "t.xls") == XlsSheet(1, {})


def test_no_file_made_to_break_the_reader_takes_the_process_down(tmp_path):
    """End to end, in a child process limited to 4 GB of address space, so that a check gone
    wrong shows as a failed test and not as a test run killed: each file beside a good one fails
    alone, in one line, and the good one loads."""
    files = {f"{i}.xls": _broken_xls(kind) for i, kind in enumerate(BROKEN)}
    files["good.xls"] = _xls(_transfer_cells(transfer(1)))
    outcomes = ingest_in_child(tmp_path, files, "regulator_transfers")
    assert [o[:3] for o in outcomes] == [
        [f"{i}.xls", "failed", "0"] for i in range(len(BROKEN))
    ] + [["good.xls", "ok", "1"]]
    assert all("\n" not in o[3] and o[3].startswith(o[0]) for o in outcomes[:-1])
