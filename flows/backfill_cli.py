"""`kesu backfill`'s terminal side: `--workers`, `--threads` or `--dask-address`, a live
progress bar as drops finish (one plain line per drop when stdout is not a terminal), then the
per-feed summary lines of the contract.

Only argparse at import time, like `kesu.flows.report_cli`: Prefect and rich load inside `run`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING

from kesu.flows.cli_args import positive_int as _workers
from kesu.flows.cli_args import prefect_defaults
from kesu.flows.config import ConfigError

if TYPE_CHECKING:
    from kesu.flows.backfill import DropDone
    from kesu.flows.terminal import Terminal
    from kesu.transforms.run_records import FeedRecord, IngestRun

ODD = ("no_folder", "empty", "unreadable")  # feed statuses a drop's line names
DEFAULT_WORKERS = 2  # = flows.backfill.DEFAULT_WORKERS (not imported: it would load Prefect)
WORKERS_HELP = (
    "drops ingested at once, each in a worker process of its own (default 2). A drop already "
    "uses every core (Polars, and its feeds side by side); a second one fills the time the first "
    "waits on disk or Prefect's API. On 2 cores a large bank's drop takes ~0.6 s with 2 workers "
    "(bench/README.md); past the number of cores, more workers add memory (~0.5 GB a worker), "
    "not speed. Ignored with --dask-address."
)
THREADS_HELP = (
    "run the drops on threads of this process instead of worker processes: ~0.4 GB less memory "
    "with 2 workers, up to ~10%% slower on 2 cores (their Python shares one GIL; "
    "bench/README.md)"
)
DASK_HELP = (
    "run the drops on the Dask cluster whose scheduler is at this address (env "
    "KESU_DASK_ADDRESS; this flag wins), as many at once as the cluster has worker threads "
    "(--workers is then ignored). The workers need kesu, the landing zone and warehouse (the "
    "bucket when both are s3://, else the same paths), the PII key and PREFECT_API_URL in their "
    "environment, and PREFECT_API_URL "
    "set here too (README: "
    "Backfills, On a Dask cluster). Default: the worker processes of --workers on this machine."
)
# scheme://host:port, or host:port (Dask assumes tcp); IPv6 hosts in brackets
_ADDRESS = re.compile(r"^(?:(?:tcp|tls|ws|wss|ucx)://)?(?:\[[0-9a-fA-F:.]+\]|[\w.-]+):\d{1,5}$")


def dask_address(text: str) -> str:
    if not _ADDRESS.match(text.strip()):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a Dask scheduler address such as tcp://host:8786"
        )
    return text.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `--workers`, `--threads` and `--dask-address` to the `backfill` sub-command."""
    parser.add_argument("--workers", type=_workers, default=DEFAULT_WORKERS, help=WORKERS_HELP)
    parser.add_argument("--threads", action="store_true", help=THREADS_HELP)
    parser.add_argument("--dask-address", type=dask_address, metavar="ADDRESS", help=DASK_HELP)


def chosen_dask_address(args: argparse.Namespace, environ: dict[str, str]) -> str | None:
    """--dask-address, else KESU_DASK_ADDRESS, else None (threads)."""
    if getattr(args, "dask_address", None):
        return str(args.dask_address)
    if environ.get("KESU_DASK_ADDRESS", "").strip():
        try:
            return dask_address(environ["KESU_DASK_ADDRESS"])
        except argparse.ArgumentTypeError as exc:
            raise ConfigError(f"KESU_DASK_ADDRESS: {exc}") from None
    return None


