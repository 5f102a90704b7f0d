"""kesu.warehouse.paths and warehouse.publish: layout safety, Delta commits per drop, idempotence,
conflicts between processes, crash recovery."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import date
from multiprocessing import get_context
from pathlib import Path

import duckdb
import polars as pl
import pytest
from deltalake import DeltaTable, write_deltalake
from kesu.warehouse import Warehouse, ledger, locks, paths, publish, tables
from kesu.warehouse.paths import partition_key, safe_part_name, table_dir
from kesu.warehouse.publish import publish_partition, recover

TABLE = "stg_complaints"
D1 = partition_key(date(2025, 1, 31))
D2 = partition_key(date(2025, 2, 1))


def frame(*ids: str) -> pl.DataFrame:
    return pl.DataFrame({"complaint_id": list(ids), "amount": [1.5] * len(ids)})


def read_polars(root: Path, table: str = TABLE) -> pl.DataFrame:
    return pl.read_delta(str(table_dir(root, table))).sort("complaint_id")


def read_duckdb(root: Path, table: str = TABLE) -> pl.DataFrame:
    """Outside kesu: deltalake -> pyarrow dataset -> DuckDB (what docs/architecture.md shows)."""
    dataset = DeltaTable(str(table_dir(root, table))).to_pyarrow_dataset()  # noqa: F841
    return duckdb.sql("select * from dataset order by complaint_id").pl()


def version(root: Path, table: str = TABLE) -> int:
    return DeltaTable(str(table_dir(root, table))).version()


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
        publish_partition(Warehouse.at(tmp_path / "wh"), TABLE, D1, {"part-a.parquet": frame("c1")})


def test_a_symlink_deeper_in_the_key_is_followed_and_checked(tmp_path: Path) -> None:
    """`under_root` looks for symlinks part by part below the root: one below the first part
    that leads out is caught, one that stays inside is followed, and a key under a part that
    does not exist yet (nothing there to follow) is simply its path."""
    root, outside = tmp_path / "wh", tmp_path / "outside"
    (root / "stg_calls").mkdir(parents=True)
    outside.mkdir()
    (root / "stg_calls" / "drop_date=2025-01-01").symlink_to(outside)
    with pytest.raises(ValueError, match="escapes"):
        paths.under_root(root, "stg_calls/drop_date=2025-01-01/part-a.parquet")
    (root / "stg_calls" / "inside").mkdir()
    (root / "stg_calls" / "drop_date=2025-01-02").symlink_to(root / "stg_calls" / "inside")
    key = "stg_calls/drop_date=2025-01-02/part-a.parquet"
    assert paths.under_root(root, key) == root / key
    real = os.path.realpath(root)
    assert paths.under_root(root, "stg_calls/new/deeper/f", real_root=real) == Path(
        real, "stg_calls/new/deeper/f"
    )


@pytest.mark.parametrize("name", ["../x.parquet", "a/b.parquet", "_x.parquet", "x.csv"])
def test_unsafe_file_names_are_rejected(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        publish_partition(Warehouse.at(tmp_path), TABLE, D1, {name: frame("c1")})


def test_partition_column_in_frame_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="drop_date"):
        publish_partition(
            Warehouse.at(tmp_path),
            TABLE,
            D1,
            {"part-a.parquet": frame("c1").with_columns(drop_date=pl.lit(date(2025, 1, 31)))},
        )


# --- publish ----------------------------------------------------------------------------------


def test_the_files_a_publish_reports_are_the_ones_the_log_lists(tmp_path: Path) -> None:
    """A publish names its partition's files without listing them from the log again: they are
    the log's own, at creation, at a replacement and beside other drops' partitions."""
    wh = Warehouse.at(tmp_path)
    done = [
        publish_partition(wh, TABLE, D1, {"part-a.parquet": frame("c1", "c2")}),
        publish_partition(wh, TABLE, D2, {"part-a.parquet": frame("c3")}),
        publish_partition(wh, TABLE, D1, {"part-a.parquet": frame("c4", "c5", "c6")}),
    ]
    assert [d.action for d in done] == ["created", "created", "replaced"]
    table = tables.open_table(wh, TABLE)
    assert table is not None
    listed = tables.partition_files(table)
    for d in done[1:]:  # the first one's file was replaced by the third
        day = date.fromisoformat(d.partition.split("=")[1])
        mine = listed.filter(pl.col("drop_date") == day).select("path", "rows", "bytes")
        assert [(f.name, f.rows, f.bytes) for f in d.files] == list(mine.iter_rows())
        assert (tmp_path / TABLE / d.files[0].name).stat().st_size == d.files[0].bytes
    assert [f.rows for f in done[2].files] == [3]


def _written_elsewhere(root: Path, *ids: str, day: date = date(2025, 2, 1)) -> None:
    """A commit of another process's writer: not through this process's kept tables."""
    rows = frame(*ids).with_columns(drop_date=pl.lit(day))
    write_deltalake(str(table_dir(root, TABLE)), rows.to_arrow(), mode="append")


def test_a_kept_table_sees_commits_made_elsewhere(tmp_path: Path) -> None:
    """A publish reuses the table an earlier publish of the process opened, brought up to date:
    a drop another writer committed in between is there, and not overwritten."""
    wh = Warehouse.at(tmp_path)
    publish_partition(wh, TABLE, D1, {"part-a.parquet": frame("c1")})
    _written_elsewhere(tmp_path, "d2")
    again = publish_partition(wh, TABLE, D1, {"part-a.parquet": frame("c1", "c9")})
    assert again.action == "replaced" and again.version == version(tmp_path) == 3
    assert read_polars(tmp_path)["complaint_id"].to_list() == ["c1", "c9", "d2"]


def test_a_table_removed_and_made_again_is_not_taken_for_the_kept_one(tmp_path: Path) -> None:
    """The table a process keeps is lent only while the log still holds the commit it read: a
    table removed and written again at the same place by another process, with more versions
    than before, is opened anew, not replayed onto the old table's state."""
    wh = Warehouse.at(tmp_path)
    publish_partition(wh, TABLE, D1, {"part-a.parquet": frame("old")})  # versions 0 and 1
    shutil.rmtree(table_dir(tmp_path, TABLE))
    for i, day in enumerate((date(2025, 2, 1), date(2025, 2, 2), date(2025, 2, 3))):
        _written_elsewhere(tmp_path, f"n{i}", day=day)  # versions 0, 1 and 2 of another table
    now = publish_partition(wh, TABLE, D1, {"part-a.parquet": frame("new")})
    assert now.action == "created" and now.version == version(tmp_path) == 3
    assert read_polars(tmp_path)["complaint_id"].to_list() == ["n0", "n1", "n2", "new"]


