"""An s3:// landing zone (moto's real server on loopback): the same sample drops, landed in a
bucket instead of on a disk, stage exactly the same rows — into a local warehouse, and with the
warehouse in the bucket too. Nothing but the bucket, kesu and the key is needed to ingest."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from kesu.flows.ingest import nightly
from kesu.samplegen.generate import generate
from kesu.transforms.columns import FEEDS, STAGED_TABLE
from kesu.transforms.run_records import IngestRun
from kesu.warehouse import ledger
from kesu.warehouse.reader import scan_table
from kesu.warehouse.warehouse import Warehouse

START, END = date(2025, 3, 30), date(2025, 3, 31)
TABLES = [*STAGED_TABLE.values(), *(f"quarantine/{feed}" for feed in FEEDS)]
pytestmark = pytest.mark.flow


def days() -> list[date]:
    return [START + timedelta(n) for n in range((END - START).days + 1)]


def upload(s3, landing: Path, url: str) -> int:
    """Every file of the local landing zone, under the same keys below `url`'s prefix."""
    prefix = url.removeprefix(f"s3://{s3.bucket}/")
    client, count = s3.client(), 0
    for path in sorted(landing.rglob("*")):
        if path.is_file():
            key = f"{prefix}/{path.relative_to(landing).as_posix()}"
            client.put_object(Bucket=s3.bucket, Key=key, Body=path.read_bytes())
            count += 1
    return count


def ingest(landing: Path | str, root: Path | str) -> list[IngestRun]:
    return [nightly(drop_date=d, landing_dir=str(landing), warehouse_dir=str(root)) for d in days()]


def rows(root: Path | str, table: str) -> pl.DataFrame:
    frame = scan_table(Warehouse.at(root), table, None, END)[0].collect()
    return frame.sort(frame.columns)


def feed_records(runs: list[IngestRun]) -> list[dict]:
    keep = ("status", "rows_in", "loaded", "quarantined", "inputs", "skipped")
    return [{f: {k: getattr(r, k) for k in keep} for f, r in run.feeds.items()} for run in runs]


@pytest.fixture(scope="module")
def site(s3, tmp_path_factory) -> dict:
    mp = pytest.MonkeyPatch()
    mp.setenv("KESU_PII_KEY", "flow-test-key-0123456789abcdef")
    base = tmp_path_factory.mktemp("s3-landing")
    landing = base / "landing"
    generate(START, END, landing, profile="small", seed=5, defects=True)
    url = s3.url("landing")
    assert upload(s3, landing, url) >= 6
    found = {
        "landing": landing,
        "url": url,
        "disk": base / "from-disk",
        "bucket": base / "from-bucket",
        "both": s3.url("warehouse"),
    }
    found["runs"] = {
        "disk": ingest(landing, found["disk"]),
        "bucket": ingest(url, found["bucket"]),
        "both": ingest(url, found["both"]),
    }
    yield found
    mp.undo()


def test_a_bucket_landing_stages_the_rows_of_the_same_files_on_disk(site) -> None:
    disk, bucket = feed_records(site["runs"]["disk"]), feed_records(site["runs"]["bucket"])
    assert bucket == disk  # counts, input names and checksums, skipped files
    assert sum(run.totals["quarantined"] for run in site["runs"]["bucket"]) > 0  # defects
    assert {f: r.status for f, r in site["runs"]["bucket"][0].feeds.items()} == {
        feed: "loaded" for feed in FEEDS
    }
    hotline = site["runs"]["bucket"][0].feeds["hotline"]
    assert hotline.folder == f"{site['url']}/hotline/{START}"
    for table in TABLES:
        expected = rows(site["disk"], table)
        assert rows(site["bucket"], table).equals(expected), table
    assert rows(site["disk"], "stg_regulator_transfers").height > 0  # xlsx read from bytes


def test_landing_and_warehouse_both_in_the_bucket(site) -> None:
    assert feed_records(site["runs"]["both"]) == feed_records(site["runs"]["disk"])
    for table in TABLES:
        assert rows(site["both"], table).equals(rows(site["disk"], table)), table


def test_a_rerun_from_the_bucket_finds_the_inputs_unchanged(site) -> None:
    runs = ingest(site["url"], site["bucket"])
    assert {r.status for run in runs for r in run.feeds.values()} == {"unchanged"}


def test_dask_workers_read_the_drops_from_the_bucket(site, s3, tmp_path, monkeypatch) -> None:
    """The workers have no copy of the landing zone and no KESU_S3_ENDPOINT: the landing URL
    and its options travel with the settings, the credentials are their own AWS chain's."""
    import argparse

    from distributed import Client, LocalCluster
    from kesu.flows import backfill_cli
    from prefect.settings import PREFECT_API_URL

    with monkeypatch.context() as env:
        env.delenv("KESU_S3_ENDPOINT")
        env.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
        cluster = LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
    with cluster, Client(cluster, set_as_default=False) as client:
        (worker_pid,) = client.run(os.getpid).values()
        warehouse = tmp_path / "dask"
        args = argparse.Namespace(
            start=START, end=END, feeds=None, force=False, workers=1,
            dask_address=cluster.scheduler_address, landing=site["url"],
            warehouse=str(warehouse), config=None,
        )  # fmt: skip
        assert backfill_cli.run(args) == 0
    runs = [r for r in ledger.list_runs(Warehouse.at(warehouse)) if r.kind == "ingest"]
    assert {r.pid for r in runs} == {worker_pid}
    assert feed_records(sorted(runs, key=lambda r: r.drop_date)) == feed_records(
        site["runs"]["disk"]
    )
    for table in TABLES:
        assert rows(warehouse, table).equals(rows(site["disk"], table)), table
