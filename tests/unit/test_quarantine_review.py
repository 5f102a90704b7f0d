"""Quarantine review without Prefect: the summary (transforms.quarantine_review), the reader
(warehouse.quarantine), the stewards' workbook (reports.quarantine_xlsx) and the CLI's text."""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from kesu.flows import quarantine_cli
from kesu.reports.quarantine_xlsx import write_quarantine_workbook
from kesu.transforms.quarantine_review import rows_per_file, rule_counts, summary
from kesu.transforms.run_records import FeedRecord, FileOutcome, IngestRun, PublishedPartition
from kesu.warehouse import Warehouse, ledger
from kesu.warehouse.publish import publish_partition
from kesu.warehouse.quarantine import last_ingests, read_quarantine

DAY = date(2025, 3, 3)
# Every character OWASP lists as a formula trigger, at the start of a text cell.
INJECTIONS = ['=HYPERLINK("http://x","点击")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


def quarantine_rows(**overrides) -> pl.DataFrame:
    """Literal hotline quarantine rows, shaped as transforms.quarantine.split writes them."""
    rows = {
        "source_file": ["b.csv", "a.csv", "a.csv", "a.csv"],
        "source_line": [9, 7, 3, 5],
        "field": ["来电时间", "来电时间", "客户情绪", "来电时间;挂机时间"],
        "rule": ["unparseable", "unparseable", "in_set", "unparseable"],
        "reason": ["来电时间: N/A", "来电时间: 2025-02-30", "客户情绪: 生气", "两处无法解析"],
        "call_id": ["C9", "C7", "C3", "C5"],
        "caller_number": ["138****5678", "139****0000", None, "****21"],
        "inquiry_topic": ["查询", "查询", "挂失", "咨询"],
    }
    return pl.DataFrame(rows | overrides, schema_overrides={"source_line": pl.Int64})


# --- transforms.quarantine_review ----------------------------------------------------------


def test_rule_counts_count_each_row_once_with_its_first_row_as_example():
    counts = rule_counts(quarantine_rows())
    assert counts.rows() == [
        # most rows first; example = first by file, then line (a.csv line 7 before b.csv)
        ("unparseable", "来电时间", 2, 2, "a.csv", 7, "来电时间: 2025-02-30"),
        ("in_set", "客户情绪", 1, 1, "a.csv", 3, "客户情绪: 生气"),
        # a row with two problems counts once, under the joined fields
        ("unparseable", "来电时间;挂机时间", 1, 1, "a.csv", 5, "两处无法解析"),
    ]
    assert counts["rows"].sum() == 4  # adds up to the quarantined rows


def test_summary_puts_the_feed_first_and_leaves_out_feeds_without_rows():
    empty = quarantine_rows().clear()
    table = summary({"hotline": quarantine_rows(), "complaints": empty})
    assert table.columns[0] == "feed" and set(table["feed"]) == {"hotline"}
    assert table.height == 3
    assert summary({"complaints": empty}).height == 0
    assert rows_per_file(quarantine_rows()).rows() == [("a.csv", 3), ("b.csv", 1)]


# --- warehouse.quarantine ------------------------------------------------------------------


def test_reader_reads_every_part_file_of_the_drop_in_file_and_line_order(tmp_path):
    frame = quarantine_rows()
    parts = dict(frame.partition_by("source_file", as_dict=True))
    publish_partition(
        Warehouse.at(tmp_path),
        "quarantine/hotline",
        "drop_date=2025-03-03",
        {"part-a-1.parquet": parts[("a.csv",)], "part-b-2.parquet": parts[("b.csv",)]},
    )
    back = read_quarantine(Warehouse.at(tmp_path), "hotline", DAY)
    assert back.columns == frame.columns
    assert back.select("source_file", "source_line").rows() == [
        ("a.csv", 3), ("a.csv", 5), ("a.csv", 7), ("b.csv", 9),
    ]  # fmt: skip
    nothing = read_quarantine(Warehouse.at(tmp_path), "hotline", date(2025, 3, 4))
    assert nothing.height == 0 and nothing.columns[:5] == frame.columns[:5]
    with pytest.raises(ValueError, match="feed name"):
        read_quarantine(Warehouse.at(tmp_path), "../hotline", DAY)


# --- reports.quarantine_xlsx ---------------------------------------------------------------


@pytest.fixture
def workbook(tmp_path) -> openpyxl.Workbook:
    hostile = quarantine_rows(
        source_file=[f"{INJECTIONS[0]}.csv", "a.csv", "a.csv", "-x.csv"],
        reason=INJECTIONS[:4],
        inquiry_topic=INJECTIONS[2:],
        call_id=["=C9", "+C7", "@C3", "-C5"],
    )
    complaints = pl.DataFrame(
        {
            "source_file": ["c.csv"],
            "source_line": [2],
            "field": ["机构代码"],
            "rule": ["unknown_branch"],
            "reason": ['机构代码 (branch_code): "9999" is not a branch code'],
            "customer_name": ["张*"],
            "content": ["=客户称…电话138****5678"],
        },
        schema_overrides={"source_line": pl.Int64},
    )
    path = tmp_path / "隔离.xlsx"
    write_quarantine_workbook({"hotline": hostile, "complaints": complaints}, path, DAY)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left
    return openpyxl.load_workbook(path)


def values(sheet) -> list[list]:
    return [[c.value for c in row] for row in sheet.iter_rows()]


def test_workbook_has_a_summary_and_a_sheet_per_feed_with_chinese_headers(workbook):
    assert workbook.sheetnames == ["汇总", "客服热线", "投诉工单"]
    hotline = values(workbook["客服热线"])
    lead = ["文件", "行号", "字段", "规则", "原因"]
    assert hotline[0] == [*lead, "通话编号", "主叫号码（脱敏）", "业务小类"]
    assert len(hotline) == 1 + 4 and [r[1] for r in hotline[1:]] == [9, 7, 3, 5]
    assert values(workbook["投诉工单"])[0][5:] == ["客户姓名（脱敏）", "投诉内容（脱敏）"]
    summary_rows = values(workbook["汇总"])
    assert summary_rows[0][:5] == ["数据源", "规则", "规则说明", "字段", "行数"]
    assert [r[0] for r in summary_rows[1:]] == ["客服热线", "客服热线", "客服热线", "投诉工单"]
    assert sum(r[4] for r in summary_rows[1:]) == 5
    assert "未知机构" in [r[2] for r in summary_rows[1:]]
    for sheet in workbook.worksheets:  # header frozen, filter over the whole table
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref and sheet.auto_filter.ref.startswith("A1:")


def test_workbook_holds_no_formula_and_keeps_hostile_text_as_text(workbook):
    texts = set()
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    texts.add(cell.value)
    for text in [*INJECTIONS[:5], f"{INJECTIONS[0]}.csv", "=C9", "+C7", "@C3", "-C5"]:
        assert text in texts, text
    # a leading CR is kept as a character (OOXML writes it as _x000D_, openpyxl reads it so)
    assert "_x000D_=1" in texts or "\r=1" in texts


# --- flows.quarantine_cli ------------------------------------------------------------------


def test_cli_lines_count_by_rule_and_field_with_file_and_line_examples():
    record = IngestRun.from_jsonable(
        {
            "run_id": "R1",
            "drop_date": "2025-03-03",
            "started_at": "2025-03-04T02:00:00+00:00",
            "status": "completed",
            "feeds": {
                "hotline": {"rows_in": 10, "loaded": 6, "quarantined": 4, "status": "loaded"}
            },
        }
    )
    lines = quarantine_cli.feed_lines("hotline", quarantine_rows(), record)
    assert lines[0] == (
        "hotline: 4 row(s) quarantined in 2 file(s) (run R1: rows in 10 = loaded 6 + quarantined 4)"
    )
    assert any(line.split()[:3] == ["2", "unparseable", "来电时间"] for line in lines)
    assert "    a.csv line 7: 来电时间: 2025-02-30" in lines
    # a record shape's reason names its line itself: said once (it said "line 9: line 9: …")
    cut = "line 9: the record has only 1 of the 17 fields in the header"
    shape = quarantine_rows(reason=["来电时间: N/A", "来电时间: 2025-02-30", "客户情绪: 生气", cut])
    shape = shape.with_columns(rule=pl.Series(["unparseable"] * 3 + ["record_shape"]))
    shape = shape.with_columns(source_line=pl.Series([9, 7, 3, 9]), source_file=pl.lit("a.csv"))
    assert "    a.csv line 9: the record has only 1 of the 17 fields in the header" in (
        quarantine_cli.feed_lines("hotline", shape, record)
    )
    empty = quarantine_rows().clear()
    assert quarantine_cli.feed_lines("hotline", empty, None) == [
        "hotline: no completed ingest of this drop in the ledger"
    ]
    none_held = replace(record, feeds={"hotline": replace(record.feeds["hotline"], quarantined=0)})
    assert quarantine_cli.feed_lines("hotline", empty, none_held)[0].startswith(
        "hotline: no rows quarantined (run R1"
    )
    # a run that could read no file published nothing: the rows are an earlier run's, not its 0
    unreadable = FeedRecord("unreadable", error="no file could be read")
    lines = quarantine_cli.feed_lines(
        "hotline", quarantine_rows(), replace(record, feeds={"hotline": unreadable})
    )
    assert lines[0] == (
        "hotline: 4 row(s) quarantined in 2 file(s) (run R1: unreadable, no file could be read; "
        "nothing published: the drop keeps what an earlier run loaded)"
    )
    # a file without a required column was read and published: its staged rows are gone (it
    # said "no file could be read; the drop keeps what an earlier run loaded")
    missing = FileOutcome("a.csv", "", 0, rows_in=4, quarantined=4, status="failed")
    missing = replace(missing, rejected=["来电时间"])
    removed = PublishedPartition("stg_hotline", "drop_date=2025-03-03", action="removed")
    held = FeedRecord("unreadable", quarantined=4, files=[missing], outputs=[removed])
    lines = quarantine_cli.feed_lines(
        "hotline", quarantine_rows(), replace(record, feeds={"hotline": held})
    )
    assert lines[0] == (
        "hotline: 4 row(s) quarantined in 2 file(s) (run R1: unreadable, a.csv: required "
        "column(s) 来电时间 missing; its staged rows removed (stg_hotline), 4 row(s) held in "
        "quarantine)"
    )


def test_cli_output_cannot_drive_the_terminal():
    # a source value with an ANSI escape (clear screen) and a newline is shown, not run
    assert quarantine_cli.printable("a\x1b[2Jb\nc") == "a\\x1b[2Jb\\x0ac"
    assert quarantine_cli.printable("长" * 300, limit=10) == "长" * 9 + "…"


def test_cli_arguments():
    parser = argparse.ArgumentParser(prog="kesu")
    quarantine_cli.add_parser(parser.add_subparsers(dest="command"))
    command = ["quarantine", "--date", "2025-03-03", "--feeds", "hotline,complaints"]
    args = parser.parse_args([*command, "--export", "q.xlsx"])
    assert args.drop_date == DAY and args.feeds == ["hotline", "complaints"]
    assert args.export == Path("q.xlsx")
    for bad in (["--feeds", "calls"], ["--export", "q.csv"], ["--date", "2025-02-30"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["quarantine", "--date", "2025-03-03", *bad])


def test_cli_module_imports_nothing_heavy():
    code = (
        "import sys, flows.quarantine_cli\n"
        "heavy = [m for m in ('prefect', 'polars', 'xlsxwriter') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_the_ledger_record_shown_is_the_newest_completed_run_of_the_drop(tmp_path):
    def run(run_id: str, status: str, day: date, feeds: list[str], no_folder=()) -> None:
        started = datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        records = {f: FeedRecord("loaded") for f in feeds}
        records |= {f: FeedRecord("no_folder") for f in no_folder}
        ledger.record_run(
            Warehouse.at(tmp_path), IngestRun(run_id, day, started, status=status, feeds=records)
        )

    run("20250304T020000Z-aaaaaa", "completed", DAY, ["hotline", "complaints"])
    run("20250305T020000Z-bbbbbb", "completed", DAY, ["hotline"])  # a --feeds hotline re-run
    run("20250306T020000Z-cccccc", "failed", DAY, ["hotline", "complaints"])
    run("20250307T020000Z-dddddd", "completed", date(2025, 3, 4), ["hotline"])  # another drop
    found = last_ingests(Warehouse.at(tmp_path), DAY)
    assert found["hotline"].run_id == "20250305T020000Z-bbbbbb"
    assert found["complaints"].run_id == "20250304T020000Z-aaaaaa"
    assert "regulator_transfers" not in found
    # a later run found no hotline folder: it published nothing, the tables hold bbbbbb's rows
    # (it said "no folder for this drop, nothing ingested")
    run("20250308T020000Z-eeeeee", "completed", DAY, [], no_folder=["hotline"])
    found = last_ingests(Warehouse.at(tmp_path), DAY)
    assert found["hotline"].run_id == "20250305T020000Z-bbbbbb"
    # a drop whose only completed run found no folder: that run, said as such
    run("20250309T020000Z-ffffff", "completed", date(2025, 3, 5), [], no_folder=["hotline"])
    (only,) = last_ingests(Warehouse.at(tmp_path), date(2025, 3, 5)).values()
    assert only.run_id == "20250309T020000Z-ffffff"
    assert quarantine_cli.feed_lines("hotline", quarantine_rows().clear(), only)[0].startswith(
        "hotline: no folder for this drop"
    )


def test_cli_refuses_a_warehouse_that_does_not_exist(tmp_path):
    parser = argparse.ArgumentParser(prog="kesu")
    quarantine_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["quarantine", "--date", "2025-03-03", "--warehouse", str(tmp_path / "nowhere")]
    )
    with pytest.raises(ValueError, match="no warehouse"):
        quarantine_cli.run(args)


# --- issue 14: Chinese rule names and reasons, wrapped reasons, no empty workbook -----------


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("来电时间 (call_start): not a whole number: 1x", "来电时间：不是整数：1x"),
        ('客户情绪 (sentiment): "生气" is not one of 平静/不满', '客户情绪："生气" 不在允许值 平静/不满 之内'),
        ("通话时长 (duration_seconds) -5 is below 0; 主叫号码 (caller_number) is missing",
         "通话时长 -5 小于 0；主叫号码 为空"),
        ("办结时间 (closed_at) is missing, required when 状态 (status) is one of 已办结 and 受理时间 (accepted_at) is present",
         "办结时间 为空（状态 属于 已办结 且 受理时间 不为空时必填）"),
        ("挂机时间 (call_end) missing is before 来电时间 (call_start) 2025-01-01 11:00:00",
         "挂机时间 （缺失） 早于 来电时间 2025-01-01 11:00:00"),
        ('工单编号 "W1": repeats the record at a.csv line 3; only the first occurrence can load',
         '工单编号 "W1"：与 a.csv 第 3 行的记录重复，只有第一条可以入库'),
        ("the record has more fields than the 9 in the header", "该行字段多于表头的 9 个"),
        ("line 4: the record has more fields than the 9 in the header", "第 4 行：该行字段多于表头的 9 个"),
        ("line 3: a quote opened in 业务小类 does not close on its line, and 业务小类 cannot hold a line break; the line is held as a record of its own",
         "第 3 行：业务小类 中的引号在本行未闭合，而 业务小类 不能包含换行；该行单独作为一条记录隔离"),
        ("line 3: a quote opened in 投诉内容 does not close in a way that makes one record; the line is held as a record of its own",
         "第 3 行：投诉内容 中的引号未能闭合成一条完整记录；该行单独作为一条记录隔离"),
        ("line 4: it starts inside a value whose quote opened on line 3, in 编号, which cannot hold a line break; the line is held as a record of its own",
         "第 4 行：该行开头位于第 3 行 编号 中引号开始的值之内，而 编号 不能包含换行；该行单独作为一条记录隔离"),
        ("line 5: it starts inside a value whose quote opened on line 4; the line is held as a record of its own",
         "第 5 行：该行开头位于第 4 行引号开始的值之内；该行单独作为一条记录隔离"),
        ("lines 3-4: a quote opened in 投诉内容 closes on line 4, but they make 8 fields, not the 6 in the header; the lines are held as one record",
         "第 3–4 行：投诉内容 中的引号到第 4 行闭合，这几行共 8 个字段，表头有 6 个；作为一条记录隔离"),
        ("lines 3-5: a quote opened in 投诉内容 closes on line 5, but a column that cannot hold a line break has one; the lines are held as one record",
         "第 3–5 行：投诉内容 中的引号到第 5 行闭合，但不能包含换行的列中有换行；这几行作为一条记录隔离"),
        ("line 3: a quoted value in 投诉内容 has text after its closing quote, so the line's values cannot be read for sure; the line is held as a record of its own",
         "第 3 行：投诉内容 中带引号的值在闭合引号后还有文字，无法确定该行的值；该行单独作为一条记录隔离"),
        ("lines 3-4: a quote opened in 投诉内容 closes on line 4, but a quoted value in 投诉内容 has text after its closing quote; the lines are held as one record",
         "第 3–4 行：投诉内容 中的引号到第 4 行闭合，但 投诉内容 中带引号的值在闭合引号后还有文字；这几行作为一条记录隔离"),
        ("line 6: 来源 holds an Excel error value (#DIV/0!), not a value; (column 16 has no header) holds an Excel error value, not a value",
         "第 6 行：来源 中是 Excel 错误值（#DIV/0!），不是有效值；(column 16 has no header) 中是 Excel 错误值，不是有效值"),
        ("line 3: 转办单号 holds a number of 16 or more digits, more than the 15 Excel keeps: its last digits are lost (the column must be stored as text)",
         "第 3 行：转办单号 中是 16 位以上的数字，超过 Excel 保留的 15 位有效数字，末几位已丢失（该列须以文本格式保存）"),
        ("line 7: not valid text in the file's encoding (UTF-8)", "第 7 行：不是文件编码（UTF-8）下的有效文本"),
        ('业务类别 (business_category): "银行卡" is not a JR/T 0169 code or a label in the label map (reference/label_map.csv); map it there or correct the source',
         '业务类别："银行卡" 既不是 JR/T 0169 代码，也不在标签映射表（reference/label_map.csv）中；请在映射表中补充，或更正源数据'),
        ('机构代码 (branch_code): "9999" is not a branch code or name in the branch reference; add it or correct the source',
         '机构代码："9999" 不是机构参考表中的机构代码或名称；请在参考表中补充，或更正源数据'),
        ("投诉原因 (cause): holds what looks like a phone, ID or card number (masked here; the clear value is only in the raw zone); correct the source; 机构代码 (branch_code) is missing",
         "投诉原因：含有疑似电话、证件或银行卡号码（此处已脱敏，原值仅存于原始区）；请更正源数据；机构代码 为空"),
        ("something new", "something new"),  # an unknown phrase is kept, never lost
    ],
)  # fmt: skip
def test_reasons_are_shown_in_chinese(stored, shown):
    from kesu.reports.quarantine_reasons import reason_zh

    assert reason_zh(stored) == shown


