"""The upgrade's first night, served: the nightly, backfill and maintain flows (run by `kesu serve`
without a command's preflight) refuse a first-release warehouse that `kesu migrate` has not
converted yet, and change none of its files."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from kesu.flows.backfill import backfill
from kesu.flows.ingest import nightly
from kesu.flows.maintain import maintain
from kesu.samplegen.generate import generate
from kesu.warehouse.maintenance import Unmigrated

pytestmark = pytest.mark.flow
V0 = Path(__file__).resolve().parents[1] / "corpus" / "warehouse-v0"
DAY = date(2025, 3, 4)


def files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_served_flows_refuse_a_warehouse_not_migrated(tmp_path: Path, demo_key) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "wh"
    generate(DAY, DAY, landing, profile="small", seed=11)
    shutil.copytree(V0, warehouse, ignore=shutil.ignore_patterns("README.md"))
    before = files(warehouse)
    where = {"landing_dir": str(landing), "warehouse_dir": str(warehouse)}
    runs = {
        "nightly": lambda: nightly(drop_date=DAY, **where),
        "backfill": lambda: backfill(start=DAY, end=DAY, **where),
        "maintain": lambda: maintain(warehouse_dir=str(warehouse), vacuum_days=0),
    }
    for name, run in runs.items():
        with pytest.raises(Unmigrated, match="run kesu migrate first"):
            run()
        assert files(warehouse) == before, name
