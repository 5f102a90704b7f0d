"""`kesu quarantine` on a real ingest: the counts are the run's, the export holds every rejected
row for the data stewards, and re-ingesting a corrected file takes its rows out of quarantine."""

from __future__ import annotations

import argparse
import shutil
from datetime import date
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from kesu.flows import quarantine_cli
from kesu.flows.ingest import nightly
from kesu.samplegen.generate import generate
from kesu.warehouse import Warehouse, paths
from kesu.warehouse.landing import read_source
from kesu.warehouse.quarantine import read_quarantine

DAY = date(2025, 3, 4)
DAY_PARTITION = paths.partition_key(DAY)
FORMULA = '=HYPERLINK("http://evil.example","点击")'


def rewrite(path: Path, frame: pl.DataFrame) -> None:
    path.unlink()
    frame.write_csv(path.with_suffix(".csv"))


def source_frame(landing: Path, feed: str) -> tuple[Path, pl.DataFrame]:
    (path,) = sorted((landing / feed / DAY.isoformat()).iterdir())
    return path, read_source(path).frame.drop("_line", "_ragged")


def break_hotline(frame: pl.DataFrame) -> pl.DataFrame:
    """Four calls with an unparseable 来电时间 (one also with a formula-like 业务小类), one with
    a 客户情绪 outside its values: five rows for quarantine, on lines 2 to 6."""
    start = frame["来电时间"].to_list()
    start[:3] = ["N/A"] * 3
    start[4] = "2025-02-30 10:00:00"
    mood = frame["客户情绪"].to_list()
    mood[3] = "生气"
    topic = frame["业务小类"].to_list()
    topic[4] = FORMULA
    return frame.with_columns(
        pl.Series("来电时间", start), pl.Series("客户情绪", mood), pl.Series("业务小类", topic)
    )


@pytest.fixture(scope="module")
def drop(tmp_path_factory) -> tuple[Path, Path, dict, pl.DataFrame]:
    """(landing, warehouse, run, the clean hotline frame) after ingesting the broken drop."""
    mp = pytest.MonkeyPatch()
    mp.setenv("KESU_PII_KEY", "quarantine-flow-key-0123456789")
    landing = tmp_path_factory.mktemp("landing")
    generate(DAY, DAY, landing, profile="small", seed=5, defects=False)
    path, clean = source_frame(landing, "hotline")
    rewrite(path, break_hotline(clean))
    path, complaints = source_frame(landing, "complaints")
    branches = complaints["机构代码"].to_list()
    branches[0] = "不存在的支行"  # not in the branch reference
    rewrite(path, complaints.with_columns(pl.Series("机构代码", branches)))
    warehouse = tmp_path_factory.mktemp("warehouse")
    run = nightly(drop_date=DAY, landing_dir=str(landing), warehouse_dir=str(warehouse))
    yield landing, warehouse, run, clean
    mp.undo()


def cli(warehouse: Path, *extra: str) -> int:
    parser = argparse.ArgumentParser(prog="kesu")
    quarantine_cli.add_parser(parser.add_subparsers(dest="command"))
    argv = ["quarantine", "--date", DAY.isoformat(), "--warehouse", str(warehouse), *extra]
    return quarantine_cli.run(parser.parse_args(argv))


def test_printed_counts_are_the_runs_by_rule_and_field_with_file_and_line(drop, capsys):
    _, warehouse, run, _ = drop
    assert run.feeds["hotline"].quarantined == 5
    assert run.feeds["complaints"].quarantined == 1
    assert cli(warehouse) == 0
    out = capsys.readouterr().out.splitlines()
    hotline_file = run.feeds["hotline"].files[0].name
    assert out[0].endswith(": 6 row(s)")
    assert out[1].startswith("hotline: 5 row(s) quarantined in 1 file(s) (run ")
    assert [line.split() for line in out[3:5]] == [
        ["4", "unparseable", "来电时间"],
        ["1", "in_set", "客户情绪"],
    ]
    assert out[6].startswith(f"    {hotline_file} line 2: 来电时间 (call_start_at): ")
    assert any(line.startswith("complaints: 1 row(s) quarantined") for line in out)
    assert any(line.split()[:3] == ["1", "unknown_branch", "机构代码"] for line in out)
    assert "regulator_transfers: no rows quarantined" in "\n".join(out)


def test_export_holds_every_quarantined_row_as_inert_text(drop, tmp_path, capsys):
    _, warehouse, run, _ = drop
    export = tmp_path / "隔离数据.xlsx"
    assert cli(warehouse, "--export", str(export), "--feeds", "hotline,complaints") == 0
    assert f"wrote 6 row(s) to {export}" in capsys.readouterr().out
    book = openpyxl.load_workbook(export)
    assert book.sheetnames == ["汇总", "客服热线", "投诉工单"]
    rows = [[c.value for c in r] for r in book["客服热线"].iter_rows()]
    header, body = rows[0], rows[1:]
    assert header[:5] == ["文件", "行号", "字段", "规则", "原因"] and "主叫号码（脱敏）" in header
    assert [r[1] for r in body] == [2, 3, 4, 5, 6]
    assert {r[0] for r in body} == {run.feeds["hotline"].files[0].name}
    assert FORMULA in body[4]
    phones = [r[header.index("主叫号码（脱敏）")] for r in body]
    assert all("****" in p for p in phones)  # masked as the warehouse holds them
    assert all(c.data_type != "f" for s in book.worksheets for r in s.iter_rows() for c in r)
    summary = [[c.value for c in r] for r in book["汇总"].iter_rows()][1:]
    assert sum(r[4] for r in summary) == 6


def test_reingesting_the_corrected_file_takes_its_rows_out_of_quarantine(drop, tmp_path, capsys):
    landing, warehouse, run, clean = drop
    landing, warehouse = shutil.copytree(landing, tmp_path / "l"), tmp_path / "w"
    shutil.copytree(drop[1], warehouse)
    path, _ = source_frame(landing, "hotline")
    rewrite(path, clean)  # the source system re-exported the day, corrected
    again = nightly(drop_date=DAY, landing_dir=str(landing), warehouse_dir=str(warehouse))
    hotline = again.feeds["hotline"]
    assert (hotline.quarantined, hotline.loaded) == (0, clean.height)
    assert read_quarantine(Warehouse.at(warehouse), "hotline", DAY).height == 0
    # the drop's rows are gone from the live table (their files wait for `kesu maintain`)
    live = pl.read_delta(str(warehouse / "quarantine" / "hotline"))
    assert live.filter(pl.col("drop_date") == DAY).height == 0
    assert again.feeds["complaints"].status == "unchanged"  # its file was not touched
    assert read_quarantine(Warehouse.at(warehouse), "complaints", DAY).height == 1
    assert cli(warehouse) == 0
    out = capsys.readouterr().out
    assert "hotline: no rows quarantined (run " in out
    assert f"rows in {clean.height} = loaded {clean.height} + quarantined 0" in out
