"""kesu.warehouse.paths and warehouse.publish: layout safety, atomic swap, idempotence, recovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from kesu.warehouse import paths, publish, storage
from kesu.warehouse.paths import partition_key, safe_part_name, table_dir
from kesu.warehouse.publish import publish_partition, read_partition_manifest, recover

TABLE = "stg_complaints"
D1 = partition_key(date(2025, 1, 31))
D2 = partition_key(date(2025, 2, 1))


def frame(*ids: str) -> pl.DataFrame:
    return pl.DataFrame({"complaint_id": list(ids), "amount": [1.5] * len(ids)})


def read_polars(root: Path, table: str = TABLE) -> pl.DataFrame:
    glob = f"{table_dir(root, table)}/**/*.parquet"
    return pl.scan_parquet(glob, hive_partitioning=True).collect().sort("complaint_id")


def read_duckdb(root: Path, table: str = TABLE) -> pl.DataFrame:
    glob = f"{table_dir(root, table)}/**/*.parquet"
    sql = f"select * from read_parquet('{glob}', hive_partitioning=true) order by complaint_id"
    return duckdb.sql(sql).pl()


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under the table dirs and the ledger, with its mtime and bytes."""
    found = {}
    for top in ("stg_complaints", "_ledger"):
        for p in sorted((root / top).rglob("*")):
            if p.is_file():
                found[str(p.relative_to(root))] = (p.stat().st_mtime_ns, p.read_bytes())
    return found


def manifest(root: Path, partition: str = D1) -> publish.PublishedPartition:
    found = read_partition_manifest(root, TABLE, partition)
    assert found is not None
    return found


def leftovers(root: Path) -> list[str]:
    return sorted(os.listdir(root / "_kesu/staging")) if (root / "_kesu/staging").exists() else []


# --- paths ------------------------------------------------------------------------------------


def test_layout() -> None:
    root = Path("/wh")
    assert partition_key(date(2025, 1, 31)) == "drop_date=2025-01-31"
    assert table_dir(root, "stg_complaints") == Path("/wh/stg_complaints").resolve()
    assert table_dir(root, "quarantine/complaints") == Path("/wh/quarantine/complaints").resolve()
    assert set(paths.TABLE_DIRS) >= {"stg_hotline", "quarantine/hotline"}


@pytest.mark.parametrize(
    "source",
    ["../../etc/passwd", "投诉工单_20250131.xlsx", "a b/c.csv", "..", "", "x" * 300 + ".csv"],
)
def test_safe_part_name_is_a_plain_ascii_name(source: str) -> None:
    name = safe_part_name(source)
    paths.check_part_file(name)  # [A-Za-z0-9_-] stem + .parquet: no separators, no ".."
    assert name.startswith("part-") and len(name) <= 5 + 60 + 1 + 8 + 8


def test_safe_part_name_is_stable_and_unique() -> None:
    assert safe_part_name("工单.csv") == safe_part_name("工单.csv")
    # CJK sanitises to the same stem; the hash of the full name keeps them apart
    assert safe_part_name("工单.csv") != safe_part_name("投诉.csv")
    assert safe_part_name("../../etc/passwd").startswith("part-passwd-")


@pytest.mark.parametrize("feed", ["a/b", "..", "../x", "", ".hidden", "x\x00"])
def test_unsafe_feed_names_are_rejected(tmp_path: Path, feed: str) -> None:
    with pytest.raises(ValueError):
        paths.raw_key(feed, date(2025, 1, 31), "0" * 64, "f.csv")


@pytest.mark.parametrize("table", ["../x", "_raw", "/abs", "Stg", "a//b"])
def test_unsafe_table_names_are_rejected(tmp_path: Path, table: str) -> None:
    with pytest.raises(ValueError):
        table_dir(tmp_path, table)


def test_symlink_out_of_root_is_caught(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "wh").mkdir()
    (tmp_path / "wh" / "stg_complaints").symlink_to(outside)
    with pytest.raises(ValueError, match="escapes"):
        publish_partition(tmp_path / "wh", TABLE, D1, {"part-a.parquet": frame("c1")})


