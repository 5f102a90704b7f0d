"""`kesu report quarterly 2025Q3 | annual 2025 [--as-of D] [--out DIR]`.

Only argparse at import time: Prefect and Polars load inside `run`, so `kesu --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kesu.flows.cli_args import drop_date as _date

KINDS = ("quarterly", "annual", "monthly")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `report` command to kesu's sub-commands."""
    p = subparsers.add_parser(
        "report",
        help="write a quarterly, annual or monthly report (tables, xlsx, html, charts, manifest)",
        description="Build <reports>/<kind>/<period>/ from the warehouse as at a drop date.",
    )
    p.add_argument("kind", choices=KINDS)
    p.add_argument("period", help="2025Q3 for quarterly, 2025 for annual, 2025-06 for monthly")
    p.add_argument(
        "--as-of",
        type=_date,
        dest="as_of",
        help="what was known at the end of this drop date (default: the latest drop)",
    )
    p.add_argument("--out", help="report output root (env KESU_REPORTS, default ./data/reports)")
    p.add_argument(
        "--warehouse", help="warehouse root (env KESU_WAREHOUSE, default ./data/warehouse)"
    )
    p.add_argument("--config", help="kesu.toml (env KESU_CONFIG, default ./kesu.toml if present)")
    p.add_argument(
        "--allow-empty",
        action="store_true",
        dest="allow_empty",
        help="write the report even when no drop covers the period (refused by default)",
    )
    p.add_argument(
        "--reproduce",
        metavar="MANIFEST",
        help="rebuild the report a manifest.json describes, from the table versions it read",
    )
    return p


def run(args: argparse.Namespace) -> int:
    """Run the `report` flow; print the output folder and its files."""
    from kesu.flows import preflight
    from kesu.flows.config import load_settings
    from kesu.flows.terminal import prefect_command
    from kesu.transforms.periods import Period

    p = Period.parse(args.kind, args.period)  # a bad period fails here, before Prefect starts
    preflight.for_report(load_settings(warehouse=args.warehouse, config=args.config))
    refused = _refused(args, p)
    if refused:
        print(refused, file=sys.stderr)
        return 1
    with prefect_command(f"{args.kind} report {p.label}", "building"):
        from kesu.flows.report import report

        result = report(
            kind=args.kind,
            period=p.label,
            as_of=args.as_of,
            out=args.out,
            warehouse_dir=args.warehouse,
            config_file=args.config,
            allow_empty=getattr(args, "allow_empty", False),
            reproduce=getattr(args, "reproduce", None),
        )
    print(f"{args.kind} report {p.label} as of {result['as_of']}: {result['folder']}")
    for name in result["files"]:
        print(f"  {name}")
    return 0


def _refused(args: argparse.Namespace, p: Any) -> str | None:
    """The one line refusing a period that no drop covers (before Prefect starts), else None.

    A manifest that is not one of this report's is refused here (a ValueError); whether the
    versions it recorded can still be read is checked once, by the flow, before it writes
    anything: on S3 each file of those versions costs a request."""
    from kesu.flows.config import load_settings
    from kesu.flows.report import EmptyPeriod, check_coverage, recorded
    from kesu.warehouse.reader import latest_drop

    if getattr(args, "reproduce", None):
        recorded(args.kind, p.label, args.reproduce)
        return None  # the flow checks the recorded versions, then their coverage
    settings = load_settings(warehouse=args.warehouse, reports=args.out, config=args.config)
    as_of = latest_drop(settings.warehouse_store(), args.as_of) or args.as_of
    if as_of is None:
        return None  # the flow says the warehouse is empty
    try:
        check_coverage(settings, p, as_of, getattr(args, "allow_empty", False))
    except EmptyPeriod as refused:
        return f"kesu report: {refused}"
    return None
