"""`kesu watch [--date D] [--within N] [--out DIR]`: deadlines at risk and volume alerts.

Only argparse at import time: Prefect and Polars load inside `run`, so `kesu --help` stays fast.
"""

from __future__ import annotations

import argparse
from typing import Any

from kesu.flows.cli_args import drop_date as _date


def _days(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"a number of days, 0 or more, not {text}")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `watch` command to kesu's sub-commands."""
    p = subparsers.add_parser(
        "watch",
        help="write the watch list: complaints due or overdue, unusual volumes",
        description="Build <reports>/watch/<D>/ from the warehouse as at the end of drop D.",
    )
    p.add_argument("--date", type=_date, dest="drop_date", help="drop date (default: the latest)")
    p.add_argument("--within", type=_days, help="due within N days ([watch] within_days, 5)")
    p.add_argument("--out", help="report output root (env KESU_REPORTS, default ./data/reports)")
    p.add_argument(
        "--warehouse", help="warehouse root (env KESU_WAREHOUSE, default ./data/warehouse)"
    )
    p.add_argument("--config", help="kesu.toml (env KESU_CONFIG, default ./kesu.toml if present)")
    return p


def run(args: argparse.Namespace) -> int:
    """Run the `watch` flow; print the folder, the counts and the files. As `kesu report`: the
    reference files are checked before Prefect starts, a status line shows while it does, and
    Prefect's own INFO lines stay in its logs (issue 14)."""
    from kesu.flows import preflight
    from kesu.flows.config import load_settings
    from kesu.flows.terminal import prefect_command

    preflight.for_report(load_settings(warehouse=args.warehouse, config=args.config))
    with prefect_command("watch list", "building"):
        from kesu.flows.watch import watch_list

        result = watch_list(
            drop_date=args.drop_date,
            within=args.within,
            out=args.out,
            warehouse_dir=args.warehouse,
            config_file=args.config,
        )
    counts = ", ".join(f"{k} {v}" for k, v in result["counts"].items())
    if result["counts"].get("held_updates"):  # never silent: those rows may be closed already
        counts += " (listed as before a newer version held in quarantine: check them first)"
    if result["counts"].get("never_loaded"):  # not listed at all: say so, and where they are
        counts += " (never_loaded: complaints held whole in quarantine, see kesu quarantine)"
    print(f"watch list after drop {result['drop_date']}: {counts}: {result['folder']}")
    for name in result["files"]:
        print(f"  {name}")
    return 0