@pytest.mark.parametrize("name", ["../x.parquet", "a/b.parquet", "_x.parquet", "x.csv"])
def test_unsafe_file_names_are_rejected(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        publish_partition(tmp_path, TABLE, D1, {name: frame("c1")})


def test_partition_column_in_frame_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="drop_date"):
        publish_partition(
            tmp_path,
            TABLE,
            D1,
            {"part-a.parquet": frame("c1").with_columns(drop_date=pl.lit(date(2025, 1, 31)))},
        )


# --- publish ----------------------------------------------------------------------------------


def test_create_then_read_with_polars_and_duckdb(tmp_path: Path) -> None:
    first = publish_partition(tmp_path, TABLE, D1, {"part-a.parquet": frame("c1", "c2")})
    assert first.action == "created"
    assert [(f.name, f.rows) for f in first.files] == [("part-a.parquet", 2)]
    for read in (read_polars, read_duckdb):
        got = read(tmp_path)
        assert got["complaint_id"].to_list() == ["c1", "c2"]
        assert got.schema["drop_date"] == pl.Date  # from the hive directory name only

    publish_partition(
        tmp_path, TABLE, D2, {"part-a.parquet": frame("c3"), "part-b.parquet": frame()}
    )
    for read in (read_polars, read_duckdb):
        got = read(tmp_path)
        assert got["complaint_id"].to_list() == ["c1", "c2", "c3"]
        assert got["drop_date"].to_list() == [date(2025, 1, 31)] * 2 + [date(2025, 2, 1)]
    assert leftovers(tmp_path) == []
    assert read_partition_manifest(tmp_path, TABLE, D1) == first


def test_quarantine_table_lives_under_quarantine(tmp_path: Path) -> None:
    publish_partition(tmp_path, "quarantine/complaints", D1, {"part-a.parquet": frame("q1")})
    assert (tmp_path / "quarantine/complaints" / D1 / "part-a.parquet").is_file()
    assert (tmp_path / "_ledger/partitions/quarantine/complaints" / f"{D1}.json").is_file()
    assert read_duckdb(tmp_path, "quarantine/complaints")["complaint_id"].to_list() == ["q1"]


def test_rewrite_with_other_files_leaves_no_stale_file(tmp_path: Path) -> None:
    publish_partition(
        tmp_path, TABLE, D1, {"part-a.parquet": frame("a"), "part-b.parquet": frame("b")}
    )
    again = publish_partition(tmp_path, TABLE, D1, {"part-b.parquet": frame("c2", "c9")})
    assert again.action == "replaced"
    assert os.listdir(tmp_path / TABLE / D1) == ["part-b.parquet"]
    assert read_polars(tmp_path)["complaint_id"].to_list() == ["c2", "c9"]  # no "a" any more
    assert read_partition_manifest(tmp_path, TABLE, D1) == again
    assert leftovers(tmp_path) == []


def test_identical_rewrite_touches_nothing(tmp_path: Path) -> None:
    files = {"part-a.parquet": frame("c1"), "part-b.parquet": frame("c2")}
    publish_partition(tmp_path, TABLE, D1, files)
    before = snapshot(tmp_path)
    again = publish_partition(tmp_path, TABLE, D1, {k: v.clone() for k, v in files.items()})
    assert again.action == "unchanged"
    assert snapshot(tmp_path) == before  # same mtimes, same bytes, manifest included
    assert leftovers(tmp_path) == []


def test_unchanged_partition_gets_its_missing_manifest_back(tmp_path: Path) -> None:
    first = publish_partition(tmp_path, TABLE, D1, {"part-a.parquet": frame("c1")})
    (tmp_path / "_ledger/partitions" / TABLE / f"{D1}.json").unlink()
    assert (
        publish_partition(tmp_path, TABLE, D1, {"part-a.parquet": frame("c1")}).action
        == "unchanged"
    )
    assert manifest(tmp_path).files == first.files


def test_empty_mapping_removes_the_partition(tmp_path: Path) -> None:
    publish_partition(tmp_path, TABLE, D1, {"part-a.parquet": frame("c1")})
    publish_partition(tmp_path, TABLE, D2, {"part-a.parquet": frame("c2")})
    assert publish_partition(tmp_path, TABLE, D1, {}).action == "removed"
    assert not (tmp_path / TABLE / D1).exists()
    assert read_partition_manifest(tmp_path, TABLE, D1) is None
    assert read_duckdb(tmp_path)["complaint_id"].to_list() == ["c2"]
    assert publish_partition(tmp_path, TABLE, D1, {}).action == "absent"
    assert leftovers(tmp_path) == []


