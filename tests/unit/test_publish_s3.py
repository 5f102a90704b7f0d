"""The Delta tables on S3 (moto's real server): the same commits as on a local disk, with
concurrent writers kept apart by S3's conditional writes (no lock, no rename)."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from multiprocessing import get_context

import polars as pl
import pytest
from deltalake import DeltaTable
from kesu.warehouse import Warehouse, paths
from kesu.warehouse.publish import partition_intact, publish_partition
from kesu.warehouse.quarantine import read_quarantine
from kesu.warehouse.reader import partition_dates, scan_table
from kesu.warehouse.s3 import ObjectStoreError

TABLE = "stg_complaints"
DAY = date(2025, 1, 31)
D1 = paths.partition_key(DAY)
D2 = paths.partition_key(date(2025, 2, 1))


def frame(*ids: str) -> pl.DataFrame:
    return pl.DataFrame({"complaint_id": list(ids), "amount": [1.5] * len(ids)})


def ids(wh: Warehouse, version: int | None = None) -> list[str]:
    scan, _ = scan_table(wh, TABLE, None, date(2025, 12, 31), version)
    return sorted(scan.collect()["complaint_id"].to_list())


def test_created_is_readable_by_kesu_and_by_polars_scan_delta(s3) -> None:
    url = s3.url()
    wh = Warehouse.s3(url)
    result = publish_partition(wh, TABLE, D1, {"part-a.parquet": frame("a", "b")})
    assert result.action == "created" and result.version == 1  # version 0: the empty table
    assert partition_dates(wh, TABLE) == [DAY]
    scan, records = scan_table(wh, TABLE, None, DAY)
    got = scan.collect()
    assert got.columns == ["complaint_id", "amount", "drop_date"]
    assert got["drop_date"].unique().to_list() == [DAY]
    assert [(r.rows, r.version) for r in records] == [(2, 1)]
    # a reader outside kesu, with nothing but the table's URL and the endpoint's options
    outside = pl.read_delta(f"{url}/{TABLE}", storage_options=wh.storage_options())
    assert sorted(outside["complaint_id"].to_list()) == ["a", "b"]
    assert partition_intact(wh, TABLE, D1)


def test_replace_then_time_travel(s3) -> None:
    url = s3.url()
    wh = Warehouse.s3(url)
    publish_partition(wh, TABLE, D1, {"part-a.parquet": frame("a")})
    publish_partition(wh, TABLE, D2, {"part-a.parquet": frame("z")})
    again = publish_partition(wh, TABLE, D1, {"part-a.parquet": frame("b", "c")})
    assert again.action == "replaced" and again.version == 3
    assert ids(wh) == ["b", "c", "z"]
    assert ids(wh, version=2) == ["a", "z"]  # a glob would see a, b, c and z


def test_unchanged_republish_writes_nothing(s3) -> None:
    url = s3.url()
    wh = Warehouse.s3(url)
    publish_partition(wh, TABLE, D1, {"part-a.parquet": frame("a", "b")})
    before = s3.snapshot(url)
    again = publish_partition(wh, TABLE, D1, {"part-b.parquet": frame("b", "a")})
    assert again.action == "unchanged" and again.version == 1
    assert s3.snapshot(url) == before


def test_empty_mapping_removes_the_drop(s3) -> None:
    url = s3.url()
    wh = Warehouse.s3(url)
    publish_partition(wh, TABLE, D1, {"part-a.parquet": frame("a")})
    publish_partition(wh, TABLE, D2, {"part-a.parquet": frame("z")})
    assert publish_partition(wh, TABLE, D1, {}).action == "removed"
    assert ids(wh) == ["z"] and partition_dates(wh, TABLE) == [date(2025, 2, 1)]
    assert publish_partition(wh, TABLE, D1, {}).action == "absent"


def _publish_in_child(url: str, endpoint: str, partition: str, ids: list[str]) -> str:
    os.environ["KESU_S3_ENDPOINT"] = endpoint
    return publish_partition(
        Warehouse.at(url), TABLE, partition, {"part-a.parquet": frame(*ids)}
    ).action


def test_processes_writing_one_bucket_at_once_all_land_once(s3) -> None:
    """Four processes (no shared lock, as on four machines): two on one drop, two on another.
    Every drop ends with its rows once; a process that lost a race finds the drop unchanged."""
    url = s3.url()
    wh = Warehouse.s3(url)
    publish_partition(wh, TABLE, D1, {"part-a.parquet": frame("seed")})
    jobs = [(D1, ["x1", "x2"]), (D1, ["x1", "x2"]), (D2, ["y1"]), (D2, ["y1"])]
    with ProcessPoolExecutor(max_workers=4, mp_context=get_context("spawn")) as pool:
        runs = [pool.submit(_publish_in_child, url, s3.endpoint, *job) for job in jobs]
        actions = [run.result() for run in runs]
    assert actions.count("unchanged") >= 1
    assert ids(wh) == ["x1", "x2", "y1"]
    table = DeltaTable(f"{url}/{TABLE}", storage_options=wh.storage_options())
    assert table.version() <= 4  # seed + one commit per drop, + one per lost same-rows race


def test_quarantine_review_reads_the_live_rows(s3) -> None:
    url = s3.url()
    wh = Warehouse.s3(url)
    table = "quarantine/complaints"
    rows = pl.DataFrame(
        {"source_file": ["f.csv"], "source_line": [3], "field": ["x"], "rule": ["r"],
         "reason": ["why"]}
    )  # fmt: skip
    publish_partition(wh, table, D1, {"part-f.parquet": rows})
    assert read_quarantine(wh, "complaints", DAY).to_dicts() == rows.to_dicts()
    assert read_quarantine(wh, "complaints", date(2025, 2, 1)).height == 0


def test_a_missing_bucket_is_named(s3) -> None:
    url = f"s3://no-such-bucket-{os.getpid()}/wh"
    wh = Warehouse.s3(url)
    with pytest.raises(ObjectStoreError, match=f"bucket 'no-such-bucket-{os.getpid()}'.*{url}"):
        publish_partition(wh, TABLE, D1, {"part-a.parquet": frame("a")})


def test_an_unreachable_endpoint_is_named(s3, monkeypatch) -> None:
    monkeypatch.setenv("KESU_S3_ENDPOINT", "http://127.0.0.1:9")  # discard port: refused
    url = s3.url()
    wh = Warehouse.s3(url)
    with pytest.raises(ObjectStoreError, match=f"cannot reach http://127.0.0.1:9 for {url}"):
        partition_dates(wh, TABLE)


def test_missing_credentials_are_named(s3, monkeypatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    url = s3.url()  # a new URL: a new session, which finds no credentials in the chain
    wh = Warehouse.s3(url)
    with pytest.raises(ObjectStoreError, match=f"no AWS credentials for {url}: set AWS_ACCESS"):
        partition_dates(wh, TABLE)
