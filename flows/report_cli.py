"""`kesu report quarterly 2025Q3 | annual 2025 [--as-of D] [--out DIR]`.

Only argparse at import time: Prefect and Polars load inside `run`, so `kesu --help` stays fast.
"""

from __future__ import annotations

import argparse
from typing import Any

from kesu.flows.cli_args import drop_date as _date
from kesu.flows.cli_args import prefect_defaults

KINDS = ("quarterly", "annual")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `report` command to kesu's sub-commands."""
    p = subparsers.add_parser(
        "report",
        help="write a quarterly or annual report (tables, xlsx, html, charts, manifest)",
        description="Build <reports>/<kind>/<period>/ from the warehouse as at a drop date.",
    )
    p.add_argument("kind", choices=KINDS)
    p.add_argument("period", help="2025Q3 for quarterly, 2025 for annual")
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
        "--reproduce",
        metavar="MANIFEST",
        help="rebuild the report a manifest.json describes, from the table versions it read",
    )
    return p


def run(args: argparse.Namespace) -> int:
    """Run the `report` flow; print the output folder and its files."""
    prefect_defaults()
    from kesu.transforms.periods import Period

    Period.parse(args.kind, args.period)  # a bad period fails here, before Prefect starts
    from kesu.flows.report import report

    result = report(
        kind=args.kind,
        period=args.period,
        as_of=args.as_of,
        out=args.out,
        warehouse_dir=args.warehouse,
        config_file=args.config,
        reproduce=args.reproduce,
    )
    print(f"{args.kind} report {args.period} as of {result['as_of']}: {result['folder']}")
    for name in result["files"]:
        print(f"  {name}")
    return 0
