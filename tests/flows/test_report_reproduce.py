"""`kesu report … --reproduce manifest.json`: a report rebuilt from the Delta versions its
manifest recorded is byte-identical to it, even after a correction landed (time travel)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from kesu.flows.cli import main
from kesu.flows.ingest import nightly
from kesu.flows.report import report
from kesu.samplegen.generate import generate
from kesu.transforms.columns import COLUMNS
from kesu.warehouse.landing import read_source

pytestmark = pytest.mark.flow

START, END = date(2025, 3, 28), date(2025, 3, 31)


def tables(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "tables").glob("*.parquet"))}


def test_reproduce_rebuilds_the_report_of_the_versions_it_read(tmp_path, demo_key) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "wh"
    generate(START, END, landing, profile="small", seed=9, defects=False)
    for n in range((END - START).days + 1):
        nightly(
            drop_date=START + timedelta(n), landing_dir=str(landing), warehouse_dir=str(warehouse)
        )
    first = Path(report(kind="quarterly", period="2025Q1", out=str(tmp_path / "r1"),
                        warehouse_dir=str(warehouse))["folder"])  # fmt: skip
    recorded = json.loads((first / "manifest.json").read_text(encoding="utf-8"))
    assert set(recorded["table_versions"]) == {
        "stg_complaints", "stg_hotline", "stg_regulator_transfers", "quarantine/complaints",
    }  # fmt: skip

    # a correction lands: the last drop's hotline export loses half its calls
    (export,) = (landing / "hotline" / END.isoformat()).iterdir()
    calls = read_source(export).frame.drop("_line", "_ragged")
    calls.head(calls.height // 2).write_csv(export)
    # and a complaint of the last drop is now held (unknown branch): held_updates reads that table
    (tickets,) = (landing / "complaints" / END.isoformat()).iterdir()
    frame = read_source(tickets).frame.drop("_line", "_ragged")
    branch = next(c.header for c in COLUMNS["complaints"] if c.name == "branch_code")
    frame.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("9999"))
                       .otherwise(pl.col(branch)).alias(branch)).write_csv(tickets)  # fmt: skip
    nightly(drop_date=END, landing_dir=str(landing), warehouse_dir=str(warehouse))
    now = Path(report(kind="quarterly", period="2025Q1", out=str(tmp_path / "r2"),
                      warehouse_dir=str(warehouse))["folder"])  # fmt: skip
    assert tables(now) != tables(first)  # the correction shows in a report built today

    code = main([
        "report", "quarterly", "2025Q1", "--warehouse", str(warehouse),
        "--out", str(tmp_path / "r3"), "--reproduce", str(first / "manifest.json"),
    ])  # fmt: skip
    assert code == 0
    again = tmp_path / "r3" / "quarterly" / "2025Q1"
    assert tables(again) == tables(first)  # byte for byte
    rebuilt = json.loads((again / "manifest.json").read_text(encoding="utf-8"))
    assert rebuilt["table_versions"] == recorded["table_versions"]
    assert rebuilt["partitions"] == recorded["partitions"]  # quarantine's too, as it was then
    assert rebuilt["coverage"] == recorded["coverage"]
    overview = pl.read_parquet(again / "tables" / "overview.parquet")
    assert overview.height > 0


def test_reproduce_refuses_another_reports_manifest(tmp_path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"kind": "annual", "period": "2025", "as_of": "2025-03-31",
                                    "table_versions": {}}))  # fmt: skip
    code = main(["report", "quarterly", "2025Q1", "--warehouse", str(tmp_path / "wh"),
                 "--reproduce", str(manifest)])  # fmt: skip
    assert code == 2
