"""`kesu serve`: register kesu's deployments and run them from this process until Ctrl-C.

Only argparse at import time; `kesu.flows.serve` (Prefect) loads inside `run`.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from kesu.flows.cli_args import prefect_defaults


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `serve` command to kesu's sub-commands."""
    p = subparsers.add_parser(
        "serve",
        help="serve the Prefect deployments (nightly at 02:00, quarterly and monthly reports, "
        "weekly maintain; backfill, report on demand)",
        description="Register kesu's deployments with the Prefect API (PREFECT_API_URL, else "
        "kesu's local server: see `kesu server`; a temporary one with "
        "KESU_PREFECT_SERVER=ephemeral) and run their flow runs from this process until "
        "interrupted. The locations given here (or by environment) become the default "
        "parameters of the deployments that take them; they, the reference files, the PII key "
        "and kesu.toml are checked first, as `kesu ingest` and `kesu report` check them.",
    )
    p.add_argument("--landing", help="landing zone (env KESU_LANDING, default ./data/landing)")
    p.add_argument(
        "--warehouse", help="warehouse root (env KESU_WAREHOUSE, default ./data/warehouse)"
    )
    p.add_argument("--out", help="report output root (env KESU_REPORTS, default ./data/reports)")
    p.add_argument("--config", help="kesu.toml (env KESU_CONFIG, default ./kesu.toml if present)")
    return p


def run(args: argparse.Namespace) -> int:
    from kesu.flows import preflight
    from kesu.flows.config import load_settings

    settings = load_settings(
        landing=args.landing, warehouse=args.warehouse, reports=args.out, config=args.config
    )
    preflight.for_serve(settings)  # before Prefect starts, and before anything is registered
    prefect_defaults(flows_run_here=False)
    from kesu.flows.serve import locations, serve_all

    where = locations(args.landing, args.warehouse, args.out, args.config)
    for name, value in where.items():
        print(f"{name:<14} {value}")
    # kesu's local server is not what a bare `prefect` command talks to: name it
    api = os.environ.get("PREFECT_API_URL")
    where_api = f"PREFECT_API_URL={api} " if api else ""
    print(f"trigger a run: {where_api}prefect deployment run 'backfill/kesu-backfill' -p start=…")
    serve_all(where)
    return 0