def test_workbook_rules_and_reasons_are_chinese_and_the_reason_wraps(tmp_path):
    rows = quarantine_rows(
        reason=["来电时间 (call_start): not a whole number: N/A"] * 4,
        rule=["unparseable", "unparseable", "in_set", "unparseable;required"],
    )
    path = write_quarantine_workbook({"hotline": rows}, tmp_path / "q.xlsx", DAY)
    book = openpyxl.load_workbook(path)
    sheet = book["客服热线"]
    table = values(sheet)
    assert [r[3] for r in table[1:]] == [
        "无法解析",
        "无法解析",
        "取值不在允许范围",
        "无法解析；必填项为空",
    ]
    assert {r[4] for r in table[1:]} == {"来电时间：不是整数：N/A"}
    assert sheet["E2"].alignment.wrap_text and sheet.column_dimensions["E"].width <= 51
    assert values(book["汇总"])[1][8] == "来电时间：不是整数：N/A"


def test_export_of_a_day_with_nothing_held_writes_no_workbook(tmp_path, capsys):
    (tmp_path / "wh").mkdir()
    parser = argparse.ArgumentParser(prog="kesu")
    quarantine_cli.add_parser(parser.add_subparsers(dest="command"))
    target = tmp_path / "out" / "q.xlsx"
    args = parser.parse_args(
        ["quarantine", "--date", "2025-03-03", "--warehouse", str(tmp_path / "wh")]
        + ["--export", str(target)]
    )
    assert quarantine_cli.run(args) == 0
    assert not target.exists() and not target.parent.exists()
    assert f"nothing held for drop 2025-03-03: no workbook written to {target}" in (
        capsys.readouterr().out
    )


def test_every_reason_staging_writes_about_a_value_is_shown_in_chinese():
    # a held update of the report and the watch list shows these too: no English sentence left
    import re

    from kesu.reports.quarantine_reasons import reason_zh, rule_title
    from kesu.transforms import staging

    sentences = [staging.UNKNOWN_LABEL, staging.UNKNOWN_BRANCH, staging.PERSONAL_DATA,
                 staging.OWN_NAME.format(header="客户姓名")]  # fmt: skip
    for sentence in sentences:
        shown = reason_zh(f'投诉原因 (cause): "x" {sentence}')
        assert not re.search(r"[a-z]{3,}", shown.replace("reference/label_map.csv", "")), shown
    for rule in ("unknown_label", "unknown_branch", "personal_data", "unparseable"):
        assert not re.search(r"[a-z]", rule_title(rule)), rule