def test_a_process_keeps_a_bounded_number_of_tables(tmp_path: Path) -> None:
    """Kept tables are bounded: a process that writes to many warehouses (a test session, a
    long-lived server) keeps only the most recently published ones."""
    for i in range(tables._KeptTables.TABLES + 5):
        publish_partition(Warehouse.at(tmp_path / f"wh-{i}"), TABLE, D1, {"p.parquet": frame("a")})
    kept = tables._KEPT._idle
    assert len(kept) == tables._KeptTables.TABLES
    assert str(table_dir(tmp_path / f"wh-{tables._KeptTables.TABLES + 4}", TABLE)) in kept


def test_create_then_read_with_polars_and_duckdb(tmp_path: Path) -> None:
    first = publish_partition(
        Warehouse.at(tmp_path), TABLE, D1, {"part-a.parquet": frame("c1", "c2")}
    )
    assert first.action == "created" and first.version == 1  # version 0: the empty table
    assert [f.rows for f in first.files] == [2]
    assert first.files[0].name.startswith(f"{D1}/")
    for read in (read_polars, read_duckdb):
        got = read(tmp_path)
        assert got["complaint_id"].to_list() == ["c1", "c2"]
        assert got.schema["drop_date"] == pl.Date

    publish_partition(
        Warehouse.at(tmp_path),
        TABLE,
        D2,
        {"part-a.parquet": frame("c3"), "part-b.parquet": frame()},
    )
    for read in (read_polars, read_duckdb):
        got = read(tmp_path)
        assert got["complaint_id"].to_list() == ["c1", "c2", "c3"]
        assert got["drop_date"].to_list() == [date(2025, 1, 31)] * 2 + [date(2025, 2, 1)]
    assert (tmp_path / TABLE / "_delta_log").is_dir()


def test_commit_metadata_names_the_run_and_inputs(tmp_path: Path) -> None:
    inputs = {"工单.csv": "ab" * 32}
    publish_partition(
        Warehouse.at(tmp_path),
        TABLE,
        D1,
        {"part-a.parquet": frame("c1")},
        run_id="r-1",
        inputs=inputs,
    )
    last = DeltaTable(str(tmp_path / TABLE)).history(1)[0]
    assert last["kesu.run_id"] == "r-1"
    assert last["kesu.drop_date"] == "2025-01-31"
    assert last["kesu.inputs"] == '{"工单.csv": "' + "ab" * 32 + '"}'
    assert (last["operation"], last["operationParameters"]["mode"]) == ("WRITE", "Overwrite")
    created = DeltaTable(str(tmp_path / TABLE), version=0)
    assert created.history()[-1]["operation"] == "CREATE TABLE"
    assert pl.read_delta(str(tmp_path / TABLE), version=0).height == 0  # rows come after


