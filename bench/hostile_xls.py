"""Benchmark: what kesu's walk of an .xls costs, and what it spares, against the Excel reader alone.

Before the reader (calamine, through fastexcel) runs, `kesu.warehouse.xls_biff.check_xls` walks
the file as the reader will. This times that walk and `read_excel` as a whole (CPU seconds, median
of `--repeat`) on a few regulator transfers as .xls (`--rows` records, made with the test suite's
BIFF writer, which writes up to ~60 KB) and on any .xls given with `--files` (a real writer's:
LibreOffice, Excel),
then hands each file of the test suite's "made to break the reader" set to the reader alone, in a
child process limited to 4 GB of address space, and to kesu: what each does with it.

    .venv/bin/python bench/hostile_xls.py [--rows 50] [--files a.xls …] [--repeat 5]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))

from test_bad_input_corpus import _transfer_cells, _xls, transfer  # noqa: E402
from test_xls_files import BROKEN, _broken_xls  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--files", type=Path, nargs="*", default=[])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    day = _xls(_transfer_cells(*(transfer(n) for n in range(1, args.rows + 1))))
    sound = {f"transfers, {args.rows} records (test writer)": day}
    sound |= {f"{p.name} ({p.stat().st_size / 1e6:.1f} MB)": p.read_bytes() for p in args.files}
    print("| file | the walk, CPU-s | `read_excel`, CPU-s | the walk's share |")
    print("|---|---:|---:|---:|")
    for name, data in sound.items():
        walk = cpu(lambda data=data: check_xls(data, "f.xls"), args.repeat)
        whole = cpu(lambda data=data: read_excel(Path("f.xls"), data), args.repeat)
        print(f"| {name} | {walk:.4f} | {whole:.4f} | {walk / whole:.0%} |")

    print()
    print("| made to break the reader | the reader alone | kesu | kesu, CPU-s |")
    print("|---|---|---|---:|")
    for kind in BROKEN:
        data = _broken_xls(kind)
        start = time.process_time()
        try:
            read_excel(Path("f.xls"), data)
            said = "read"
        except SourceReadError as exc:
            said = str(exc).removeprefix("f.xls: ")
        took = time.process_time() - start
        print(f"| {kind} ({len(data):,} bytes) | {reader_alone(data)} | {said} | {took:.4f} |")


if __name__ == "__main__":
    main()
