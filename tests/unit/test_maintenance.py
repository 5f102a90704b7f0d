"""kesu.warehouse.maintenance: `kesu migrate` on a warehouse written before Delta, and
`kesu maintain`'s compaction and vacuum (no Prefect: the plain functions the flows wrap)."""

from __future__ import annotations

import shutil
import threading
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable, write_deltalake
from kesu.warehouse import Warehouse, locks, paths
from kesu.warehouse.maintenance import Unmigrated, maintain, migrate, unmigrated
from kesu.warehouse.publish import publish_partition
from kesu.warehouse.quarantine import read_quarantine
from kesu.warehouse.reader import partition_dates, scan_table

V0 = Path(__file__).resolve().parents[1] / "corpus" / "warehouse-v0"
DAYS = [date(2025, 3, 3), date(2025, 3, 4)]
D1 = paths.partition_key(DAYS[0])


@pytest.fixture
def old_warehouse(tmp_path: Path) -> Path:
    root = tmp_path / "wh"
    shutil.copytree(V0, root, ignore=shutil.ignore_patterns("README.md"))
    return root


def folder_rows(root: Path, table: str) -> pl.DataFrame:
    """What the old layout held, read as it was read then (hive folders, one file per source)."""
    return pl.read_parquet(f"{root / table}/*/*.parquet", hive_partitioning=True)


def test_migrate_turns_the_folder_layout_into_delta_tables_with_the_same_rows(old_warehouse):
    before = {t: folder_rows(old_warehouse, t) for t in ("stg_hotline", "stg_complaints")}
    wh = Warehouse.at(old_warehouse)
    done = migrate(wh)
    assert [line.split(":")[0] for line in done] == [
        "stg_hotline",
        "stg_complaints",
        "quarantine/hotline",
    ]
    for table, rows in before.items():
        assert partition_dates(wh, table) == DAYS
        migrated, records = scan_table(wh, table, None, DAYS[-1])
        got = migrated.collect()
        assert got.schema == rows.select(got.columns).schema  # same columns, same types
        keys = ["drop_date", "source_file", "source_line"]
        assert got.sort(keys).equals(rows.select(got.columns).sort(keys))
        assert {r.version for r in records} == {len(DAYS)}  # created, then a commit per drop
    for table in ("stg_hotline", "stg_complaints", "quarantine/hotline"):  # rewritten or adopted
        configuration = DeltaTable(str(old_warehouse / table)).metadata().configuration
        assert configuration == {"delta.checkpointInterval": "10"}
    assert read_quarantine(wh, "hotline", DAYS[0]).height == 1
    assert not (old_warehouse / paths.LEDGER / "partitions" / "stg_hotline").exists()
    assert migrate(wh) == []  # a second run finds nothing to convert
    # no file of the old layout is left beside the Delta files
    assert not list(old_warehouse.glob("stg_hotline/drop_date=*/part-hotline_*.parquet"))


def test_a_migration_killed_midway_is_finished_by_running_it_again(old_warehouse, monkeypatch):
    from kesu.warehouse import maintenance

    real = maintenance._rewrite
    calls = []

    def dies_on_the_second_drop(root, table, partition):
        calls.append(partition)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill would stop it, before the old manifests go
        real(root, table, partition)

    monkeypatch.setattr(maintenance, "_rewrite", dies_on_the_second_drop)
    before = folder_rows(old_warehouse, "stg_hotline")
    with pytest.raises(KeyboardInterrupt):
        wh = Warehouse.at(old_warehouse)
        migrate(wh)
    monkeypatch.setattr(maintenance, "_rewrite", real)
    assert migrate(wh)[0].startswith("stg_hotline: 2 partition(s) rewritten")
    got = scan_table(wh, "stg_hotline", None, DAYS[-1])[0].collect()
    keys = ["drop_date", "source_file", "source_line"]
    assert got.sort(keys).equals(before.select(got.columns).sort(keys))


