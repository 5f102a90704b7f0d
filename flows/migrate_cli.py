"""`kesu maintain [--vacuum-days N]` and `kesu migrate`: the Delta tables' upkeep and the
one-off conversion of a warehouse written before they were Delta tables.

Only argparse at import time; deltalake and Prefect load inside `run_*`.
"""

from __future__ import annotations

import argparse
from typing import Any


def _where(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--warehouse", help="warehouse root (env KESU_WAREHOUSE, default ./data/warehouse)"
    )
    p.add_argument("--config", help="kesu.toml (env KESU_CONFIG, default ./kesu.toml if present)")


def add_parsers(subparsers: Any) -> None:
    """Add the `maintain` and `migrate` commands to kesu's sub-commands."""
    m = subparsers.add_parser(
        "maintain",
        help="compact, checkpoint and vacuum the warehouse's Delta tables (weekly in kesu serve)",
        description="Rewrite small files into larger ones, write a checkpoint of each table's "
        "log, and delete data files no version younger than the retention reads.",
    )
    m.add_argument(
        "--vacuum-days",
        type=int,
        metavar="N",
        help="keep what versions of the last N days read (default [warehouse] vacuum_days, 7); "
        "under 1 only while no other kesu run is live",
    )
    _where(m)
    g = subparsers.add_parser(
        "migrate",
        help="convert a warehouse of the folder layout (before Delta) into Delta tables",
        description="Turn each <table>/drop_date=D/*.parquet folder into a Delta table in place "
        "(deltalake.convert_to_deltalake); tables that are Delta tables already are skipped.",
    )
    _where(g)


def run_maintain(args: argparse.Namespace) -> int:
    """Run the `maintain` flow; print a line per table (Prefect's own lines stay in its logs)."""
    from kesu.flows import preflight
    from kesu.flows.config import load_settings
    from kesu.flows.terminal import prefect_command

    preflight.for_maintain(load_settings(warehouse=args.warehouse, config=args.config))
    with prefect_command("maintain", "compacting and vacuuming"):
        from kesu.flows.maintain import maintain

        done = maintain(
            warehouse_dir=args.warehouse, config_file=args.config, vacuum_days=args.vacuum_days
        )
    for m in done:
        print(
            f"{m['table']:<32} v{m['version']:<5} compacted {m['files_compacted']:>4} file(s), "
            f"vacuumed {m['files_vacuumed']:>4}"
        )
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    from kesu.flows import preflight
    from kesu.flows.config import load_settings
    from kesu.warehouse.locks import warehouse_lock
    from kesu.warehouse.maintenance import migrate

    settings = load_settings(warehouse=args.warehouse, config=args.config)
    preflight.warehouse_exists(settings)  # a mistyped path is not created
    wh = settings.warehouse_store()
    with warehouse_lock(wh):  # no run may write while its tables change form
        done = migrate(wh)
    print("\n".join(done) if done else f"{settings.warehouse}: nothing to convert")
    return 0