def test_quarantine_table_lives_under_quarantine(tmp_path: Path) -> None:
    publish_partition(
        Warehouse.at(tmp_path), "quarantine/complaints", D1, {"part-a.parquet": frame("q1")}
    )
    assert (tmp_path / "quarantine/complaints/_delta_log").is_dir()
    assert read_duckdb(tmp_path, "quarantine/complaints")["complaint_id"].to_list() == ["q1"]


def test_rewrite_replaces_only_its_drop(tmp_path: Path) -> None:
    publish_partition(
        Warehouse.at(tmp_path),
        TABLE,
        D1,
        {"part-a.parquet": frame("a"), "part-b.parquet": frame("b")},
    )
    publish_partition(Warehouse.at(tmp_path), TABLE, D2, {"part-a.parquet": frame("d2")})
    again = publish_partition(
        Warehouse.at(tmp_path), TABLE, D1, {"part-b.parquet": frame("c2", "c9")}
    )
    assert again.action == "replaced" and again.version == 3
    # no "a" or "b" any more; the other drop untouched
    assert read_polars(tmp_path)["complaint_id"].to_list() == ["c2", "c9", "d2"]
    assert pl.read_delta(str(tmp_path / TABLE), version=2)["complaint_id"].sort().to_list() == [
        "a",
        "b",
        "d2",
    ]  # the version before, by time travel


def test_two_runs_creating_a_table_with_the_same_drop_write_its_rows_once(tmp_path: Path) -> None:
    """A creation holds no rows: each run's rows go in by a checked commit, and the loser finds
    the drop unchanged. With the rows in the creation, both runs' rows landed in 17 of 30 such
    races (delta-rs retried a lost creation as the next version)."""
    for trial in range(8):
        root = tmp_path / f"race-{trial}"
        start = threading.Barrier(2)

        def run(root: Path = root, start: threading.Barrier = start) -> str:
            wh = Warehouse.at(root)  # each run its own view, as two processes have
            start.wait()
            return publish_partition(wh, TABLE, D1, {"part-a.parquet": frame("c1", "c2")}).action

        with ThreadPoolExecutor(2) as pool:
            actions = sorted(pool.map(lambda _: run(), range(2)))
        assert actions == ["created", "unchanged"], trial
        assert read_polars(root)["complaint_id"].to_list() == ["c1", "c2"], trial


def test_identical_rewrite_commits_nothing(tmp_path: Path) -> None:
    files = {"part-a.parquet": frame("c1"), "part-b.parquet": frame("c2")}
    wh = Warehouse.at(tmp_path)
    publish_partition(wh, TABLE, D1, files)
    # the same rows, in another order and split: still the same drop
    again = publish_partition(wh, TABLE, D1, {"part-c.parquet": frame("c2", "c1")})
    assert again.action == "unchanged" and again.version == 1
    assert version(tmp_path) == 1  # the table's creation, then the drop


def test_a_checkpoint_every_ten_commits_keeps_every_version(tmp_path: Path) -> None:
    """Opening a table replays the commits since its last checkpoint: publishes checkpoint every
    10 commits (Delta's default is 100), and leave the old log files for time travel."""
    wh = Warehouse.at(tmp_path)
    for n in range(10):  # version 0 creates the table; 10 publishes, one of them a removal
        day = partition_key(date(2025, 3, 1 + n % 5))
        files = {"part-a.parquet": frame(f"c{n}")} if n != 7 else {}
        publish_partition(wh, TABLE, day, files)
    log = table_dir(tmp_path, TABLE) / "_delta_log"
    assert version(tmp_path) == 10
    assert DeltaTable(str(table_dir(tmp_path, TABLE))).metadata().configuration == {
        "delta.checkpointInterval": "10"
    }
    checkpoints = sorted(p.name for p in log.glob("*.checkpoint.parquet"))
    assert checkpoints == ["00000000000000000009.checkpoint.parquet"]  # after the tenth commit
    assert len(list(log.glob("*.json"))) == 11  # no log file cleaned up by a publish
    first = pl.read_delta(str(table_dir(tmp_path, TABLE)), version=1)
    assert first["complaint_id"].to_list() == ["c0"]
    live = sorted(read_polars(tmp_path)["complaint_id"])
    assert live == ["c5", "c6", "c8", "c9"]  # 2025-03-03 removed


