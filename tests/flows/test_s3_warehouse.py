"""End to end against a real S3 API (moto's server on loopback): `kesu sample` drops → `nightly`
into ``s3://…`` → the quarterly report, compared with the same drops through a local warehouse."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from kesu.flows.cli import main
from kesu.flows.ingest import nightly
from kesu.flows.report import report
from kesu.samplegen.generate import generate
from kesu.transforms.run_records import IngestRun
from kesu.warehouse import Warehouse, ledger

START, END = date(2025, 3, 30), date(2025, 3, 31)
QUARTER = "2025Q1"


def days() -> list[date]:
    return [START + timedelta(n) for n in range((END - START).days + 1)]


def ingest_all(landing: Path, root: str, **kw) -> list[IngestRun]:
    return [
        nightly(drop_date=d, landing_dir=str(landing), warehouse_dir=root, **kw) for d in days()
    ]


@pytest.fixture(scope="module")
def drops(s3, tmp_path_factory) -> dict:
    """The same landing drops ingested into a bucket and into a local directory."""
    mp = pytest.MonkeyPatch()
    mp.setenv("KESU_PII_KEY", "flow-test-key-0123456789abcdef")
    landing = tmp_path_factory.mktemp("landing")
    generate(START, END, landing, profile="small", seed=5, defects=True)
    url, local = s3.url(), tmp_path_factory.mktemp("warehouse")
    runs = {"s3": ingest_all(landing, url), "local": ingest_all(landing, str(local))}
    yield {"landing": landing, "url": url, "local": local, "runs": runs}
    mp.undo()


def feed_totals(runs: list[IngestRun]) -> list[dict]:
    keep = ("status", "rows_in", "loaded", "quarantined")
    return [{f: {k: getattr(r, k) for k in keep} for f, r in run.feeds.items()} for run in runs]


def test_the_bucket_holds_what_a_local_warehouse_holds(drops, s3) -> None:
    assert feed_totals(drops["runs"]["s3"]) == feed_totals(drops["runs"]["local"])
    assert sum(run.totals["quarantined"] for run in drops["runs"]["s3"]) > 0  # defects
    keys = s3.snapshot(drops["url"], skip=())
    assert any(k.startswith("_raw/complaints/") for k in keys)  # raw zone, in the bucket
    assert any(k.startswith("stg_hotline/_delta_log/") for k in keys)  # a Delta table
    assert not any(k.startswith(("_kesu/locks", "_kesu/scratch", "_kesu/lock")) for k in keys)
    assert [r.run_id for r in ledger.list_runs(Warehouse.at(drops["url"]))][-1] == (
        drops["runs"]["s3"][0].run_id
    )


def test_rerun_with_unchanged_input_changes_no_object(drops, s3) -> None:
    before = s3.snapshot(drops["url"])
    runs = ingest_all(drops["landing"], drops["url"])
    assert {r.status for run in runs for r in run.feeds.values()} == {"unchanged"}
    assert s3.snapshot(drops["url"]) == before  # keys, ETags and LastModified


def test_forced_rerun_rewrites_nothing_because_the_bytes_are_identical(drops, s3) -> None:
    before = s3.snapshot(drops["url"])
    runs = ingest_all(drops["landing"], drops["url"], force=True)
    outputs = [o for run in runs for r in run.feeds.values() for o in r.outputs]
    actions = {o.action for o in outputs}
    assert "unchanged" in actions and actions <= {"unchanged", "absent"}  # absent: no rejects
    assert s3.snapshot(drops["url"]) == before


def test_report_tables_equal_those_from_a_local_warehouse(drops, tmp_path) -> None:
    out = {}
    for name, root in (("s3", drops["url"]), ("local", str(drops["local"]))):
        out[name] = tmp_path / name
        report(kind="quarterly", period=QUARTER, out=str(out[name]), warehouse_dir=root)
    tables = sorted((out["local"] / "quarterly" / QUARTER / "tables").glob("*.parquet"))
    assert len(tables) >= 10
    for table in tables:
        twin = out["s3"] / "quarterly" / QUARTER / "tables" / table.name
        assert twin.read_bytes() == table.read_bytes(), table.name
    overview = pl.read_parquet(out["s3"] / "quarterly" / QUARTER / "tables" / "overview.parquet")
    assert overview.filter(pl.col("metric") == "complaints")["value"].item() > 0


def test_status_and_quarantine_read_the_bucket(drops, capsys) -> None:
    assert main(["status", "--warehouse", drops["url"], "--landing", str(drops["landing"])]) == 0
    assert "recent runs" in capsys.readouterr().out
    assert main(["quarantine", "--date", END.isoformat(), "--warehouse", drops["url"]]) == 0
    printed = capsys.readouterr().out
    assert f"quarantine of drop {END} in {drops['url']}:" in printed
    assert " 0 row(s)" not in printed.splitlines()[0]
