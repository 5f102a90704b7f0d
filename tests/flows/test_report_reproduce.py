"""`kesu report … --reproduce manifest.json`: a report rebuilt from the Delta versions its
manifest recorded is byte-identical to it, even after a correction landed (time travel), and
under the configuration it recorded; once `kesu maintain` has removed those versions, the
command says so in one line and writes nothing."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from kesu.flows import reproduction
from kesu.flows.cli import main
from kesu.flows.ingest import nightly
from kesu.flows.report import report
from kesu.flows.reproduction import NotReproducible
from kesu.reports import output
from kesu.samplegen.generate import generate
from kesu.transforms.columns import COLUMNS
from kesu.warehouse import Warehouse, reader
from kesu.warehouse.landing import read_source
from kesu.warehouse.maintenance import maintain

pytestmark = pytest.mark.flow

START, END = date(2025, 3, 28), date(2025, 3, 31)


def tables(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "tables").glob("*.parquet"))}


def test_reproduce_rebuilds_the_report_of_the_versions_it_read(tmp_path, demo_key) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "wh"
    generate(START, END, landing, profile="small", seed=9, defects=False)
    for n in range((END - START).days + 1):
        nightly(
            drop_date=START + timedelta(n), landing_dir=str(landing), warehouse_dir=str(warehouse)
        )
    first = Path(report(kind="quarterly", period="2025Q1", out=str(tmp_path / "r1"),
                        warehouse_dir=str(warehouse))["folder"])  # fmt: skip
    recorded = json.loads((first / "manifest.json").read_text(encoding="utf-8"))
    assert set(recorded["table_versions"]) == {
        "stg_complaints", "stg_hotline", "stg_regulator_transfers", "quarantine/complaints",
    }  # fmt: skip

    # a correction lands: the last drop's hotline export loses half its calls
    (export,) = (landing / "hotline" / END.isoformat()).iterdir()
    calls = read_source(export).frame.drop("_line", "_ragged")
    calls.head(calls.height // 2).write_csv(export)
    # and a complaint of the last drop is now held (unknown branch): held_updates reads that table
    (tickets,) = (landing / "complaints" / END.isoformat()).iterdir()
    frame = read_source(tickets).frame.drop("_line", "_ragged")
    branch = next(c.header for c in COLUMNS["complaints"] if c.name == "branch_code")
    frame.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("9999"))
                       .otherwise(pl.col(branch)).alias(branch)).write_csv(tickets)  # fmt: skip
    nightly(drop_date=END, landing_dir=str(landing), warehouse_dir=str(warehouse))
    now = Path(report(kind="quarterly", period="2025Q1", out=str(tmp_path / "r2"),
                      warehouse_dir=str(warehouse))["folder"])  # fmt: skip
    assert tables(now) != tables(first)  # the correction shows in a report built today

    code = main([
        "report", "quarterly", "2025Q1", "--warehouse", str(warehouse),
        "--out", str(tmp_path / "r3"), "--reproduce", str(first / "manifest.json"),
    ])  # fmt: skip
    assert code == 0
    again = tmp_path / "r3" / "quarterly" / "2025Q1"
    assert tables(again) == tables(first)  # byte for byte
    rebuilt = json.loads((again / "manifest.json").read_text(encoding="utf-8"))
    assert rebuilt["table_versions"] == recorded["table_versions"]
    assert rebuilt["partitions"] == recorded["partitions"]  # quarantine's too, as it was then
    assert rebuilt["coverage"] == recorded["coverage"]
    overview = pl.read_parquet(again / "tables" / "overview.parquet")
    assert overview.height > 0


def test_reproduce_refuses_another_reports_manifest(tmp_path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"kind": "annual", "period": "2025", "as_of": "2025-03-31",
                                    "table_versions": {}, "configuration": {}}))  # fmt: skip
    code = main(["report", "quarterly", "2025Q1", "--warehouse", str(tmp_path / "wh"),
                 "--reproduce", str(manifest)])  # fmt: skip
    assert code == 2


@pytest.fixture(scope="module")
def first_report(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A landing zone and warehouse of START..END, and the manifest of a report read from them."""
    root = tmp_path_factory.mktemp("first")
    landing, warehouse = root / "landing", root / "wh"
    generate(START, END, landing, profile="small", seed=9, defects=False)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KESU_PII_KEY", "flow-test-key-0123456789abcdef")
        for n in range((END - START).days + 1):
            nightly(drop_date=START + timedelta(n), landing_dir=str(landing),
                    warehouse_dir=str(warehouse))  # fmt: skip
    first = report(kind="quarterly", period="2025Q1", out=str(root / "r1"),
                   warehouse_dir=str(warehouse))["folder"]  # fmt: skip
    return landing, warehouse, Path(first) / "manifest.json"