def test_a_changed_value_is_not_unchanged(tmp_path: Path) -> None:
    wh = Warehouse.at(tmp_path)
    publish_partition(wh, TABLE, D1, {"part-a.parquet": frame("c1")})
    changed = frame("c1").with_columns(amount=pl.lit(2.5))
    assert publish_partition(wh, TABLE, D1, {"part-a.parquet": changed}).action == "replaced"


def test_zoned_timestamps_and_decimals_come_back_unchanged(tmp_path: Path) -> None:
    rows = pl.select(
        complaint_id=pl.lit("c1"),
        received_at=pl.datetime(2025, 1, 31, 9, 30, time_zone="Asia/Shanghai"),
        amount=pl.lit("12.30").str.to_decimal(scale=2).cast(pl.Decimal(18, 2)),
    )
    wh = Warehouse.at(tmp_path)
    publish_partition(wh, TABLE, D1, {"part-a.parquet": rows})
    assert publish_partition(wh, TABLE, D1, {"part-a.parquet": rows}).action == "unchanged"
    live = tables.read_partition(DeltaTable(str(tmp_path / TABLE)), date(2025, 1, 31), None)
    back = tables.conform(live, rows.schema)
    assert back.schema == rows.schema and back.equals(rows)


def test_quarantine_columns_may_differ_between_drops(tmp_path: Path) -> None:
    table = "quarantine/hotline"
    wh = Warehouse.at(tmp_path)
    publish_partition(wh, table, D1, {"part-a.parquet": frame("q1")})
    extra = frame("q2").with_columns(caller=pl.lit("***"))
    publish_partition(wh, table, D2, {"part-a.parquet": extra})
    assert publish_partition(wh, table, D1, {"part-a.parquet": frame("q1")}).action == ("unchanged")


def test_empty_mapping_removes_the_partition(tmp_path: Path) -> None:
    wh = Warehouse.at(tmp_path)
    publish_partition(wh, TABLE, D1, {"part-a.parquet": frame("c1")})
    publish_partition(wh, TABLE, D2, {"part-a.parquet": frame("c2")})
    removed = publish_partition(wh, TABLE, D1, {})
    assert removed.action == "removed" and removed.files == []
    assert read_duckdb(tmp_path)["complaint_id"].to_list() == ["c2"]
    assert publish_partition(wh, TABLE, D1, {}).action == "absent"
    assert publish_partition(wh, "stg_hotline", D1, {}).action == "absent"  # no table


def _publish_in_child(root: str, partition: str, ids: list[str]) -> str:
    return publish_partition(
        Warehouse.at(Path(root)), TABLE, partition, {"part-a.parquet": frame(*ids)}
    ).action


def test_processes_publishing_at_once_all_land(tmp_path: Path) -> None:
    """Two processes on other drops both commit; two on the same drop with the same rows: one
    commits, the other retries and finds it unchanged (or both saw it absent, the second
    replacing it with the same rows). Either way every drop holds its rows once."""
    publish_partition(Warehouse.at(tmp_path), TABLE, D1, {"part-a.parquet": frame("seed")})
    jobs = [(D1, ["x1", "x2"]), (D1, ["x1", "x2"]), (D2, ["y1"]), (D2, ["y1"])]
    # spawn, not fork: delta-rs' runtime does not survive a fork (it panics in the child)
    with ProcessPoolExecutor(max_workers=4, mp_context=get_context("spawn")) as pool:
        runs = [pool.submit(_publish_in_child, str(tmp_path), *job) for job in jobs]
        actions = [run.result() for run in runs]
    assert actions.count("unchanged") >= 1
    assert read_polars(tmp_path)["complaint_id"].to_list() == ["x1", "x2", "y1"]


def _publish_at(root: str, partition: str, ids: list[str], at: float) -> str:
    time.sleep(max(0.0, at - time.time()))  # both processes start their publish together
    return _publish_in_child(root, partition, ids)


def _worker_ready(seconds: float) -> int:
    time.sleep(seconds)  # busy long enough that the other job needs the other worker
    return os.getpid()


def test_processes_creating_a_table_at_once_create_it_once(tmp_path: Path) -> None:
    """Both find the table absent and both commit its creation as version 0. delta-rs retried
    the loser's as version 1, a second creation in the log (39 of 40 such races): the loser
    must open the winner's table instead, so the log is one creation and the two drops."""
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
        # both workers started, kesu imported in each: the race is the publish alone
        assert len(set(pool.map(_worker_ready, [0.5, 0.5]))) == 2
        for trial in range(6):
            root = tmp_path / f"race-{trial}"
            at = time.time() + 0.5
            jobs = [pool.submit(_publish_at, str(root), d, [d], at) for d in (D1, D2)]
            assert sorted(job.result() for job in jobs) == ["created", "created"], trial
            log = table_dir(root, TABLE) / "_delta_log"
            assert len(list(log.glob("*.json"))) == 3, trial  # one creation, then each drop
            assert read_polars(root)["complaint_id"].to_list() == [D1, D2], trial


