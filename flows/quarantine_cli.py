"""`kesu quarantine --date D [--feeds ...] [--export FILE.xlsx] [--warehouse DIR]`.

Reads the drop's quarantine partitions (no Prefect: nothing is written to the warehouse) and
prints, per feed, the rejected rows counted by rule and field with an example of each (file,
line, reason); `--export` writes the workbook for the data stewards (reports.quarantine_xlsx).
Only argparse at import time: Polars and the workbook writer load inside `run`.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kesu.flows.cli_args import add_feeds
from kesu.flows.cli_args import drop_date as _date
from kesu.transforms.columns import FEEDS

if TYPE_CHECKING:
    from kesu.transforms.run_records import IngestRun

EXAMPLES = 5  # rule/field groups shown with an example, per feed
REASON_CHARS = 160
# Source text goes to a terminal: control characters (ANSI escapes included) are shown, not run.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _xlsx(text: str) -> Path:
    if not text.lower().endswith(".xlsx"):
        raise argparse.ArgumentTypeError(f"{text!r}: the export is a workbook, name it *.xlsx")
    return Path(text)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `quarantine` command to kesu's sub-commands."""
    p = subparsers.add_parser(
        "quarantine",
        help="review the rows a drop's ingest rejected (counts, examples, --export to xlsx)",
        description="Show what the last ingest of a drop date quarantined, per feed, by rule "
        "and field; --export writes every rejected row to a workbook for the data stewards.",
    )
    p.add_argument("--date", type=_date, required=True, dest="drop_date")
    add_feeds(p)
    p.add_argument("--export", type=_xlsx, metavar="FILE.xlsx", help="write the rows to a workbook")
    p.add_argument(
        "--warehouse", help="warehouse root (env KESU_WAREHOUSE, default ./data/warehouse)"
    )
    p.add_argument("--config", help="kesu.toml (env KESU_CONFIG, default ./kesu.toml if present)")
    return p


def printable(text: str, limit: int = REASON_CHARS) -> str:
    """One terminal-safe line: control characters escaped, long text cut."""
    safe = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


def _run_note(run: IngestRun, feed: str) -> str:
    from kesu.transforms.run_summary import unreadable_detail

    record = run.feeds[feed]
    if record.status == "unreadable":  # what it removed and held, or that it published nothing
        return f"run {run.run_id}: unreadable, {unreadable_detail(record)}"
    return (
        f"run {run.run_id}: rows in {record.rows_in} = loaded {record.loaded} "
        f"+ quarantined {record.quarantined}"
    )


def feed_lines(feed: str, frame: Any, run: IngestRun | None) -> list[str]:
    """What `kesu quarantine` prints for one feed: its quarantine rows and the last completed
    run that found its folder (`last_ingests`; else one that found none)."""
    from kesu.transforms import quarantine_review

    if run is None and frame.height == 0:
        return [f"{feed}: no completed ingest of this drop in the ledger"]
    if run is not None and run.feeds[feed].status == "no_folder":
        return [f"{feed}: no folder for this drop ({run.feeds[feed].folder}), nothing ingested"]
    note = f" ({_run_note(run, feed)})" if run is not None else ""
    if frame.height == 0:
        return [f"{feed}: no rows quarantined{note}"]
    files = quarantine_review.rows_per_file(frame)
    lines = [f"{feed}: {frame.height} row(s) quarantined in {files.height} file(s){note}"]
    counts = quarantine_review.rule_counts(frame)
    lines.append(f"  {'rows':>6}  {'rule':<24} field")
    for row in counts.iter_rows(named=True):
        rule, field = printable(row["rule"], 24), printable(row["field"])
        lines.append(f"  {row['rows']:>6}  {rule:<24} {field}")
    lines.append("  examples:")
    for row in counts.head(EXAMPLES).iter_rows(named=True):
        where = printable(f"{row['example_file']} line {row['example_line']}", 80)
        reason = str(row["example_reason"])
        reason = reason.removeprefix(f"line {row['example_line']}: ")  # a record shape's says it
        lines.append(f"    {where}: {printable(reason)}")
    return lines


def run(args: argparse.Namespace) -> int:
    """Print the drop's quarantine per feed; with --export, write the workbook too."""
    from kesu.flows.config import load_settings
    from kesu.warehouse.quarantine import last_ingests, read_quarantine

    settings = load_settings(warehouse=args.warehouse, config=args.config)
    if not settings.warehouse_store().exists():
        raise ValueError(f"there is no warehouse at {settings.warehouse}")
    feeds = list(args.feeds or FEEDS)
    by_feed = {f: read_quarantine(settings.warehouse_store(), f, args.drop_date) for f in feeds}
    records = last_ingests(settings.warehouse_store(), args.drop_date)
    total = sum(frame.height for frame in by_feed.values())
    print(f"quarantine of drop {args.drop_date} in {settings.warehouse}: {total} row(s)")
    for feed, frame in by_feed.items():
        print("\n".join(feed_lines(feed, frame, records.get(feed))))
    if args.export is not None and total == 0:
        print(f"nothing held for drop {args.drop_date}: no workbook written to {args.export}")
    elif args.export is not None:
        from kesu.flows.errors import writing
        from kesu.reports.quarantine_xlsx import write_quarantine_workbook

        with writing(args.export):
            args.export.parent.mkdir(parents=True, exist_ok=True)
            written = write_quarantine_workbook(by_feed, args.export, args.drop_date)
        print(f"wrote {total} row(s) to {written}")
    return 0
