"""An .xlsx made to break the Excel reader (calamine): its size check reads the XML as the
reader's parser does, so that no way of writing a far cell or a large claim gets past it.

Each file below passed the check of the thirty-sixth session, and the reader then asked for
50 GB to 9 TB and aborted the process (measured in a child process)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from kesu.warehouse.landing import SourceReadError
from kesu.warehouse.xlsx_xml import MAX_CELLS, check_sheet_sizes
from test_bad_input_corpus import _with_part, _xlsx, transfer

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
    for i, (make, _) in enumerate(BROKEN.values()):
        (tmp_path / f"{i}.xlsx").write_bytes(make())
    script = textwrap.dedent(
        f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from pathlib import Path
        from test_bad_input_corpus import _xlsx, ingest, transfer
        files = {{p.name: p.read_bytes() for p in Path({str(tmp_path)!r}).glob("*.xlsx")}}
        files["good.xlsx"] = _xlsx([transfer(1)])
        drop = ingest(Path({str(tmp_path)!r}) / "run", files, feed="regulator_transfers")
        for name, outcome in sorted(drop.files.items()):
            print(name, outcome.status, outcome.loaded, sep="|")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    expected = [f"{i}.xlsx|failed|0" for i in range(len(BROKEN))] + ["good.xlsx|ok|1"]
    assert done.stdout.splitlines() == expected