def test_same_frame_gives_same_bytes(tmp_path: Path) -> None:
    big = pl.DataFrame({"complaint_id": [f"c{i}" for i in range(50_000)], "amount": [0.5] * 50_000})
    rechunked = pl.concat([big.head(7), big.slice(7)], rechunk=False)
    a = publish_partition(tmp_path / "a", TABLE, D1, {"part-a.parquet": big})
    b = publish_partition(tmp_path / "b", TABLE, D1, {"part-a.parquet": rechunked})
    assert a.files == b.files
    assert a.files[0].sha256 == storage.LocalStorage(tmp_path / "a").sha256(
        f"{TABLE}/{D1}/part-a.parquet"
    )


def test_swap_without_rename_exchange_uses_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_partition(tmp_path, TABLE, D1, {"part-a.parquet": frame("c1")})
    monkeypatch.setattr(storage, "_renameat2_exchange", lambda a, b: False)
    assert (
        publish_partition(tmp_path, TABLE, D1, {"part-b.parquet": frame("c2")}).action == "replaced"
    )
    assert os.listdir(tmp_path / TABLE / D1) == ["part-b.parquet"]
    assert leftovers(tmp_path) == []


# --- crashes and recover ----------------------------------------------------------------------


class Killed(BaseException):
    """Stands in for SIGKILL: nothing after the step runs, and publish's own cleanup is off."""


