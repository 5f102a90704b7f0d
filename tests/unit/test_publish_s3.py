"""Publishing on S3 (moto's real server): versions and a pointer instead of a rename."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import date

import polars as pl
import pytest
from kesu.warehouse import paths, versioned
from kesu.warehouse.publish import (
    VersionedPartition,
    partition_intact,
    publish_partition,
    read_partition_manifest,
    recover,
)
from kesu.warehouse.quarantine import read_quarantine
from kesu.warehouse.reader import partition_dates, scan_table
from kesu.warehouse.s3 import ObjectStoreError
from kesu.warehouse.storage import storage_for

TABLE = "stg_complaints"
DAY = date(2025, 1, 31)
D1 = paths.partition_key(DAY)


def frame(*ids: str) -> pl.DataFrame:
    return pl.DataFrame({"complaint_id": list(ids), "amount": [1.5] * len(ids)})


def pointer(url: str) -> VersionedPartition:
    found = read_partition_manifest(url, TABLE, D1)
    assert isinstance(found, VersionedPartition)
    return found


def versions(url: str) -> list[str]:
    return storage_for(url).list_dir(paths.partition_dir_key(TABLE, D1))


def ids(url: str) -> list[str]:
    scan, _ = scan_table(url, TABLE, None, DAY)
    return sorted(scan.collect()["complaint_id"].to_list())


def test_created_is_readable_through_its_pointer(s3) -> None:
    url = s3.url()
    result = publish_partition(url, TABLE, D1, {"part-a.parquet": frame("a", "b")})
    assert result.action == "created" and isinstance(result, VersionedPartition)
    assert pointer(url).version == result.version and pointer(url).previous is None
    assert versions(url) == [result.version]
    assert partition_dates(url, TABLE) == [DAY]
    scan, records = scan_table(url, TABLE, None, DAY)
    got = scan.collect()
    assert got.columns == ["complaint_id", "amount", "drop_date"]  # as the local hive scan
    assert got["drop_date"].unique().to_list() == [DAY]
    (record,) = records
    assert record["rows"] == 2 and record["path"] == f"{TABLE}/{D1}"
    assert record["files"][0]["path"] == f"{TABLE}/{D1}/{result.version}/part-a.parquet"


def test_replace_keeps_the_previous_version_until_the_next_publish(s3) -> None:
    url = s3.url()
    first = publish_partition(url, TABLE, D1, {"part-a.parquet": frame("a")})
    second = publish_partition(url, TABLE, D1, {"part-b.parquet": frame("b")})
    assert second.action == "replaced" and ids(url) == ["b"]  # no stale part-a in the scan
    assert pointer(url).previous == first.version
    assert versions(url) == sorted([first.version, second.version])  # a reader on `first` is ok
    third = publish_partition(url, TABLE, D1, {"part-c.parquet": frame("c")})
    assert versions(url) == sorted([second.version, third.version])  # `first` collected
    assert ids(url) == ["c"]


def test_unchanged_republish_writes_nothing(s3) -> None:
    url = s3.url()
    publish_partition(url, TABLE, D1, {"part-a.parquet": frame("a", "b")})
    before = s3.snapshot(url, skip=())
    again = publish_partition(url, TABLE, D1, {"part-a.parquet": frame("a", "b")})
    assert again.action == "unchanged"
    assert s3.snapshot(url, skip=()) == before


def test_unchanged_but_a_file_deleted_by_hand_is_published_again(s3) -> None:
    url = s3.url()
    first = publish_partition(url, TABLE, D1, {"part-a.parquet": frame("a")})
    storage_for(url).delete(f"{TABLE}/{D1}/{first.version}/part-a.parquet")
    assert not partition_intact(url, TABLE, D1)
    again = publish_partition(url, TABLE, D1, {"part-a.parquet": frame("a")})
    assert again.action == "replaced" and partition_intact(url, TABLE, D1)
    assert ids(url) == ["a"]


def test_empty_mapping_removes_pointer_and_versions(s3) -> None:
    url = s3.url()
    publish_partition(url, TABLE, D1, {"part-a.parquet": frame("a")})
    assert publish_partition(url, TABLE, D1, {}).action == "removed"
    assert read_partition_manifest(url, TABLE, D1) is None and versions(url) == []
    assert partition_dates(url, TABLE) == [] and partition_intact(url, TABLE, D1)
    assert publish_partition(url, TABLE, D1, {}).action == "absent"


def test_a_kill_between_upload_and_pointer_switch(s3) -> None:
    """A real SIGKILL after the new version is uploaded, before the pointer PUT: readers keep
    the old version; the next run's recover deletes the orphan; the publish then goes through."""
    url = s3.url()
    old = publish_partition(url, TABLE, D1, {"part-a.parquet": frame("a")})
    script = textwrap.dedent(
        f"""
        import os, signal, polars as pl
        from kesu.warehouse import publish, versioned
        def die(*a):
            os.kill(os.getpid(), signal.SIGKILL)
        versioned._write_manifest = die
        publish.publish_partition({url!r}, {TABLE!r}, {D1!r},
                                  {{"part-z.parquet": pl.DataFrame({{"complaint_id": ["z"],
                                                                    "amount": [1.5]}})}})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, env=os.environ)
    assert proc.returncode == -9, proc.stderr
    (orphan,) = set(versions(url)) - {old.version}  # uploaded, whole, but not pointed to
    assert storage_for(url).list_dir(f"{TABLE}/{D1}/{orphan}") == ["part-z.parquet"]
    assert pointer(url).version == old.version and ids(url) == ["a"]
    assert recover(url) == [
        f"removed orphaned version {TABLE}/{D1}/{orphan}: crashed before its pointer switch"
    ]
    assert versions(url) == [old.version] and storage_for(url).list_dir("_kesu/publishing") == []
    assert recover(url) == []
    assert publish_partition(url, TABLE, D1, {"part-z.parquet": frame("z")}).action == "replaced"
    assert ids(url) == ["z"]


def test_a_first_publish_killed_before_its_pointer_is_invisible(s3, monkeypatch) -> None:
    url = s3.url()

    def killed(*_args: object) -> None:
        raise KeyboardInterrupt  # stands in for the kill: no pointer is written

    monkeypatch.setattr(versioned, "_write_manifest", killed)
    monkeypatch.setattr(versioned, "_recover_one", lambda *_a: [])  # a kill undoes nothing
    with pytest.raises(KeyboardInterrupt):
        publish_partition(url, TABLE, D1, {"part-a.parquet": frame("a")})
    monkeypatch.undo()
    assert len(versions(url)) == 1  # uploaded, but nothing points at it
    assert partition_dates(url, TABLE) == [] and ids(url) == []
    assert not partition_intact(url, TABLE, D1)  # so the next run of the drop publishes again
    (done,) = recover(url)
    assert done.startswith("removed orphaned version") and versions(url) == []


def test_a_kill_after_the_switch_leaves_only_the_clean_up_to_recover(s3, monkeypatch) -> None:
    url = s3.url()
    first = publish_partition(url, TABLE, D1, {"part-a.parquet": frame("a")})
    second = publish_partition(url, TABLE, D1, {"part-b.parquet": frame("b")})

    def killed(*_args: object) -> list[str]:
        raise KeyboardInterrupt  # stands in for the kill: nothing after the switch runs

    monkeypatch.setattr(versioned, "_collect", killed)
    monkeypatch.setattr(versioned, "_recover_one", lambda *_a: [])  # a kill undoes nothing
    with pytest.raises(KeyboardInterrupt):
        publish_partition(url, TABLE, D1, {"part-c.parquet": frame("c")})
    monkeypatch.undo()
    assert ids(url) == ["c"] and len(versions(url)) == 3
    (done,) = recover(url)
    assert done == f"removed old version {TABLE}/{D1}/{first.version}"
    assert pointer(url).previous == second.version and len(versions(url)) == 2


def test_quarantine_review_reads_the_pointed_version(s3) -> None:
    url = s3.url()
    table = "quarantine/complaints"
    rows = pl.DataFrame(
        {"source_file": ["f.csv"], "source_line": [3], "field": ["x"], "rule": ["r"],
         "reason": ["why"]}
    )  # fmt: skip
    publish_partition(url, table, D1, {"part-f.parquet": rows})
    assert read_quarantine(url, "complaints", DAY).to_dicts() == rows.to_dicts()
    assert read_quarantine(url, "complaints", date(2025, 2, 1)).height == 0


def test_a_missing_bucket_is_named(s3) -> None:
    url = f"s3://no-such-bucket-{os.getpid()}/wh"
    with pytest.raises(ObjectStoreError, match=f"bucket 'no-such-bucket-{os.getpid()}'.*{url}"):
        publish_partition(url, TABLE, D1, {"part-a.parquet": frame("a")})


def test_an_unreachable_endpoint_is_named(s3, monkeypatch) -> None:
    monkeypatch.setenv("KESU_S3_ENDPOINT", "http://127.0.0.1:9")  # discard port: refused
    url = s3.url()
    with pytest.raises(ObjectStoreError, match=f"cannot reach http://127.0.0.1:9 for {url}"):
        partition_dates(url, TABLE)


def test_missing_credentials_are_named(s3, monkeypatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    url = s3.url()  # a new URL: a new session, which finds no credentials in the chain
    with pytest.raises(ObjectStoreError, match=f"no AWS credentials for {url}: set AWS_ACCESS"):
        partition_dates(url, TABLE)
