"""Benchmark: what kesu's checks of an Excel file cost, and what they spare, against the reader.

Before the Excel reader (calamine, through fastexcel) runs, an .xls is walked as the reader will
walk it (`kesu.warehouse.xls_biff.check_xls`) and an .xlsx's XML size-checked
(`kesu.warehouse.xlsx_xml.check_sheet_sizes`). This times that check and `read_excel` as a whole
(CPU seconds, median of `--repeat`) on a few regulator transfers as .xls (`--rows` records, made
with the test suite's BIFF writer, which writes up to ~60 KB) and as .xlsx, and on any file given
with `--files` (a real writer's: LibreOffice, Excel); then hands each file of the test suite's
"made to break the reader" sets to the reader alone, in a child process limited to 4 GB of
address space, and to kesu: what each does with it.

    .venv/bin/python bench/hostile_excel.py [--rows 50] [--files a.xls b.xlsx …] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

# isort: off
import kesu  # noqa: F401 (before Polars: its allocator setting reaches Polars, as in `kesu`)

# isort: on
from kesu.warehouse.landing import SourceReadError
from kesu.warehouse.landing_excel import read_excel
from kesu.warehouse.xls_biff import check_xls
from kesu.warehouse.xlsx_xml import check_sheet_sizes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))

from test_bad_input_corpus import _transfer_cells, _xls, _xlsx, transfer  # noqa: E402
from test_xls_files import BROKEN, _broken_xls  # noqa: E402
from test_xlsx_files import BROKEN as BROKEN_XLSX  # noqa: E402

READER_ALONE = """
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
import fastexcel
data = sys.stdin.buffer.read()
start = time.process_time()
try:
    fastexcel.read_excel(data).load_sheet(0, header_row=0, dtypes="string").to_arrow()
    print("read", round(time.process_time() - start, 3))
except BaseException as exc:
    print(type(exc).__name__)
"""


def cpu(work, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return statistics.median(times)


def reader_alone(data: bytes) -> str:
    """What the reader does with `data` on its own, in a child process."""
    done = subprocess.run(
        [sys.executable, "-c", READER_ALONE],
        input=data,
        capture_output=True,
        timeout=300,
        env={"RUST_BACKTRACE": "0", "PATH": "/usr/bin:/bin"},
    )
    if done.returncode:
        last = done.stderr.decode(errors="replace").strip().splitlines()
        failed = next((line for line in last if "memory allocation" in line), "")
        return f"the process dies (exit {done.returncode}{': ' + failed if failed else ''})"
    return done.stdout.decode().strip()


def check(name: str, data: bytes) -> None:
    if name.endswith(".xls"):
        check_xls(data, name)
    else:
        check_sheet_sizes(data, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--files", type=Path, nargs="*", default=[])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    rows = [transfer(n) for n in range(1, args.rows + 1)]
    sound = {
        f"transfers, {args.rows} records (test writer).xls": _xls(_transfer_cells(*rows)),
        f"transfers, {args.rows} records (xlsxwriter).xlsx": _xlsx(rows),
    }
    sound |= {p.name: p.read_bytes() for p in args.files}
    print("| file | MB | the check, CPU-s | `read_excel`, CPU-s | the check's share |")
    print("|---|---:|---:|---:|---:|")
    for name, data in sound.items():
        took = cpu(lambda name=name, data=data: check(name, data), args.repeat)
        whole = cpu(lambda name=name, data=data: read_excel(Path(name), data), args.repeat)
        mb = len(data) / 1e6
        print(f"| {name} | {mb:.2f} | {took:.4f} | {whole:.4f} | {took / whole:.0%} |")

    print()
    print("| made to break the reader | bytes | the reader alone | kesu | kesu, CPU-s |")
    print("|---|---:|---|---|---:|")
    broken = {f"{k} (.xls)": (".xls", _broken_xls(k)) for k in BROKEN}
    broken |= {f"{k} (.xlsx)": (".xlsx", make()) for k, (make, _) in BROKEN_XLSX.items()}
    for kind, (suffix, data) in broken.items():
        start = time.process_time()
        try:
            read_excel(Path("f" + suffix), data)
            said = "read"
        except SourceReadError as exc:
            said = str(exc).removeprefix(f"f{suffix}: ")
        took = time.process_time() - start
        alone = reader_alone(data)
        print(f"| {kind} | {len(data):,} | {alone} | {said} | {took:.4f} |")


if __name__ == "__main__":
    main()