def crash_after(monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    real = getattr(publish, step)

    def run_then_die(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)
        raise Killed(step)

    monkeypatch.setattr(publish, step, run_then_die)
    monkeypatch.setattr(publish, "_abandon", lambda store, work: None)


def crash_before(monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    def die(*args: object, **kwargs: object) -> None:
        raise Killed(step)

    monkeypatch.setattr(publish, step, die)
    monkeypatch.setattr(publish, "_abandon", lambda store, work: None)


OLD = {"part-a.parquet": frame("old1"), "part-b.parquet": frame("old2")}
NEW = {"part-b.parquet": frame("new2"), "part-c.parquet": frame("new3")}


@pytest.mark.parametrize(
    ("step", "survivor", "note"),
    [
        ("_stage", "old", "crashed before its swap"),  # first file staged, no intent
        ("_write_intent", "old", "removed"),  # intent written, live untouched
        ("_swap_in", "new", "rewrote manifest"),  # swapped, manifest still the old one
        ("_write_manifest", "new", "removed"),  # only the work dir (old files) is left
    ],
)
@pytest.mark.parametrize("exchange", [True, False])
def test_recover_after_a_crash_in_a_replace(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    survivor: str,
    note: str,
    exchange: bool,
) -> None:
    old = publish_partition(tmp_path, TABLE, D1, OLD)
    if not exchange:
        monkeypatch.setattr(storage, "_renameat2_exchange", lambda a, b: False)
    crash_after(monkeypatch, step)
    with pytest.raises(Killed):
        publish_partition(tmp_path, TABLE, D1, NEW)
    monkeypatch.undo()
    expected = {"old": ["old1", "old2"], "new": ["new2", "new3"]}[survivor]
    # even before recover, readers see one whole version
    assert read_polars(tmp_path)["complaint_id"].to_list() == expected
    assert leftovers(tmp_path) != []

    done = recover(tmp_path)

    assert any(note in line for line in done), done
    assert leftovers(tmp_path) == [] and os.listdir(tmp_path / "_kesu/tmp") == []
    assert read_duckdb(tmp_path)["complaint_id"].to_list() == expected
    want = old.files if survivor == "old" else publish_partition(tmp_path, TABLE, D1, NEW).files
    assert manifest(tmp_path).files == want
    assert recover(tmp_path) == []


def test_recover_puts_back_a_partition_moved_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fallback swap killed between its two renames: the partition is missing until recover."""
    publish_partition(tmp_path, TABLE, D1, OLD)
    monkeypatch.setattr(storage, "_renameat2_exchange", lambda a, b: False)
    monkeypatch.setattr(publish, "_abandon", lambda store, work: None)
    real_rename = storage.LocalStorage.rename

    def rename(self: storage.LocalStorage, src: str, dst: str) -> None:
        real_rename(self, src, dst)
        if dst.endswith("/aside"):
            raise Killed("between the renames")

    monkeypatch.setattr(storage.LocalStorage, "rename", rename)
    with pytest.raises(Killed):
        publish_partition(tmp_path, TABLE, D1, NEW)
    monkeypatch.undo()
    assert not (tmp_path / TABLE / D1).exists()

    assert any("put back" in line for line in recover(tmp_path))
    assert read_polars(tmp_path)["complaint_id"].to_list() == ["old1", "old2"]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("crash", "gone"),
    [
        (crash_after, False),  # intent written, partition still live
        (crash_before, True),  # (before _cleanup) partition renamed away, manifest deleted
    ],
)
def test_recover_after_a_crash_in_a_remove(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash: object, gone: bool
) -> None:
    publish_partition(tmp_path, TABLE, D1, OLD)
    step = "_write_intent" if crash is crash_after else "_cleanup"
    crash(monkeypatch, step)  # type: ignore[operator]
    with pytest.raises(Killed):
        publish_partition(tmp_path, TABLE, D1, {})
    monkeypatch.undo()
    recover(tmp_path)
    assert (tmp_path / TABLE / D1).exists() is not gone
    assert (read_partition_manifest(tmp_path, TABLE, D1) is None) is gone
    assert leftovers(tmp_path) == []


def test_an_exception_mid_publish_is_undone_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_partition(tmp_path, TABLE, D1, OLD)
    calls = []
    real = publish._write_manifest

    def fail_once(store: storage.Storage, result: publish.PublishedPartition) -> None:
        calls.append(result)
        if len(calls) == 1:
            raise ZeroDivisionError  # e.g. a full disk, after the swap
        real(store, result)  # the undo rewrites the manifest to match the swapped-in files

    monkeypatch.setattr(publish, "_write_manifest", fail_once)
    with pytest.raises(ZeroDivisionError):
        publish_partition(tmp_path, TABLE, D1, NEW)
    monkeypatch.undo()
    assert leftovers(tmp_path) == []
    assert manifest(tmp_path).files == publish_partition(tmp_path, TABLE, D1, NEW).files


def test_recover_removes_unfinished_temp_files(tmp_path: Path) -> None:
    (tmp_path / "_kesu/tmp").mkdir(parents=True)
    (tmp_path / "_kesu/tmp/abc").write_bytes(b"half")
    assert recover(tmp_path) == ["removed 1 unfinished temp file(s) in _kesu/tmp"]
    assert recover(tmp_path) == []


def test_real_sigkill_during_swap(tmp_path: Path) -> None:
    """A real SIGKILL right after the exchange; the next run's recover finishes the publish."""
    publish_partition(tmp_path, TABLE, D1, OLD)
    script = textwrap.dedent(
        f"""
        import os, signal, polars as pl
        from kesu.warehouse import publish
        real = publish._swap_in
        def swap_then_die(*a):
            real(*a)
            os.kill(os.getpid(), signal.SIGKILL)
        publish._swap_in = swap_then_die
        publish.publish_partition({str(tmp_path)!r}, {TABLE!r}, {D1!r},
                                  {{"part-z.parquet": pl.DataFrame({{"complaint_id": ["z"]}})}})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9, proc.stderr
    assert read_polars(tmp_path)["complaint_id"].to_list() == ["z"]
    assert any("rewrote manifest" in line for line in recover(tmp_path))
    assert leftovers(tmp_path) == []
    assert [f.name for f in manifest(tmp_path).files] == ["part-z.parquet"]


def test_lock_is_exclusive(tmp_path: Path) -> None:
    # a second holder (another open of the lock file) is refused while the first holds it
    lock = publish.warehouse_lock
    with lock(tmp_path), pytest.raises(storage.WarehouseBusy), lock(tmp_path):
        pass
    with publish.warehouse_lock(tmp_path):  # released on exit
        pass


def test_manifest_is_json_with_files(tmp_path: Path) -> None:
    publish_partition(tmp_path, TABLE, D1, {"part-a.parquet": frame("c1")})
    data = json.loads((tmp_path / "_ledger/partitions" / TABLE / f"{D1}.json").read_text())
    assert data["files"][0]["name"] == "part-a.parquet" and data["files"][0]["rows"] == 1