def copied(first_report: tuple[Path, Path, Path], to: Path) -> tuple[Path, Path]:
    """A landing zone and warehouse of this test's own, as `first_report` left them."""
    landing, warehouse, _ = first_report
    return shutil.copytree(landing, to / "landing"), shutil.copytree(warehouse, to / "wh")


def correct_calls(landing: Path, warehouse: Path) -> None:
    """The last drop's hotline export loses half its calls, and is ingested again: stg_hotline
    moves on, the other tables stay at the versions the report read."""
    (export,) = (landing / "hotline" / END.isoformat()).iterdir()
    calls = read_source(export).frame.drop("_line", "_ragged")
    calls.head(calls.height // 2).write_csv(export)
    nightly(drop_date=END, landing_dir=str(landing), warehouse_dir=str(warehouse))


def reproduce(warehouse: Path, out: Path, manifest: Path, *extra: str) -> int:
    return main(["report", "quarterly", "2025Q1", "--warehouse", str(warehouse), "--out",
                 str(out), "--reproduce", str(manifest), *extra])  # fmt: skip


def test_reproduce_applies_the_configuration_the_manifest_recorded(first_report, tmp_path):
    _, warehouse, manifest = first_report
    toml = tmp_path / "kesu.toml"  # today's: other rounding, other decimals
    toml.write_text('[report]\nrounding = "largest_remainder"\ndecimals = 1\n')
    assert reproduce(warehouse, tmp_path / "r", manifest, "--config", str(toml)) == 0
    again = tmp_path / "r" / "quarterly" / "2025Q1"
    assert tables(again) == tables(manifest.parent)  # byte for byte, as recorded
    recorded = json.loads(manifest.read_text(encoding="utf-8"))["configuration"]
    rebuilt = json.loads((again / "manifest.json").read_text(encoding="utf-8"))["configuration"]
    assert rebuilt["report"] == recorded["report"]


def test_reproduce_checks_each_recorded_version_once(first_report, tmp_path, monkeypatch):
    _, warehouse, manifest = first_report
    checked, real = [], reader.check_readable

    def counted(wh, table, version, lo, hi):  # the real check, counted
        checked.append((table, version))
        real(wh, table, version, lo, hi)

    monkeypatch.setattr(reader, "check_readable", counted)
    assert reproduce(warehouse, tmp_path / "r", manifest) == 0
    # the command checked them before Prefect started and the flow again: on S3 each file's
    # HEAD request twice
    versions = json.loads(manifest.read_text(encoding="utf-8"))["table_versions"]
    assert sorted(checked) == sorted((t, v) for t, v in versions.items() if v is not None)


def test_reproduce_of_versions_whose_log_maintain_expired_fails_in_one_line(
    first_report, tmp_path, demo_key, capsys
) -> None:
    landing, warehouse = copied(first_report, tmp_path)
    correct_calls(landing, warehouse)
    forty_days_ago = time.time() - 40 * 86400  # the log's entries are older than its retention
    for entry in warehouse.glob("**/_delta_log/*.json"):
        os.utime(entry, (forty_days_ago, forty_days_ago))
    maintain(Warehouse.at(warehouse), vacuum_days=7)  # no data file is vacuumed
    capsys.readouterr()
    # the expired stg_hotline read as a table never written: exit 0, a report without its calls
    assert reproduce(warehouse, tmp_path / "r", first_report[2]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    version = json.loads(first_report[2].read_text())["table_versions"]["stg_hotline"]
    assert line == (
        f"kesu report: stg_hotline version {version} is no longer in the table's log: kesu "
        "maintain keeps 30 days of it; the report cannot be reproduced"
    )
    assert not (tmp_path / "r").exists()  # nothing written
    with pytest.raises(NotReproducible):  # the flow (a deployment's run) refuses it too
        report(kind="quarterly", period="2025Q1", out=str(tmp_path / "r"),
               warehouse_dir=str(warehouse), reproduce=str(first_report[2]))  # fmt: skip
    assert not (tmp_path / "r").exists()


def test_reproduce_of_a_vacuumed_version_fails_in_one_line_and_leaves_no_lock(
    first_report, tmp_path, demo_key, capsys, monkeypatch
) -> None:
    landing, warehouse = copied(first_report, tmp_path)
    correct_calls(landing, warehouse)
    maintain(Warehouse.at(warehouse), vacuum_days=0)  # the replaced calls' file is deleted
    entered, real = [], output.replace_folder
    monkeypatch.setattr(output, "replace_folder", lambda *a: entered.append(a) or real(*a))
    capsys.readouterr()
    # it failed on Polars' FileNotFoundError naming a part file, leaving .2025Q1.lock in --out
    assert reproduce(warehouse, tmp_path / "r", first_report[2]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("kesu report: stg_hotline version ")
    assert line.endswith(" has been vacuumed: kesu maintain deleted 1 of the 4 files it reads "
                         f"(drop {END}), as it does with replaced files older than [warehouse] "
                         "vacuum_days; the report cannot be reproduced")  # fmt: skip
    assert not (tmp_path / "r").exists()
    assert entered == []  # refused before the output folder was made


def test_reproduce_of_a_version_vacuumed_after_the_check_fails_in_one_line(
    first_report, tmp_path, demo_key, capsys, monkeypatch
) -> None:
    landing, warehouse = copied(first_report, tmp_path)
    correct_calls(landing, warehouse)  # the calls' file the recorded version reads is replaced
    real = reproduction.check

    def then_maintain(*args):  # kesu maintain runs between the check and the read
        real(*args)  # every file is there yet
        maintain(Warehouse.at(warehouse), vacuum_days=0)

    monkeypatch.setattr(reproduction, "check", then_maintain)
    capsys.readouterr()
    # it failed on Polars' FileNotFoundError naming a part file (a traceback in Prefect's log)
    assert reproduce(warehouse, tmp_path / "r", first_report[2]) == 1
    *warnings, line = capsys.readouterr().err.splitlines()
    assert [w.split(":")[0] for w in warnings] == ["warning"]  # the quarter is not complete
    assert line.startswith("kesu report: stg_hotline version ")
    assert line.endswith(" has been vacuumed: kesu maintain deleted 1 of the 4 files it reads "
                         f"(drop {END}), as it does with replaced files older than [warehouse] "
                         "vacuum_days; the report cannot be reproduced")  # fmt: skip
    assert not (tmp_path / "r").exists()  # nothing written


def test_reproduce_of_a_version_whose_log_expired_after_the_check_fails_in_one_line(
    first_report, tmp_path, demo_key, capsys, monkeypatch
) -> None:
    landing, warehouse = copied(first_report, tmp_path)
    correct_calls(landing, warehouse)
    real = reproduction.check

    def then_maintain(*args):  # kesu maintain expires the log between the check and the read
        real(*args)
        forty_days_ago = time.time() - 40 * 86400
        for entry in warehouse.glob("**/_delta_log/*.json"):
            os.utime(entry, (forty_days_ago, forty_days_ago))
        maintain(Warehouse.at(warehouse), vacuum_days=7)

    monkeypatch.setattr(reproduction, "check", then_maintain)
    capsys.readouterr()
    # the coverage read the versions first: "failed: VersionUnavailable: … (run with --debug …)"
    assert reproduce(warehouse, tmp_path / "r", first_report[2]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    version = json.loads(first_report[2].read_text())["table_versions"]["stg_hotline"]
    assert line == (
        f"kesu report: stg_hotline version {version} is no longer in the table's log: kesu "
        "maintain keeps 30 days of it; the report cannot be reproduced"
    )
    assert not (tmp_path / "r").exists()