def run(args: argparse.Namespace) -> int:
    """Run the `backfill` flow with a progress display; print the summary; exit status."""
    if args.end < args.start:
        raise ConfigError("--end is before --start")
    address = chosen_dask_address(args, dict(os.environ))
    from kesu.flows import preflight
    from kesu.flows.config import load_settings
    from kesu.flows.terminal import Terminal, prefect_quiet

    if address:  # a cluster's workers need a Prefect server they can reach: the user's
        from kesu.flows.cluster import require_prefect_server

        require_prefect_server()
    settings = load_settings(landing=args.landing, warehouse=args.warehouse, config=args.config)
    if not address:  # on a cluster the landing zone and the key are the workers' (cluster.py)
        preflight.for_ingest(settings)  # before Prefect starts
    else:
        preflight.warehouse_migrated(settings)
    terminal = Terminal()
    finished: list[DropDone] = []
    failure = None
    total = (args.end - args.start).days + 1
    display = _bar(total, terminal) if terminal.tty else _lines(terminal)
    with display as (show, status):
        # never kesu's local server for a Dask cluster: its workers could not reach it
        prefect_defaults(local_server=not address, say=terminal.line)
        from kesu.flows.backfill import BackfillFailed, backfill, progress_listener

        status("backfill")

        def on_drop(event: DropDone) -> None:
            finished.append(event)
            show(event)

        try:
            with progress_listener(on_drop), prefect_quiet(terminal):
                backfill(
                    start=args.start,
                    end=args.end,
                    feeds=args.feeds,
                    landing_dir=args.landing,
                    warehouse_dir=args.warehouse,
                    config_file=args.config,
                    force=args.force,
                    workers=getattr(args, "workers", DEFAULT_WORKERS),
                    dask_address=address,
                    threads=getattr(args, "threads", False),
                )
        except BackfillFailed as exc:
            failure = exc
    from kesu.flows.cli import _exit_status

    runs = sorted((e.run for e in finished if e.run), key=lambda r: r.drop_date)
    print("drops: " + _tally(finished))
    totals: dict[str, list[int]] = {}
    for run in runs:
        for feed, r in run.feeds.items():
            t = totals.setdefault(feed, [0, 0, 0])
            t[0], t[1], t[2] = t[0] + r.rows_in, t[1] + r.loaded, t[2] + r.quarantined
    for feed, (rows_in, loaded, bad) in totals.items():
        print(f"total {feed:<20} rows in {rows_in} = loaded {loaded} + quarantined {bad}")
    if terminal.repeats():
        print(terminal.repeats(), file=sys.stderr)
    for line in unreadable_lines(runs):
        print(line)
    if finished and all(e.outcome == "no_data" for e in finished):
        print(f"warning: {nothing_landed(args.start, args.end, settings.landing)}", file=sys.stderr)
    if failure is not None:
        print(f"kesu backfill: {failure}", file=sys.stderr)
    return 1 if failure is not None else _exit_status(runs)


def nothing_landed(start: date, end: date, landing: object) -> str:
    """The warning of a backfill none of whose days had a feed's folder: most often a
    mistyped --landing (a folder above the landing zone, say), which is no error of a day."""
    from kesu.transforms.columns import FEEDS

    days = f"{start}..{end}" if end != start else f"{start}"
    return (
        f"nothing landed for any day of {days} under {landing}: no folder of any feed "
        f"({', '.join(FEEDS)}) for those days. Is --landing right?"
    )


def _tally(events: list[DropDone]) -> str:
    counts = Counter(e.outcome for e in events)
    order = ("ingested", "skipped", "no_data", "failed")
    return ", ".join(f"{counts[o]} {o.replace('_', ' ')}" for o in order if counts[o]) or "none"


def drop_line(e: DropDone) -> str:
    """One drop's result: outcome, rows loaded and quarantined, feeds with a problem."""
    rows = ""
    if e.run is not None:
        loaded = sum(r.loaded for r in e.run.feeds.values())
        bad = sum(r.quarantined for r in e.run.feeds.values())
        rows = f": loaded {loaded}, quarantined {bad}"
        odd = [_feed_note(f, r) for f, r in e.run.feeds.items()]
        rows += f" ({', '.join(n for n in odd if n)})" if any(odd) else ""
    error = f": {e.error}" if e.error else ""
    return f"[{e.done}/{e.total}] {e.drop_date} {e.outcome}{rows}{error}"


def _feed_note(feed: str, record: FeedRecord) -> str:
    """A feed's part of its drop's line: an odd status, files that failed (as `kesu ingest`
    says them), or "" when there is nothing to say."""
    failed = len(record.failed_files)
    if record.status in ODD:
        return f"{feed} {record.status}"
    return f"{feed} {failed} file(s) failed" if failed else ""


def unreadable_lines(runs: list[IngestRun]) -> list[str]:
    """Why the backfill exits 1: one line per drop and feed that was unreadable, and what its
    run did to the drop (the last lines it prints; the warnings went to stderr before)."""
    from kesu.transforms.run_summary import unreadable_detail

    lines = [
        f"unreadable: {run.drop_date} {feed}: {unreadable_detail(r)} (run {run.run_id})"
        for run in runs
        for feed, r in run.feeds.items()
        if r.status == "unreadable"
    ]
    if not lines:
        return []
    return [f"exit status 1: {len(lines)} feed(s) of a drop could not be read", *lines]


Show = Callable[["DropDone"], None]
Status = Callable[[str], None]


@contextmanager
def _lines(terminal: Terminal) -> Iterator[tuple[Show, Status]]:
    yield (lambda e: terminal.line(drop_line(e))), (lambda _: None)


@contextmanager
def _bar(total: int, terminal: Terminal) -> Iterator[tuple[Show, Status]]:
    """One live display: the bar with a status text (\"starting Prefect…\" until the flow
    runs), each drop's line printed above it."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[tally]}"),
    )
    events: list[DropDone] = []
    with progress:
        terminal.console = progress.console
        bar = progress.add_task("starting Prefect…", total=total, tally="")

        def show(e: DropDone) -> None:
            events.append(e)
            terminal.line(drop_line(e))
            progress.update(bar, completed=e.done, tally=_tally(events))

        try:
            yield show, lambda text: progress.update(bar, description=text)
        finally:
            terminal.console = None
