"""No name from a feed writes outside its partition, and no symbolic link in the landing zone is
followed out of it: odd file names land as `safe_part_name` part files inside the drop's
partition; a linked file, drop folder or feed folder is skipped, recorded in the ledger, never
read."""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from kesu.flows.ingest import nightly
from kesu.samplegen.generate import generate
from kesu.transforms.personal_data import printable_name
from kesu.transforms.run_records import SkippedFile
from kesu.warehouse import Warehouse, ledger, paths
from kesu.warehouse.landing import read_source

DAY, LINKED_DAY = date(2025, 3, 5), date(2025, 3, 6)
ODD_NAMES = [
    "%2e%2e%2f%2e%2e%2fetc.csv",
    "x..%2F..%2F..%2Ftmp%2Fkesu-escaped.csv",
    "evil..\\..\\..\\x.csv",
    "来电 记录（3月）.csv",
    "-rf --no-preserve-root.CSV",
    "a\nb\tc.csv",
    "ｆｕｌｌ／ｗｉｄｔｈ.csv",
    "x" * 200 + ".csv",
    "part-..-00000000.parquet.csv",
]
# as the tables, the ledger and messages show them: on one line, a line break written `\n`
SHOWN_NAMES = [printable_name(n) for n in ODD_NAMES]
# a leading dot makes a name hidden: skipped (and recorded), like an editor's temporary file
HIDDEN_NAMES = ["..%2f..%2fetc.csv", "..\\..\\evil.csv"]
LINK = "symbolic link (not followed)"
OUTSIDE_CALL = "OUTSIDE-0001"


def hotline_frame(landing: Path, day: date) -> pl.DataFrame:
    (path,) = sorted((landing / "hotline" / day.isoformat()).iterdir())
    frame = read_source(path).frame.drop("_line", "_ragged")
    path.unlink()
    return frame


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, Path, dict, dict]:
    """(base, warehouse, run of DAY with odd names, run of LINKED_DAY with symbolic links)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("KESU_PII_KEY", "landing-paths-key-0123456789")
    base = tmp_path_factory.mktemp("site")
    landing, outside, warehouse = base / "landing", base / "outside", base / "warehouse"
    generate(DAY, LINKED_DAY, landing, profile="small", seed=5, defects=False)
    calls = hotline_frame(landing, DAY)
    folder = landing / "hotline" / DAY.isoformat()
    names = ODD_NAMES + HIDDEN_NAMES
    for i, name in enumerate(names):  # the day's calls, spread over oddly named files
        calls.gather_every(len(names), offset=i).write_csv(folder / name)
    # LINKED_DAY: a linked file beside a real one, a linked drop folder, a linked feed folder;
    # each target is a valid file outside the landing zone that must never be read
    linked_calls = hotline_frame(landing, LINKED_DAY)
    linked_calls.write_csv(landing / "hotline" / LINKED_DAY.isoformat() / "real.csv")
    outside.mkdir()
    secret = linked_calls.head(1).with_columns(pl.lit(OUTSIDE_CALL).alias("通话编号"))
    secret.write_csv(outside / "calls.csv")
    os.symlink(outside / "calls.csv", landing / "hotline" / LINKED_DAY.isoformat() / "linked.csv")
    complaints_day = landing / "complaints" / LINKED_DAY.isoformat()
    complaints_day.rename(outside / "complaints_day")
    os.symlink(outside / "complaints_day", complaints_day, target_is_directory=True)
    (landing / "regulator_transfers").rename(outside / "regulator_transfers")
    os.symlink(outside / "regulator_transfers", landing / "regulator_transfers")
    run = nightly(
        drop_date=DAY, feeds=["hotline"], landing_dir=str(landing), warehouse_dir=str(warehouse)
    )
    linked = nightly(drop_date=LINKED_DAY, landing_dir=str(landing), warehouse_dir=str(warehouse))
    yield base, warehouse, run, linked
    mp.undo()


def test_odd_file_names_land_inside_their_partition(site):
    base, warehouse, run, _ = site
    record = run.feeds["hotline"]
    assert sorted(f.name for f in record.files) == sorted(SHOWN_NAMES)
    hidden = [s for s in record.skipped if s.why == "hidden or temporary file"]
    assert sorted(s.name for s in hidden) == sorted(HIDDEN_NAMES)
    assert all(f.status == "ok" and f.rows_in > 0 for f in record.files)
    partition = warehouse / "stg_hotline" / paths.partition_key(DAY)
    parts = sorted(p.name for p in partition.iterdir())
    for name in parts:  # Delta names the data files: plain ASCII whatever the source names
        assert re.fullmatch(r"part-[0-9a-z-]+(\.[a-z]+)?\.parquet", name), name
    staged = pl.read_delta(str(warehouse / "stg_hotline")).filter(pl.col("drop_date") == DAY)
    assert set(staged["source_file"]) == set(SHOWN_NAMES)  # stewards still see the real name
    assert record.loaded + record.quarantined == record.rows_in
    # originals are kept under their own names, one folder per content hash, in the raw zone
    raw = warehouse / "_raw" / "hotline" / DAY.isoformat()
    assert sorted(p.name for p in raw.glob("*/*")) == sorted(ODD_NAMES)
    # nothing anywhere else: every path stays under the warehouse, in a known top folder
    root = warehouse.resolve()
    for path in warehouse.rglob("*"):
        assert path.resolve().is_relative_to(root), path
    tops = {p.name for p in warehouse.iterdir()}
    assert tops <= {"stg_hotline", "quarantine", "_raw", "_ledger", "_kesu", "stg_complaints"}
    assert sorted(p.name for p in base.iterdir()) == ["landing", "outside", "warehouse"]
    assert not Path("/tmp/kesu-escaped.csv").exists()


def test_symbolic_links_are_skipped_recorded_and_never_read(site):
    base, warehouse, _, run = site
    feeds = run.feeds
    hotline = feeds["hotline"]
    assert [f.name for f in hotline.files] == ["real.csv"]
    assert SkippedFile("linked.csv", LINK) in hotline.skipped
    assert feeds["complaints"].status == "no_folder"
    assert feeds["complaints"].skipped == [SkippedFile(LINKED_DAY.isoformat(), LINK)]
    assert feeds["regulator_transfers"].status == "no_folder"
    assert feeds["regulator_transfers"].skipped == [SkippedFile("regulator_transfers", LINK)]
    assert run.status == "completed"
    (recorded,) = [r for r in ledger.list_runs(Warehouse.at(warehouse)) if r.run_id == run.run_id]
    assert recorded.feeds["complaints"].skipped == feeds["complaints"].skipped
    assert SkippedFile("linked.csv", LINK) in recorded.feeds["hotline"].skipped
    # nothing behind a link reached the warehouse or the raw zone
    calls = pl.read_delta(str(warehouse / "stg_hotline"))
    assert OUTSIDE_CALL not in set(calls["call_id"])
    day = LINKED_DAY.isoformat()
    assert [p.name for p in (warehouse / "_raw" / "hotline" / day).glob("*/*")] == ["real.csv"]
    assert not (warehouse / "_raw" / "complaints" / day).exists()
    assert not (warehouse / "_raw" / "regulator_transfers").exists()
    assert not (warehouse / "stg_complaints" / paths.partition_key(LINKED_DAY)).exists()