def test_a_migrated_table_takes_publishes_and_finds_unchanged_drops(old_warehouse):
    wh = Warehouse.at(old_warehouse)
    migrate(wh)
    uri = str(old_warehouse / "stg_complaints")
    live = pl.read_delta(uri).filter(pl.col("drop_date") == DAYS[1]).drop("drop_date")
    partition = paths.partition_key(DAYS[1])
    again = publish_partition(wh, "stg_complaints", partition, {"part-a.parquet": live})
    assert again.action == "unchanged" and DeltaTable(uri).version() == 2
    fewer = publish_partition(wh, "stg_complaints", partition, {"part-a.parquet": live.head(1)})
    assert fewer.action == "replaced" and fewer.version == 3


def test_migrate_refuses_an_object_store_that_holds_first_release_tables(s3) -> None:
    url = s3.url()
    key = f"{url.removeprefix(f's3://{s3.bucket}/')}/{paths.manifest_key('stg_hotline', D1)}"
    s3.client().put_object(Bucket=s3.bucket, Key=key, Body=b"{}")  # a first-release pointer
    with pytest.raises(ValueError, match=r"re-ingest .*\(stg_hotline\)$"):
        migrate(Warehouse.s3(url))


def test_migrate_finds_nothing_to_convert_in_an_object_store_of_delta_tables(s3) -> None:
    wh = Warehouse.s3(s3.url())
    publish_partition(wh, "stg_complaints", D1, {"part-a.parquet": frame("a")})
    assert migrate(wh) == []  # it said: re-ingest every drop (kesu backfill --force)


def frame(*ids: str) -> pl.DataFrame:
    return pl.DataFrame({"complaint_id": list(ids)})


def test_maintain_compacts_and_vacuums_what_no_version_reads(tmp_path: Path) -> None:
    table, uri = "stg_complaints", str(tmp_path / "stg_complaints")
    for n in range(4):  # four corrections of one drop: four files, three of them replaced
        files = {"part-a.parquet": frame(f"c{n}"), "part-b.parquet": frame(f"d{n}")}
        wh = Warehouse.at(tmp_path)
        publish_partition(wh, table, paths.partition_key(DAYS[0]), files)
    publish_partition(wh, table, paths.partition_key(DAYS[1]), {"part-a.parquet": frame("e")})
    (tmp_path / table / "drop_date=2025-03-03" / "part-orphan.parquet").write_bytes(b"killed")
    kept = maintain(wh, vacuum_days=7)  # nothing is a week old: nothing deleted
    assert [(m.table, m.files_vacuumed) for m in kept] == [(table, 0)]
    assert pl.read_delta(uri, version=1)["complaint_id"].sort().to_list() == ["c0", "d0"]
    (done,) = maintain(wh, vacuum_days=0)
    assert done.files_vacuumed >= 4  # three replaced files and the orphan
    assert sorted(pl.read_delta(uri)["complaint_id"]) == ["c3", "d3", "e"]
    assert (tmp_path / table / "_delta_log" / "_last_checkpoint").is_file()
    with pytest.raises(Exception):  # noqa: B017  (deltalake raises its own error types)
        pl.read_delta(uri, version=1)  # the files of version 1 are gone


def test_maintain_sets_the_checkpoint_interval_on_a_table_created_without_it(
    tmp_path: Path,
) -> None:
    uri = str(tmp_path / "stg_complaints")
    write_deltalake(
        uri, frame("a").with_columns(drop_date=pl.lit(DAYS[0])), partition_by=["drop_date"]
    )
    assert DeltaTable(uri).metadata().configuration == {}
    maintain(Warehouse.at(tmp_path), vacuum_days=7)
    assert DeltaTable(uri).metadata().configuration == {"delta.checkpointInterval": "10"}
    assert pl.read_delta(uri)["complaint_id"].to_list() == ["a"]


def test_maintain_refuses_a_negative_retention(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="0 or more"):
        maintain(Warehouse.at(tmp_path), vacuum_days=-1)


