"""The `Warehouse`: one object per warehouse (local, temporary, S3 on moto's server) through
which every read and write goes; it pickles for Dask workers; nothing outside `warehouse/`
reaches around it."""

from __future__ import annotations

import ast
import pickle
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from kesu.transforms.run_records import IngestRun
from kesu.warehouse import Warehouse, ledger
from kesu.warehouse.publish import publish_partition
from kesu.warehouse.reader import partition_dates, scan_table

TABLE = "stg_complaints"
DAY = date(2025, 3, 1)
REPO = Path(__file__).resolve().parents[2]
# the package's folders outside warehouse/ (kesu.flows, kesu.reports, ...)
OUTSIDE = ("flows", "transforms", "expectations", "reports", "samplegen", "reference", "bench")


@pytest.fixture(params=["local", "temporary", "s3"])
def wh(request, tmp_path: Path) -> Iterator[Warehouse]:
    if request.param == "local":
        yield Warehouse.local(tmp_path / "wh")
    elif request.param == "temporary":
        made = Warehouse.temporary()
        yield made
        made.remove()
        assert not Path(made.location).exists()
    else:
        yield Warehouse.s3(request.getfixturevalue("s3").url())


def complaints(*ids: str) -> pl.DataFrame:
    return pl.DataFrame({"complaint_id": list(ids), "amount": [1.5] * len(ids)})


def read_back(wh: Warehouse, day: date = DAY) -> list[str]:
    frame, _ = scan_table(wh, TABLE, day, day)
    return sorted(frame.collect()["complaint_id"].to_list())


def test_each_kind_publishes_and_reads_a_partition(wh: Warehouse) -> None:
    done = publish_partition(
        wh, TABLE, "drop_date=2025-03-01", {"part-a.parquet": complaints("a", "b")}
    )
    assert (done.action, done.version) == ("created", 1)  # version 0: the empty table
    assert read_back(wh) == ["a", "b"]
    assert partition_dates(wh, TABLE) == [DAY]
    started = datetime(2025, 3, 2, tzinfo=UTC)
    run = IngestRun(ledger.new_run_id(started), DAY, started, status="completed")
    ledger.record_run(wh, run)
    assert ledger.list_runs(wh) == [run]
    assert wh.remote == str(wh).startswith("s3://")


def test_a_warehouse_survives_a_pickle_round_trip_and_still_works(wh: Warehouse) -> None:
    publish_partition(wh, TABLE, "drop_date=2025-03-01", {"part-a.parquet": complaints("a")})
    assert wh.store is wh.store  # built once, kept
    copy = pickle.loads(pickle.dumps(wh))  # what a Dask worker receives (no boto3 client)
    assert copy == wh and copy is not wh
    assert read_back(copy) == ["a"]
    publish_partition(copy, TABLE, "drop_date=2025-03-02", {"part-a.parquet": complaints("b")})
    assert read_back(wh, date(2025, 3, 2)) == ["b"]  # the same storage behind both


def test_threads_share_one_warehouse(wh: Warehouse) -> None:
    days = [date(2025, 3, d) for d in (1, 2, 3)]

    def publish(day: date) -> str:
        frame = complaints(f"c{day.day}")
        return publish_partition(wh, TABLE, f"drop_date={day}", {"part-a.parquet": frame}).action

    with ThreadPoolExecutor(max_workers=3) as pool:
        actions = list(pool.map(publish, days))
    assert actions.count("created") + actions.count("replaced") == 3
    assert partition_dates(wh, TABLE) == days
    assert [read_back(wh, d) for d in days] == [["c1"], ["c2"], ["c3"]]


def test_a_location_is_told_local_or_remote_by_the_warehouse_alone(tmp_path: Path) -> None:
    assert not Warehouse.at(tmp_path / "wh").remote
    assert not Warehouse.at(str(tmp_path / "wh")).remote
    assert Warehouse.at(tmp_path / "wh") == Warehouse.local(tmp_path / "wh")
    with pytest.raises(ValueError, match="only s3://"):
        Warehouse.at("gs://bucket/wh")
    with pytest.raises(ValueError, match="expected s3://bucket"):
        Warehouse.s3("s3://")


def test_an_object_store_warehouse_exists_when_its_prefix_holds_kesus_ledger_or_tables(s3):
    from kesu.warehouse.s3 import ObjectStoreError

    url = s3.url()
    prefix = url.removeprefix(f"s3://{s3.bucket}/")
    assert not Warehouse.s3(url).exists()  # the bucket answers, the prefix is empty: it said yes
    s3.client().put_object(Bucket=s3.bucket, Key=f"{prefix}/_kesu/publishing/x.json", Body=b"")
    assert not Warehouse.s3(url).exists()  # a publish marker alone is no warehouse
    s3.client().put_object(Bucket=s3.bucket, Key=f"{prefix}/_ledger/runs/x.json", Body=b"{}")
    assert Warehouse.s3(url).exists()  # a run was recorded
    tables_only = Warehouse.s3(s3.url())
    publish_partition(tables_only, TABLE, "drop_date=2025-03-01", {"a.parquet": complaints("a")})
    assert tables_only.exists()  # a table's _delta_log, no ledger
    assert not Warehouse.s3(f"{url}-typo").exists()
    with pytest.raises(ObjectStoreError, match="bucket 'no-such-bucket' does not exist"):
        Warehouse.s3("s3://no-such-bucket/wh").exists()


def _imports(path: Path) -> Iterator[tuple[str, str]]:
    """(module, name) of every import in the file; name "" for `import module`."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, "") for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield from ((node.module, alias.name) for alias in node.names)


def _names(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
    return found


def test_nothing_outside_the_warehouse_reaches_its_storage() -> None:
    sources = [p for folder in OUTSIDE for p in sorted((REPO / folder).rglob("*.py"))]
    assert len(sources) > 20  # the scan found the package
    offences = []
    for path in sources:
        where = path.relative_to(REPO)
        for module, name in _imports(path):
            if module == "kesu.warehouse.storage" or (module, name) == (
                "kesu.warehouse",
                "storage",
            ):
                offences.append(f"{where}: imports the storage backends")
            if module == "ctypes":
                offences.append(f"{where}: imports ctypes")
            if module == "fcntl":  # report output had a flock helper of its own
                offences.append(f"{where}: takes a lock itself (kesu.warehouse.locks)")
        if "is_remote" in _names(path):
            offences.append(f"{where}: decides local or remote itself")
    assert offences == []


def test_inside_the_warehouse_only_the_warehouse_tells_local_from_remote() -> None:
    for path in sorted((REPO / "warehouse").glob("*.py")):
        assert "is_remote" not in _names(path), path.name
        assert "ctypes" not in {module for module, _ in _imports(path)}, path.name
