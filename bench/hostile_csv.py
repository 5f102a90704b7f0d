"""Benchmark: what a broken CSV costs to read, against the clean file it was made from.

A clean export reads through Polars; one whose quotes do not pair up is read again line by line
(`kesu.warehouse.csv_records`), in Python. This times `read_csv_text` (CPU seconds, median of
`--repeat`) on a bank day's calls from `bench/backfill_scale.py`'s sample (generated there if
missing), as landed and with every field quoted (both clean), then with one stray quote in the
quoted file, and on a complaints file whose 投诉内容 opens a quote that never closes, followed by
`--lines` lines of text holding doubled quotes (the worst case of finding where a value
closes). It checks that every record is accounted for and prints one table.

    .venv/bin/python bench/hostile_csv.py [--lines 4000 40000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import sys
import time
from pathlib import Path

# isort: off
import kesu  # noqa: F401 (before Polars: its allocator setting reaches Polars, as in `kesu`)

# isort: on
import polars as pl
from kesu.warehouse.landing import RAGGED, read_csv_text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.backfill_scale import days_from, ensure_sample  # noqa: E402

COMPLAINTS = "投诉编号,受理时间,渠道,金额,投诉内容,机构\n"


def calls_files() -> dict[str, bytes]:
    """A bank day's calls as landed, every field quoted, and quoted with one stray quote."""
    day = days_from(1)[0]
    source = next((ensure_sample(1) / "hotline" / day.isoformat()).iterdir())
    landed = source.read_bytes()
    frame = pl.read_csv(landed, infer_schema=False)
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(frame.columns)
    writer.writerows(["" if v is None else v for v in row] for row in frame.iter_rows())
    quoted = out.getvalue()
    # the first value of the seventh line opens with a doubled quote (`""…"`): an empty value
    # closed at once, then text, and the line's quotes no longer pair up
    start = 0
    for _ in range(6):
        start = quoted.index("\n", start) + 1
    stray = quoted[:start] + '"' + quoted[start:]
    return {
        "a bank day's calls, as landed": landed,
        "… every field quoted": quoted.encode(),
        "… quoted, one stray quote on line 7": stray.encode(),
    }


def open_value_file(lines: int) -> bytes:
    body = [f'继续说""第{i}行""' for i in range(lines)]
    text = COMPLAINTS + 'C1,2025-07-01,电话,1,"从未闭合\n' + "\n".join(body) + "\n"
    return text.encode()


def cpu_seconds(
    data: bytes, multiline: frozenset[str] | None, repeat: int
) -> tuple[float, int, int]:
    """Median CPU seconds of `read_csv_text`, the records read and how many were held."""
    runs, frame = [], None
    for _ in range(repeat):
        start = time.process_time()
        frame = read_csv_text(data, "bench.csv", multiline).frame
        runs.append(time.process_time() - start)
    assert frame is not None, "--repeat must be at least 1"
    held = frame.filter(pl.col(RAGGED).is_not_null()).height
    return statistics.median(runs), frame.height, held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[4_000, 40_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cases: list[tuple[str, bytes, frozenset[str] | None]] = [
        (name, data, frozenset()) for name, data in calls_files().items()
    ]
    cases += [
        (f"complaints: a quote never closed, then {n:,} lines", open_value_file(n), None)
        for n in args.lines
    ]
    print("| file | MB | records | held | CPU s (median) |")
    print("|---|---:|---:|---:|---:|")
    for name, data, multiline in cases:
        lines = data.count(b"\n") - 1
        free = frozenset({"投诉内容"}) if multiline is None else multiline
        seconds, records, held = cpu_seconds(data, free, args.repeat)
        assert records == lines, (name, records, lines)  # one record a line in every case here
        print(f"| {name} | {len(data) / 1e6:.1f} | {records:,} | {held:,} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
