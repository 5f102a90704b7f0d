"""`kesu report --reproduce` without Prefect: a recorded table version that `kesu maintain` has
removed is refused by name (never read as a table never written), and the settings the
manifest recorded are the ones applied. Real Delta tables on disk, real `maintain`."""

from __future__ import annotations

import os
import time
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from kesu.flows.config import load_settings
from kesu.flows.errors import one_line
from kesu.flows.reproduction import (
    NotReproducible,
    Reproduction,
    check,
    reading,
    recorded_settings,
    reference_files,
)
from kesu.warehouse import Warehouse
from kesu.warehouse.maintenance import maintain
from kesu.warehouse.publish import publish_partition
from kesu.warehouse.reader import check_readable, partition_dates, scan_table
from kesu.warehouse.tables import VersionUnavailable, open_table

TABLE = "stg_hotline"
LAST = date(2025, 3, 3)


@pytest.fixture
def wh(tmp_path) -> Warehouse:
    """stg_hotline at version 3: created (0), then drops 03-01, 03-02, 03-03."""
    found = Warehouse.at(tmp_path / "wh")
    for day, ids in ((1, ["a", "b"]), (2, ["c"]), (3, ["d", "e", "f"])):
        frame = pl.DataFrame({"call_id": ids, "n": list(range(len(ids)))})
        publish_partition(found, TABLE, f"drop_date=2025-03-0{day}", {"part-x.parquet": frame})
    return found


def correct(wh: Warehouse, day: int, ids: list[str]) -> None:
    frame = pl.DataFrame({"call_id": ids, "n": list(range(len(ids)))})
    publish_partition(wh, TABLE, f"drop_date=2025-03-0{day}", {"part-x.parquet": frame})


def days_pass(wh: Warehouse, days: int) -> None:
    """The table's log files are `days` older (what the log's expiry reads)."""
    then = time.time() - days * 86400
    for path in Path(str(wh)).glob(f"{TABLE}/_delta_log/*.json"):
        os.utime(path, (then, then))


def test_a_version_whose_log_entry_maintain_expired_is_refused_not_read_as_never_written(wh):
    correct(wh, 2, ["c-fixed"])  # version 4
    days_pass(wh, 40)
    maintain(wh, vacuum_days=7)  # checkpoints, then expires the log older than 30 days
    assert scan_table(wh, TABLE, None, LAST)[0].collect().height == 6  # the latest still reads
    # it read as a table never written: a report of no rows, exit status 0
    with pytest.raises(VersionUnavailable) as gone:
        scan_table(wh, TABLE, None, LAST, version=3)
    assert str(gone.value) == (
        "stg_hotline version 3 is no longer in the table's log: kesu maintain keeps 30 days of it"
    )
    with pytest.raises(VersionUnavailable):  # coverage reads the same versions
        partition_dates(wh, TABLE, 3)


def test_a_version_the_table_never_had_is_refused(wh, tmp_path):
    with pytest.raises(VersionUnavailable, match="stg_hotline has no version 9: its latest is 3"):
        open_table(wh, TABLE, 9)
    elsewhere = Warehouse.at(tmp_path / "other")  # another warehouse than the report's
    with pytest.raises(VersionUnavailable, match="has no version 3: there is no such table"):
        open_table(elsewhere, TABLE, 3)
    assert open_table(elsewhere, TABLE) is None  # without a version: never written, as before


def test_a_version_whose_files_maintain_vacuumed_is_refused_for_the_drops_read(wh):
    correct(wh, 2, ["c-fixed"])  # replaces 03-02's file of version 3
    maintain(wh, vacuum_days=0)
    with pytest.raises(VersionUnavailable) as gone:
        check_readable(wh, TABLE, 3, None, LAST)
    assert str(gone.value) == (
        "stg_hotline version 3 has been vacuumed: kesu maintain deleted 1 of the 3 files it "
        "reads (drop 2025-03-02), as it does with replaced files older than [warehouse] "
        "vacuum_days"
    )
    with pytest.raises(FileNotFoundError):  # what reading it ran into: a part file's name
        scan_table(wh, TABLE, None, LAST, version=3)[0].collect()
    check_readable(wh, TABLE, 3, LAST, LAST)  # the drops a report reads are what matters
    assert scan_table(wh, TABLE, LAST, LAST, version=3)[0].collect().height == 3


