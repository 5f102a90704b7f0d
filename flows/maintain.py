"""The `maintain` flow: compaction, checkpoints and vacuum of the warehouse's Delta tables.

A thin shell over `kesu.warehouse.maintenance.maintain`; served weekly by `kesu serve`
(`maintain/kesu-maintain`, Sunday 04:00 Asia/Shanghai) and run on demand by `kesu maintain`. The
vacuum's retention is `[warehouse] vacuum_days` (default 7): versions younger than that stay
readable by time travel (a report's `--reproduce` of the last week still works). A retention
under a day runs only while no other run is live (`kesu.warehouse.maintenance`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from kesu.flows.config import load_settings
from kesu.warehouse.maintenance import maintain as maintain_tables
from prefect import flow, get_run_logger


@flow(name="maintain")
def maintain(
    warehouse_dir: str | None = None,
    config_file: str | None = None,
    vacuum_days: int | None = None,
) -> list[dict[str, Any]]:
    """Compact, checkpoint and vacuum every table; returns what was done per table."""
    settings = load_settings(warehouse=warehouse_dir, config=config_file)
    days = settings.get("warehouse", "vacuum_days") if vacuum_days is None else vacuum_days
    done = [asdict(m) for m in maintain_tables(settings.warehouse_store(), days)]
    logger = get_run_logger()
    for m in done:
        logger.info(
            "%s: v%s, %s file(s) compacted, %s vacuumed (older than %s days)",
            m["table"], m["version"], m["files_compacted"], m["files_vacuumed"], days,
        )  # fmt: skip
    return done