def test_a_short_retention_never_deletes_the_file_a_live_publish_is_about_to_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `kesu maintain --vacuum-days 0` run exactly between a publish's file write and its commit
    # (a real race of two processes hit it after 49 publishes): the commit named a deleted file
    wh, day = Warehouse.at(tmp_path), DAYS[0]
    publish_partition(
        wh, "stg_complaints", paths.partition_key(day), {"part-a.parquet": frame("a")}
    )
    real, refused = DeltaTable.create_write_transaction, []

    def maintain_before_the_commit(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            maintain(wh, vacuum_days=0)
        except locks.WarehouseBusy as exc:
            refused.append(str(exc))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(DeltaTable, "create_write_transaction", maintain_before_the_commit)
    with locks.live_run(wh):  # as every ingest and backfill holds it
        publish_partition(
            wh, "stg_complaints", paths.partition_key(day), {"part-a.parquet": frame("b")}
        )
    monkeypatch.setattr(DeltaTable, "create_write_transaction", real)
    assert refused and "no other kesu run is live" in refused[0]
    live = DeltaTable(str(tmp_path / "stg_complaints"))
    assert all(Path(uri).is_file() for uri in live.file_uris())
    assert pl.read_delta(str(tmp_path / "stg_complaints"))["complaint_id"].to_list() == ["b"]


def test_a_run_that_starts_during_a_short_retention_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh = Warehouse.at(tmp_path)
    publish_partition(
        wh, "stg_complaints", paths.partition_key(DAYS[0]), {"part-a.parquet": frame("a")}
    )
    entered = threading.Event()

    def a_run_starts() -> None:
        with locks.live_run(wh):
            entered.set()

    real = DeltaTable.create_checkpoint
    seen = []

    def a_run_starts_midway(self):  # type: ignore[no-untyped-def]
        starting = threading.Thread(target=a_run_starts)
        starting.start()
        seen.append(entered.wait(0.5))  # the run's live_run waits behind maintain's lock
        real(self)
        return starting

    monkeypatch.setattr(DeltaTable, "create_checkpoint", a_run_starts_midway)
    maintain(wh, vacuum_days=0)
    assert seen == [False]
    assert entered.wait(5)  # and goes on once maintain is done


def test_the_default_retention_runs_beside_a_live_run(tmp_path: Path) -> None:
    wh = Warehouse.at(tmp_path)
    publish_partition(
        wh, "stg_complaints", paths.partition_key(DAYS[0]), {"part-a.parquet": frame("a")}
    )
    with locks.live_run(wh):
        assert [m.table for m in maintain(wh, vacuum_days=7)] == ["stg_complaints"]
        with pytest.raises(locks.WarehouseBusy, match="run it again later"):
            maintain(wh, vacuum_days=0)


def test_a_short_retention_is_refused_on_an_object_store() -> None:
    with pytest.raises(ValueError, match="on another machine"):
        maintain(Warehouse.at("s3://bucket/wh"), vacuum_days=0)


def test_maintain_counts_the_files_it_deleted_and_commits_nothing_when_none_is_left(
    tmp_path: Path,
) -> None:
    wh, table = Warehouse.at(tmp_path), "stg_complaints"
    for n in range(3):  # two corrections of one drop: two replaced files
        publish_partition(
            wh, table, paths.partition_key(DAYS[0]), {"part-a.parquet": frame(f"c{n}")}
        )
    log = tmp_path / table / "_delta_log"
    (first,) = maintain(wh, vacuum_days=0)
    assert first.files_vacuumed == 2
    commits = sorted(log.glob("*.json"))
    (again,) = maintain(wh, vacuum_days=0)  # the replaced files' tombstones are still in the log
    assert (again.files_vacuumed, again.version) == (0, first.version)
    assert sorted(log.glob("*.json")) == commits  # no vacuum start/end commits for nothing
    assert pl.read_delta(str(tmp_path / table))["complaint_id"].to_list() == ["c2"]


def test_maintain_refuses_a_warehouse_not_migrated_and_deletes_nothing(old_warehouse):
    old_files = sorted(old_warehouse.rglob("*.parquet"))
    wh = Warehouse.at(old_warehouse)
    # the upgrade's first night: a drop published before `kesu migrate` made a Delta log
    rows = folder_rows(old_warehouse, "stg_complaints").filter(pl.col("drop_date") == DAYS[1])
    publish_partition(
        wh,
        "stg_complaints",
        paths.partition_key(DAYS[1]),
        {"part-a.parquet": rows.drop("drop_date")},
    )
    with pytest.raises(
        Unmigrated, match="stg_hotline, stg_complaints, quarantine/hotline.*run kesu migrate first"
    ):
        maintain(wh, vacuum_days=7)
    assert set(old_files) <= set(old_warehouse.rglob("*.parquet"))
    assert unmigrated(wh) == ["stg_hotline", "stg_complaints", "quarantine/hotline"]
    migrate(Warehouse.at(old_warehouse))
    assert unmigrated(Warehouse.at(old_warehouse)) == []


COMMANDS = {
    "ingest": ["ingest", "--date", "2025-03-04"],
    "backfill": ["backfill", "--start", "2025-03-03", "--end", "2025-03-04"],
    "report": ["report", "quarterly", "2025Q1"],
    "watch": ["watch"],
    "maintain": ["maintain"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_the_commands_refuse_a_warehouse_not_migrated_before_prefect_starts(
    command, old_warehouse, tmp_path, capsys, monkeypatch
):
    from kesu.flows.cli import main

    monkeypatch.setenv("KESU_LANDING", str(tmp_path))  # a landing zone that exists
    before = sorted(p for p in old_warehouse.rglob("*") if p.is_file())
    assert main([*COMMANDS[command], "--warehouse", str(old_warehouse)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"kesu {command}: {old_warehouse} holds tables of the first release not yet converted "
        "to Delta tables (stg_hotline, stg_complaints, quarantine/hotline): run kesu migrate first"
    )
    assert sorted(p for p in old_warehouse.rglob("*") if p.is_file()) == before


@pytest.mark.parametrize("command", ["maintain", "migrate"])
def test_maintain_and_migrate_refuse_an_object_store_prefix_that_holds_no_warehouse(
    command, s3, capsys
):
    from kesu.flows.cli import main

    wh = Warehouse.s3(s3.url())
    publish_partition(wh, "stg_complaints", D1, {"part-a.parquet": frame("a")})
    mistyped = f"{wh}-typo"  # the bucket answers; its prefix holds nothing
    assert main([command, "--warehouse", mistyped]) == 2  # maintain exited 0, saying nothing
    assert capsys.readouterr().err.strip() == (
        f"kesu {command}: warehouse {mistyped} does not exist; give --warehouse"
    )
    assert s3.snapshot(mistyped, skip=()) == {}  # nothing was created there


def test_migrate_of_an_object_store_of_delta_tables_says_nothing_to_convert(s3, capsys):
    from kesu.flows.cli import main

    wh = Warehouse.s3(s3.url())
    publish_partition(wh, "stg_complaints", D1, {"part-a.parquet": frame("a")})
    before = s3.snapshot(str(wh), skip=())
    assert main(["migrate", "--warehouse", str(wh)]) == 0  # it advised a full re-ingest (exit 2)
    assert capsys.readouterr().out.strip() == f"{wh}: nothing to convert"
    assert s3.snapshot(str(wh), skip=()) == before


@pytest.mark.parametrize("command", ["maintain", "migrate"])
def test_maintain_and_migrate_refuse_a_warehouse_that_does_not_exist(command, tmp_path, capsys):
    from kesu.flows.cli import main

    missing = tmp_path / "typo_wh"
    assert main([command, "--warehouse", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"kesu {command}: warehouse {missing} does not exist; give --warehouse"
    )
    assert not missing.exists()  # migrate no longer creates it (its _kesu/lock)
