"""End to end: sample drops -> `nightly` -> the `report` flow, quarterly and annual, checked in
files, in the workbook and in a real headless browser (Debian's chromium)."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from deltalake import DeltaTable
from kesu.flows import cli, report_cli
from kesu.flows.ingest import nightly
from kesu.flows.report import report
from kesu.samplegen.generate import generate

# Drops from the end of Q1 into Q2 of 2025: the quarter 2025Q1 and the year 2025 both have data,
# and the year spans two quarters.
START, END = date(2025, 3, 25), date(2025, 4, 3)
EARLIER = date(2025, 3, 29)
REPO = Path(__file__).resolve().parents[2]
SYSTEM_DEPS = REPO / "scripts" / "system-deps.sh"
CHROMIUM = "/usr/bin/chromium"

# reports.md: table -> its columns, in order
CONTRACT = {
    "overview": ["metric", "label", "value", "previous", "change_pct", "change_pp"],
    "by_business_category": ["code", "name", "complaints", "share_pct", "share_display"],
    "by_cause": ["code", "name", "complaints", "share_pct", "share_display"],
    "by_channel": [
        "code", "name", "level", "parent_code", "complaints", "share_pct", "share_of_parent_pct",
    ],
    "by_region": ["region", "complaints", "share_pct", "share_display"],
    "branch_scorecard": [
        "branch_code", "branch_name", "regulator_transferred", "direct_complaints", "opinions",
        "valid_complaints", "praises", "on_time_rate", "backlog_open_at_end",
        "backlog_overdue_at_end",
    ],
    "handling_time": ["bucket", "complaints", "share_pct"],
    "regulator_transfers": [
        "regulator", "received", "replied", "replied_on_time", "replied_late", "open",
        "open_overdue", "on_time_rate",
    ],
    "hotline_by_category": [
        "category", "calls", "share_pct", "dissatisfied", "complaint_intent", "defused",
        "converted",
    ],
    "hotline_kpis": ["metric", "label", "value"],
    "monthly_trend": [
        "month", "complaints", "opinions", "praises", "regulator_transferred", "calls",
    ],
    "held_updates": ["complaint_id", "drop_date", "rule", "reason"],
    "unmapped_labels": ["axis", "label", "mapped_to", "tickets"],
}  # fmt: skip


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(n) for n in range((end - start).days + 1)]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    mp = pytest.MonkeyPatch()
    mp.setenv("KESU_PII_KEY", "flow-test-key-0123456789abcdef")
    landing = tmp_path_factory.mktemp("landing")
    generate(START, END, landing, profile="small", seed=23)
    root = tmp_path_factory.mktemp("warehouse")
    for day in days(START, END):
        nightly(drop_date=day, landing_dir=str(landing), warehouse_dir=str(root))
    yield root
    mp.undo()


def run_report(warehouse: Path, out: Path, kind: str, period: str, **kw) -> dict:
    return report(kind=kind, period=period, out=str(out), warehouse_dir=str(warehouse), **kw)


@pytest.fixture(scope="module")
def reports_root(warehouse, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reports")
    run_report(warehouse, out, "quarterly", "2025Q1")
    run_report(warehouse, out, "annual", "2025")
    return out


def metric(folder: Path, name: str) -> int:
    overview = pl.read_parquet(folder / "tables" / "overview.parquet")
    return int(overview.filter(pl.col("metric") == name)["value"].item())


def table_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "tables").iterdir())}


@pytest.mark.parametrize("kind,period", [("quarterly", "2025Q1"), ("annual", "2025")])
def test_every_table_file_has_the_contract_columns(reports_root, kind, period):
    folder = reports_root / kind / period
    for name, columns in CONTRACT.items():
        parquet = pl.read_parquet(folder / "tables" / f"{name}.parquet")
        assert parquet.columns == columns, name
        csv = (folder / "tables" / f"{name}.csv").read_bytes()
        assert csv.startswith(b"\xef\xbb\xbf" + ",".join(columns).encode()), name
        assert pl.read_csv(csv, schema=parquet.schema).equals(parquet), name
    assert metric(folder, "complaints") > 0  # the period really has data
    for chart in ("business_category_share", "cause_share", "monthly_trend"):
        assert (folder / "charts" / f"{chart}.png").stat().st_size > 5_000
    assert (folder / "disclosure.md").exists() == (kind == "annual")


def test_workbook_opens_with_a_sheet_per_table_and_no_formula(reports_root):
    book = openpyxl.load_workbook(reports_root / "quarterly" / "2025Q1" / "report.xlsx")
    assert len(book.sheetnames) == len(CONTRACT)
    assert book.sheetnames[:2] == ["投诉概况", "投诉业务类别分布"]
    sheet = book["投诉业务类别分布"]
    rows = [[c.value for c in r] for r in sheet.iter_rows()]
    assert rows[1][:3] == ["业务类别代码", "业务类别", "投诉量（件）"]
    assert rows[-1][0] == "合计"
    assert rows[-1][2] == metric(reports_root / "quarterly" / "2025Q1", "complaints")
    assert all(c.data_type != "f" for s in book.worksheets for r in s.iter_rows() for c in r)


def test_manifest_records_every_partition_read_with_rows_and_checksum(reports_root, warehouse):
    folder = reports_root / "quarterly" / "2025Q1"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert (manifest["kind"], manifest["period"], manifest["as_of"]) == (
        "quarterly",
        "2025Q1",
        END.isoformat(),  # default: the latest drop
    )
    assert manifest["generated_at"] and manifest["kesu_version"]
    assert manifest["configuration"]["report"] == {
        "rounding": "half_up",
        "decimals": 2,
        "region": "province",
        "national_units": "province",
    }
    tables = {p["table"] for p in manifest["partitions"]}
    # quarantine/complaints: held_updates is computed from the quarantined ticket versions
    assert tables == {
        "stg_complaints",
        "stg_hotline",
        "stg_regulator_transfers",
        "quarantine/complaints",
    }
    for part in manifest["partitions"]:
        assert (warehouse / part["path"]).is_dir()
        assert part["rows"] == sum(f["rows"] for f in part["files"])
        assert isinstance(part["version"], int)  # the Delta version read: --reproduce uses it
        for f in part["files"]:  # Delta never rewrites a file: its name and size identify it
            assert (warehouse / f["path"]).stat().st_size == f["bytes"]
    assert set(manifest["files"]) >= {"report.xlsx", "report.html", "tables/overview.parquet"}


def test_quarters_add_up_to_the_year(reports_root, warehouse, tmp_path):
    annual = metric(reports_root / "annual" / "2025", "complaints")
    quarters = [metric(reports_root / "quarterly" / "2025Q1", "complaints")]
    for q in (2, 3, 4):
        # no drop covers Q3 or Q4: refused unless allowed (issue 11), then all zeros
        result = run_report(warehouse, tmp_path, "quarterly", f"2025Q{q}", allow_empty=q > 2)
        quarters.append(metric(Path(result["folder"]), "complaints"))
        if q == 2:  # the hotline is read from the day before the quarter on, nothing earlier
            manifest = json.loads((Path(result["folder"]) / "manifest.json").read_text())
            hotline = [
                p["drop_date"] for p in manifest["partitions"] if p["table"] == "stg_hotline"
            ]
            assert hotline and min(hotline) >= "2025-03-31"
    assert sum(quarters) == annual
    assert quarters[2:] == [0, 0]


def test_rerun_gives_byte_identical_tables(reports_root, warehouse):
    folder = reports_root / "quarterly" / "2025Q1"
    before = table_bytes(folder)
    run_report(warehouse, reports_root, "quarterly", "2025Q1")
    assert table_bytes(folder) == before
    leftovers = [p.name for p in (reports_root / "quarterly").iterdir() if ".tmp-" in p.name]
    assert leftovers == []


def test_as_of_an_earlier_drop_gives_what_was_known_then(warehouse, tmp_path):
    as_of = run_report(warehouse, tmp_path / "as_of", "quarterly", "2025Q1", as_of=EARLIER)
    # the warehouse as it stood at the end of EARLIER: later partitions removed
    then = tmp_path / "warehouse_then"
    shutil.copytree(warehouse, then, ignore=shutil.ignore_patterns("_raw"))
    for log in then.glob("*/_delta_log"):  # each table without its later drops (one commit)
        DeltaTable(str(log.parent)).delete(f"drop_date > '{EARLIER.isoformat()}'")
    earlier = run_report(then, tmp_path / "then", "quarterly", "2025Q1")
    assert earlier["as_of"] == EARLIER.isoformat()
    assert table_bytes(Path(as_of["folder"])) == table_bytes(Path(earlier["folder"]))
    manifest = json.loads((Path(as_of["folder"]) / "manifest.json").read_text())
    assert max(p["drop_date"] for p in manifest["partitions"]) == EARLIER.isoformat()


def test_as_of_a_day_after_the_last_drop_is_as_of_the_last_drop(warehouse, tmp_path):
    # judged on a day no drop reached, complaints still open at the last drop turned overdue and
    # the on-time rates fell, on data nobody had (the quarter's end is after END)
    latest = run_report(warehouse, tmp_path / "latest", "quarterly", "2025Q2")
    later = run_report(
        warehouse, tmp_path / "later", "quarterly", "2025Q2", as_of=date(2025, 6, 30)
    )
    assert later["as_of"] == latest["as_of"] == END.isoformat()
    assert table_bytes(Path(later["folder"])) == table_bytes(Path(latest["folder"]))


def test_cli_runs_the_flow_and_lists_the_files(warehouse, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="kesu")
    report_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["report", "annual", "2025", "--out", str(tmp_path), "--warehouse", str(warehouse)]
    )
    assert report_cli.run(args) == 0
    printed = capsys.readouterr().out
    assert str(tmp_path / "annual" / "2025") in printed
    assert "disclosure.md" in printed and "tables/overview.csv" in printed
    # a period typed in lower case is read, and told, as the period it names
    args = parser.parse_args(
        ["report", "quarterly", "2025q1", "--out", str(tmp_path), "--warehouse", str(warehouse)]
    )
    assert report_cli.run(args) == 0
    assert capsys.readouterr().out.startswith("quarterly report 2025Q1 as of ")


def test_a_full_disk_under_the_reports_is_told_by_the_report_folder(warehouse, full_disk, capsys):
    # the warehouse's disk has room; the reports' is full: the line names the report folder
    argv = ["report", "quarterly", "2025Q1", "--out", str(full_disk), "--warehouse", str(warehouse)]
    assert cli.main(argv) == 1
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("kesu")]
    assert said == [
        f"kesu report: no space left on the device holding {full_disk}/quarterly/2025Q1: "
        "free some space and run again"
    ]
    assert not (full_disk / "quarterly" / "2025Q1").exists()


# --- coverage (issue 11 item 4) ----------------------------------------------------------------


def test_a_partial_year_says_how_far_it_reaches(reports_root):
    folder = reports_root / "annual" / "2025"
    record = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert record["coverage"] == {
        "first_drop": "2025-03-25",
        "last_drop": "2025-04-03",
        "complete": False,
    }
    text = (folder / "disclosure.md").read_text(encoding="utf-8")
    assert "2025年度（数据截至2025年4月3日）" in text.splitlines()[0]
    assert "全年" not in text
    assert "2025年1月1日至4月3日，本行共受理消费投诉" in text
    book = openpyxl.load_workbook(folder / "report.xlsx")
    assert "数据截至2025年4月3日" in book.worksheets[0].cell(1, 1).value


def test_a_period_without_any_drop_is_refused_unless_allowed(warehouse, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="kesu")
    report_cli.add_parser(parser.add_subparsers(dest="command"))
    argv = ["report", "quarterly", "2025Q3", "--out", str(tmp_path), "--warehouse", str(warehouse)]
    assert report_cli.run(parser.parse_args(argv)) == 1
    printed = capsys.readouterr()
    assert printed.err.strip().splitlines() == [
        "kesu report: no drop covers quarterly 2025Q3 (as of 2025-04-03): drops exist from "
        "2025-03-25 to 2025-04-03; use --allow-empty to write it anyway"
    ]
    assert not (tmp_path / "quarterly" / "2025Q3").exists()
    assert report_cli.run(parser.parse_args([*argv, "--allow-empty"])) == 0
    folder = tmp_path / "quarterly" / "2025Q3"
    record = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert record["coverage"] == {"first_drop": None, "last_drop": None, "complete": False}
    assert metric(folder, "complaints") == 0


def test_a_year_no_drop_covers_is_never_disclosed_as_a_whole_year(warehouse, tmp_path):
    # --allow-empty for 2024 (the drops are of 2025): no day to name, so 暂无数据 everywhere
    folder = Path(run_report(warehouse, tmp_path, "annual", "2024", allow_empty=True)["folder"])
    record = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert record["coverage"] == {"first_drop": None, "last_drop": None, "complete": False}
    text = (folder / "disclosure.md").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "# 2024年度（暂无数据）消费投诉情况"
    assert "说明如下：暂无数据覆盖本期" in text
    assert "全年" not in text and "数据截至" not in text and "共受理" not in text
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "<h1>2024年度（暂无数据）消费投诉统计报告</h1>" in page and "数据截至" not in page
    book = openpyxl.load_workbook(folder / "report.xlsx")
    assert book.worksheets[0].cell(1, 1).value.startswith("2024年度（暂无数据）")


def test_a_monthly_summary_says_how_far_its_data_reaches(warehouse, tmp_path):
    # March: drops from the 25th to the 31st only; June: none at all
    march = Path(run_report(warehouse, tmp_path, "monthly", "2025-03")["folder"])
    text = (march / "summary.md").read_text(encoding="utf-8")
    assert text.startswith("# 2025年3月份客户之声（数据截至2025年3月31日）")
    assert "2025年3月份（截至3月31日）各渠道共受理" in text
    june = run_report(warehouse, tmp_path, "monthly", "2025-06", allow_empty=True)["folder"]
    text = (Path(june) / "summary.md").read_text(encoding="utf-8")
    assert text.startswith("# 2025年6月份客户之声（暂无数据）")
    assert "共受理" not in text and "数据截至" not in text


# --- the page in a real browser --------------------------------------------------------------


def chromium() -> str:
    if not Path(CHROMIUM).exists():
        subprocess.run(["bash", str(SYSTEM_DEPS)], check=False, timeout=900)
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing and {SYSTEM_DEPS} could not install it "
            "(needs root and Debian's apt): install the `chromium` package"
        )
    return CHROMIUM


def headless(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True)


def console_errors(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if ("CONSOLE" in line and "ERROR" in line) or "Uncaught" in line
    ]


def test_report_html_renders_in_headless_chromium(reports_root, tmp_path):
    page = reports_root / "annual" / "2025" / "report.html"
    shot = tmp_path / "shot.png"
    taken = headless(page, tmp_path / "p1", f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 50_000
    assert console_errors(taken.stderr) == []
    dom = headless(page, tmp_path / "p2", "--dump-dom")
    assert console_errors(dom.stderr) == []
    html = dom.stdout
    assert html.count("<table>") == len(CONTRACT)
    assert html.count('<img src="data:image/png;base64,') >= 3
    for title in ("投诉概况", "投诉业务类别分布", "投诉原因分布", "月度趋势"):
        assert f"<h2>{title}</h2>" in html
    assert '<tr class="total">' in html