def test_a_version_vacuumed_after_the_check_is_refused_when_read(wh):
    windows, settings = {TABLE: (None, LAST)}, load_settings(warehouse=str(wh))
    check(settings, recorded(), windows)  # readable now
    correct(wh, 2, ["c-fixed"])
    maintain(wh, vacuum_days=0)  # then kesu maintain vacuums the file version 3 reads of 03-02
    with pytest.raises(NotReproducible) as refused, reading(settings, {TABLE: 3}, windows):
        scan_table(wh, TABLE, None, LAST, version=3)[0].collect()  # Polars: FileNotFoundError
    # what the command prints: the refusal, not "No such file or directory: …/part-….parquet"
    assert one_line(refused.value) == (
        "stg_hotline version 3 has been vacuumed: kesu maintain deleted 1 of the 3 files it "
        "reads (drop 2025-03-02), as it does with replaced files older than [warehouse] "
        "vacuum_days; the report cannot be reproduced",
        1,
    )
    last = {TABLE: (LAST, LAST)}  # drop 03-03 of version 3 is still there
    with (
        pytest.raises(ValueError, match="not a storage error"),
        reading(settings, {TABLE: 3}, last),
    ):
        raise ValueError("not a storage error")  # a version still readable: the error as it was


def recorded(**report) -> Reproduction:
    settings = load_settings(warehouse="wh")
    configuration = settings.values | {"reference_files": reference_files(settings)}
    configuration = configuration | {"report": configuration["report"] | report}
    return Reproduction("quarterly", "2025Q1", LAST, {TABLE: 3}, configuration, "0.1.0")


def test_the_manifest_s_report_settings_are_applied_and_today_s_named(tmp_path):
    toml = tmp_path / "kesu.toml"
    toml.write_text(
        '[report]\nrounding = "largest_remainder"\ndecimals = 1\n[sla]\nmax_days = 90\n'
    )
    today = load_settings(warehouse="wh", config=str(toml))
    applied, differs = recorded_settings(today, recorded())
    assert applied.values["report"]["rounding"] == "half_up"
    assert applied.values["report"]["decimals"] == 2
    assert applied.values["sla"]["max_days"] == 60
    assert differs == [
        "[report] rounding = 'half_up' (today 'largest_remainder')",
        "[report] decimals = 2 (today 1)",
        "[sla] max_days = 60 (today 90)",
    ]
    assert applied.values["warehouse"] == today.values["warehouse"]  # not a report setting
    assert recorded_settings(load_settings(warehouse="wh"), recorded())[1] == []


def test_a_recorded_setting_this_kesu_cannot_apply_is_refused_by_name():
    with pytest.raises(NotReproducible, match=r"\[report\] colours are unknown to kesu"):
        recorded_settings(load_settings(warehouse="wh"), recorded(colours="red"))
    with pytest.raises(NotReproducible, match=r"\[report\] decimals must be 0 to 4"):
        recorded_settings(load_settings(warehouse="wh"), recorded(decimals=7))


def test_a_reference_file_changed_since_is_refused_by_name(wh, tmp_path):
    then = recorded()
    settings = load_settings(warehouse=str(wh))
    check(settings, then, {TABLE: (None, LAST)})  # the same files: reproducible
    branches = tmp_path / "branches.csv"
    branches.write_bytes(settings.reference_path("branches").read_bytes() + b"9999,new,,\n")
    toml = tmp_path / "kesu.toml"
    toml.write_text(f'[reference]\nbranches = "{branches}"\n')
    with pytest.raises(NotReproducible, match=f"reference file.s. branches .{branches}. differ"):
        check(load_settings(warehouse=str(wh), config=str(toml)), then, {TABLE: (None, LAST)})