def test_partition_intact_sees_a_missing_file(tmp_path: Path) -> None:
    wh = Warehouse.at(tmp_path)
    done = publish_partition(wh, TABLE, D1, {"part-a.parquet": frame("c1")})
    assert publish.partition_intact(wh, TABLE, D1)
    (tmp_path / TABLE / done.files[0].name).unlink()
    assert not publish.partition_intact(wh, TABLE, D1)
    assert publish.partition_intact(wh, TABLE, D2)  # nothing there, nothing missing


def test_partition_intact_sees_rows_deleted_by_hand(tmp_path: Path) -> None:
    """A delete committed outside kesu leaves every file the log lists in place: a backfill
    took the drop for intact and skipped it, though its rows were gone."""
    wh = Warehouse.at(tmp_path)
    done = publish_partition(wh, TABLE, D1, {"part-a.parquet": frame("c1", "c2")})
    assert done.rows == 2 and publish.partition_intact(wh, TABLE, D1, rows=2)
    DeltaTable(str(table_dir(tmp_path, TABLE))).delete(f"drop_date = '{D1.split('=')[1]}'")
    assert publish.partition_intact(wh, TABLE, D1)  # by its files alone, as before
    assert not publish.partition_intact(wh, TABLE, D1, rows=2)
    assert publish.partition_intact(wh, TABLE, D1, rows=0)
    assert not publish.partition_intact(wh, "stg_hotline", D1, rows=2)  # no table at all


def test_recover_removes_unfinished_temp_files(tmp_path: Path) -> None:
    (tmp_path / "_kesu/tmp").mkdir(parents=True)
    (tmp_path / "_kesu/tmp/abc").write_bytes(b"half")
    (tmp_path / "_kesu/staging/old-work/swap").mkdir(parents=True)  # the layout before Delta
    assert len(recover(Warehouse.at(tmp_path))) == 2
    assert os.listdir(tmp_path / "_kesu/tmp") == [] == os.listdir(tmp_path / "_kesu/staging")


def test_real_sigkill_during_a_commit_leaves_the_old_or_the_new(tmp_path: Path) -> None:
    """Kill a process in a loop of publishes at a random moment: the table reads whole."""
    wh = Warehouse.at(tmp_path)
    publish_partition(wh, TABLE, D1, {"part-a.parquet": frame("old")})
    script = textwrap.dedent(
        f"""
        import polars as pl
        from pathlib import Path
        from kesu.warehouse.publish import publish_partition
        for i in range(1000):
            ids = [f"n{{i}}-{{k}}" for k in range(3)]
            rows = pl.DataFrame({{"complaint_id": ids, "amount": [1.5] * 3}})
            publish_partition(Warehouse.at(Path({str(tmp_path)!r})), {TABLE!r}, {D1!r}, {{"part-a.parquet": rows}})
        """
    )
    for delay in (0.8, 1.1, 1.4):
        child = subprocess.Popen([sys.executable, "-c", script])
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        got = read_polars(tmp_path)["complaint_id"].to_list()
        assert got == ["old"] or (len(got) == 3 and len({g.split("-")[0] for g in got}) == 1)
    publish_partition(wh, TABLE, D1, {"part-a.parquet": frame("old")})
    assert read_polars(tmp_path)["complaint_id"].to_list() == ["old"]  # a rerun converges


def test_lock_is_exclusive(tmp_path: Path) -> None:
    lock = locks.warehouse_lock
    wh = Warehouse.local(tmp_path)
    with lock(wh), pytest.raises(locks.WarehouseBusy, match="another kesu run holds"), lock(wh):
        pass
    live = locks.live_run(Warehouse.at(tmp_path))
    with live, pytest.raises(locks.WarehouseBusy), lock(wh):  # a live run holds it off too
        pass
    with lock(Warehouse.at(tmp_path)):  # released on exit
        pass


def test_published_partition_round_trips_through_json(tmp_path: Path) -> None:
    done = publish_partition(Warehouse.at(tmp_path), TABLE, D1, {"part-a.parquet": frame("c1")})
    assert publish.PublishedPartition.from_jsonable(ledger.to_jsonable(done)) == done
