"""`kesu status [--last N]`: recent runs from the ledger, then the drops needing attention.

No Prefect: reads the warehouse ledger (`kesu.warehouse.ledger`) and lists the landing zone's drop
folders, with their files' sizes; the summarising is `kesu.transforms.run_summary`. Only argparse
at import time.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kesu.flows.cli_args import positive_int as _count
from kesu.transforms.columns import FEEDS

if TYPE_CHECKING:
    from kesu.transforms.run_records import FeedRecord, Run
    from kesu.transforms.run_summary import LandedSince

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `status` command to kesu's sub-commands."""
    p = subparsers.add_parser(
        "status",
        help="recent runs, and drops that are missing or failed",
        description="Recent runs from the warehouse ledger (rows, seconds per stage), then every "
        "drop date and feed that needs attention: landing files no completed run read, a last "
        "run that failed, files that failed, files landed or changed since the last completed "
        "run or removed since, days with no landing folder between a feed's first and last "
        "drop, and a feed with no folder on the newest day other feeds landed.",
    )
    p.add_argument("--last", type=_count, default=20, help="how many recent runs (default 20)")
    p.add_argument("--landing", help="landing zone (env KESU_LANDING, default ./data/landing)")
    p.add_argument(
        "--warehouse", help="warehouse root (env KESU_WAREHOUSE, default ./data/warehouse)"
    )
    # an s3:// warehouse's [s3] options (endpoint, addressing) live there, as for every command
    p.add_argument("--config", help="kesu.toml (env KESU_CONFIG, default ./kesu.toml if present)")
    return p


def landing_days(landing: Path | str, options: Any = None) -> dict[str, set[date]]:
    """Per feed, the drop dates whose landing folder holds at least one visible file.
    `options`: the S3Options of an s3:// landing zone."""
    if isinstance(landing, str):
        from kesu.warehouse.landing_store import S3Landing, open_landing

        reader = open_landing(landing, options)
        assert isinstance(reader, S3Landing)
        return {
            feed: {day for name in reader.visible_days(feed) if (day := _drop_date(name))}
            for feed in FEEDS
        }
    found: dict[str, set[date]] = {}
    for feed in FEEDS:
        folder = landing / feed
        days = folder.iterdir() if folder.is_dir() and not folder.is_symlink() else []
        found[feed] = {
            day
            for d in days
            if (day := _drop_date(d.name)) is not None
            and d.is_dir()
            and not d.is_symlink()
            and any(not f.name.startswith(".") for f in d.iterdir())
        }
    return found


def _landed_since(landing: Path | str, options: Any, landed: dict[str, set[date]]) -> LandedSince:
    """`drop_problems`' question, for each feed's landed days: how the folder differs from what
    its last completed run read (`file_names.since_run`). The folders are listed once, the
    names masked in one call (and the few names of removed files, as recorded, again); no file
    is read."""
    from kesu.transforms.file_names import Since, shown_names, since_run
    from kesu.warehouse.landing_store import open_landing

    reader = open_landing(landing, options)
    sizes = {feed: reader.file_sizes(feed, days) for feed, days in landed.items()}
    names = sorted({n for by_day in sizes.values() for files in by_day.values() for n in files})
    shown = dict(zip(names, shown_names(names), strict=True))

    def since(feed: str, day: date, record: FeedRecord) -> Since:
        read = [(i.name, i.bytes) for i in record.inputs]
        found = since_run(read, sizes.get(feed, {}).get(day, {}), shown)
        # a file the run could not read has failed, named, already: not named again here
        unread = {f.name for f in record.failed_files if not f.sha256}
        late = [name for name in found.landed if name not in unread]
        return Since(late, shown_names(found.removed) if found.removed else [])

    return since


def _drop_date(name: str) -> date | None:
    """The date a drop folder is named after; None for another folder (2025-13-01 included):
    such a folder is no drop, and must not stop the status of all the others."""
    if not _DAY.fullmatch(name):
        return None
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


def interrupted(runs: list[Run]) -> set[str]:
    """Runs recorded as running whose process, on this host, is gone (killed, machine rebooted)."""
    here = socket.gethostname()
    gone = set()
    for run in runs:
        if run.status == "running" and run.host == here and run.pid:
            try:
                os.kill(run.pid, 0)
            except ProcessLookupError:
                gone.add(run.run_id)
            except PermissionError:  # alive, someone else's
                pass
    return gone


RUN_COLUMNS = {
    "run_id": "run",
    "kind": "kind",
    "covers": "drop(s)",
    "status": "status",
    "rows_in": "rows in",
    "loaded": "loaded",
    "quarantined": "quarantined",
    "seconds_raw_copy": "raw s",
    "seconds_stage": "stage s",
    "seconds_publish": "publish s",
    "seconds_total": "total s",
    "note": "",
}
PROBLEM_COLUMNS = {"first": "from", "last": "to", "feeds": "feeds", "problem": "", "detail": ""}


def _table(rows: list[dict[str, Any]], columns: dict[str, str]) -> list[str]:
    """Aligned plain-text columns (`columns`: key -> header)."""

    def cell(value: Any) -> str:
        return "" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)

    texts = [list(columns.values())] + [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(t[i]) for t in texts) for i in range(len(columns))]
    return ["  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)).rstrip() for t in texts]


def run(args: argparse.Namespace) -> int:
    """Print the recent runs and the drops needing attention; exit status 0 either way."""
    from kesu.flows.config import load_settings
    from kesu.transforms.run_summary import drop_problems, problem_spans, run_rows
    from kesu.warehouse import ledger

    settings = load_settings(
        landing=args.landing, warehouse=args.warehouse, config=getattr(args, "config", None)
    )
    runs = ledger.list_runs(settings.warehouse_store())
    if runs:
        recent = runs[: args.last]
        print(f"recent runs ({len(recent)} of {len(runs)}, newest first):")
        print("\n".join(_table(run_rows(recent, interrupted(recent)), RUN_COLUMNS)))
    else:
        print(f"no runs recorded in {settings.warehouse}")
    landed = landing_days(settings.landing, settings.landing_options)
    since = _landed_since(settings.landing, settings.landing_options, landed)
    problems = drop_problems(runs, landed, FEEDS, interrupted(runs), since)
    problems = problem_spans(problems, FEEDS)
    print()
    if problems:
        print(f"drops needing attention (landing {settings.landing}):")
        print("\n".join(_table(problems, PROBLEM_COLUMNS)))
    else:
        print("no missing or failed drops")
    return 0
