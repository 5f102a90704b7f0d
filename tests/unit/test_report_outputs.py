"""Report writers on small literal tables (no Prefect): files, workbook, page, disclosure,
charts, the atomic output folder, the partition reader and the CLI's import cost."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from kesu.reports import charts, disclosure, files, html, labels, output, xlsx
from kesu.transforms.periods import Coverage
from kesu.transforms.shares import with_shares
from kesu.warehouse import Warehouse
from kesu.warehouse.publish import publish_partition
from kesu.warehouse.reader import latest_drop, scan_table, staged_schema

from kesu import reports

P = pl.Decimal(10, 2)
INJECTIONS = [
    '=HYPERLINK("http://x")',
    "+定价收费",
    "@上海市",
    "-天津市",
    "\t北京分行<b>",
    "\r监管局",
]


def shares(*values: str) -> list[D]:
    return [D(v) for v in values]


def literal_tables() -> dict[str, pl.DataFrame]:
    """One small table of every kind, shaped as reports.md says; some text is hostile."""
    return {
        "overview": pl.DataFrame(
            {
                "metric": [
                    "complaints",
                    "regulator_transferred",
                    "close_rate",
                    "avg_handling_days",
                ],
                "label": ["投诉（合并重复后）", "监管转办投诉", "办结率", "平均办理天数"],
                "value": shares("125", "6", "96.80", "7.25"),
                "previous": [D("100"), D("4"), D("95.00"), None],
                "change_pct": [D("25.00"), D("50.00"), D("1.89"), None],
            },
            schema_overrides={"value": P, "previous": P, "change_pct": P},
        ),
        "by_business_category": pl.DataFrame(
            {
                "code": ["B03", "B02", "B04", "B01", "B99"],
                "name": ["信用卡", INJECTIONS[0], "贷款", "人民币储蓄", "其他"],
                "complaints": [42, 30, 25, 20, 8],
                "share_pct": shares("33.60", "24.00", "20.00", "16.00", "6.40"),
                "share_display": ["33.60%", "24.00%", "20.00%", "16.00%", "6.40%"],
            },
            schema_overrides={"share_pct": P},
        ),
        # each named cause rounds to 16.67 (three add to 50.01), but 3 of 6 is exactly 50.00
        "by_cause": pl.DataFrame(
            {
                "code": ["C01", "C07", "C03", "C99"],
                "name": ["服务态度及服务质量", INJECTIONS[1], "管理制度、业务规则与流程", "其他"],
                "complaints": [1, 1, 1, 3],
                "share_pct": shares("16.67", "16.67", "16.67", "50.00"),
                "share_display": ["16.67%", "16.67%", "16.67%", "50.00%"],
            },
            schema_overrides={"share_pct": P},
        ),
        "by_channel": pl.DataFrame(
            {
                "code": ["A01", "A0101", "A0103", "A02"],
                "name": ["前台业务渠道", "营业现场", "电子渠道", "中、后台业务渠道"],
                "level": [1, 2, 2, 1],
                "parent_code": [None, "A01", "A01", None],
                "complaints": [100, 60, 40, 25],
                "share_pct": shares("80.00", "48.00", "32.00", "20.00"),
                "share_of_parent_pct": [None, D("60.00"), D("40.00"), None],
            },
            schema_overrides={"share_pct": P, "share_of_parent_pct": P},
        ),
        "by_region": pl.DataFrame(
            {
                "region": ["北京市", INJECTIONS[2], INJECTIONS[3]],
                "complaints": [3, 2, 1],
                "share_pct": shares("50.00", "33.33", "16.67"),
                "share_display": ["50.00%", "33.33%", "16.67%"],
            },
            schema_overrides={"share_pct": P},
        ),
        "branch_scorecard": pl.DataFrame(
            {
                "branch_code": ["0100", "0200"],
                "branch_name": [INJECTIONS[4], "上海分行"],
                "regulator_transferred": [1, 0],
                "direct_complaints": [2, 5],
                "opinions": [3, 1],
                "valid_complaints": [1, 2],
                "praises": [0, 4],
                "on_time_rate": [D("100.00"), D("80.00")],
            },
            schema_overrides={"on_time_rate": P},
        ),
        "handling_time": pl.DataFrame(
            {
                "bucket": ["≤15天", "16–30天", "31–60天", ">60天", "未办结"],
                "complaints": [10, 5, 0, 0, 1],
                "share_pct": shares("62.50", "31.25", "0.00", "0.00", "6.25"),
            },
            schema_overrides={"share_pct": P},
        ),
        "regulator_transfers": pl.DataFrame(
            {
                "regulator": [INJECTIONS[5]],
                "received": [2],
                "replied": [1],
                "replied_on_time": [1],
                "replied_late": [0],
                "open": [1],
                "open_overdue": [0],
                "on_time_rate": [D("100.00")],
            },
            schema_overrides={"on_time_rate": P},
        ),
        "hotline_by_category": pl.DataFrame(
            {
                "category": ["个人业务", "电子银行"],
                "calls": [855, 145],
                "share_pct": shares("85.50", "14.50"),
                "dissatisfied": [5, 1],
                "complaint_intent": [3, 1],
                "defused": [2, 1],
                "converted": [1, 0],
            },
            schema_overrides={"share_pct": P},
        ),
        "hotline_kpis": pl.DataFrame(
            {
                "metric": ["calls", "answer_rate", "survey_satisfaction_rate", "asa_seconds"],
                "label": ["来电量", "人工接通率", "满意度", "平均应答时长（秒）"],
                "value": shares("1000", "92.30", "98.10", "12.40"),
            },
            schema_overrides={"value": P},
        ),
        "monthly_trend": pl.DataFrame(
            {
                "month": [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)],
                "complaints": [40, 45, 40],
                "opinions": [3, 4, 5],
                "praises": [1, 0, 2],
                "regulator_transferred": [1, 2, 0],
                "calls": [300, 320, 380],
            }
        ),
        "held_updates": pl.DataFrame(
            {
                "complaint_id": ["C2025030100007"],
                "drop_date": [date(2025, 3, 2)],
                "rule": ["unknown_label"],
                "reason": ['投诉原因 (cause): "其它" is not a JR/T 0169 code'],
            }
        ),
        "unmapped_labels": pl.DataFrame(
            {"axis": ["B"], "label": ["银行卡"], "mapped_to": ["B99"], "tickets": [3]}
        ),
    }


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    files.write_tables(literal_tables(), folder / reports.TABLES_DIR)
    reports.write_presentation(
        folder, kind="annual", period="2025", as_of="2025-12-31", decimals=2, rounding="half_up"
    )
    return folder


# --- tables/ -------------------------------------------------------------------------------


def test_csv_starts_with_bom_prints_decimals_exactly_and_round_trips(written):
    for name, frame in literal_tables().items():
        data = (written / "tables" / f"{name}.csv").read_bytes()
        assert data.startswith(b"\xef\xbb\xbf"), name
        back = pl.read_csv(data, schema=frame.schema)
        # the one difference from the Parquet copy: formula-like text gets a leading '
        unquoted = back.with_columns(pl.col(pl.String).str.replace(r"^'([=+\-@\t\r])", "$1"))
        assert unquoted.equals(frame), name


def test_csv_quotes_every_text_cell_a_spreadsheet_would_run_and_leaves_numbers_alone(written):
    frame = pl.DataFrame(
        {
            "name": [*INJECTIONS, "正常", "a=b", "'=已引用", None],
            "change_pct": [D("-12.50")] * 6 + [D("3.00"), None, D("-0.01"), D("1")],
        },
        schema_overrides={"change_pct": P},
    )
    rows = list(csv.reader(io.StringIO(files.csv_bytes(frame).decode("utf-8-sig"), newline="")))
    names, numbers = [r[0] for r in rows[1:]], [r[1] for r in rows[1:]]
    assert names == [f"'{t}" for t in INJECTIONS] + ["正常", "a=b", "'=已引用", ""]
    assert numbers[0] == "-12.50" and numbers[8] == "-0.01"  # numeric columns: unchanged
    # and in every table the report writes, no text cell starts with a trigger character
    for path in (written / "tables").glob("*.csv"):
        parquet = pl.read_parquet(path.with_suffix(".parquet"))
        text_columns = [i for i, d in enumerate(parquet.dtypes) if d == pl.String]
        body = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))
        for row in body[1:]:
            for i in text_columns:
                assert not row[i].startswith(files.FORMULA_TRIGGERS), (path.name, row[i])
    text = (written / "tables" / "by_business_category.csv").read_text(encoding="utf-8-sig")
    assert "B03,信用卡,42,33.60,33.60%" in text  # 33.60, not 33.6 nor a float


def test_parquet_keeps_columns_and_types(written):
    for name, frame in literal_tables().items():
        assert pl.read_parquet(written / "tables" / f"{name}.parquet").equals(frame), name


def test_table_files_are_byte_identical_however_the_frame_was_built(tmp_path):
    frame = literal_tables()["by_business_category"]
    pieces = pl.concat([frame.head(2), frame.tail(3)], rechunk=False)  # two chunks
    files.write_tables({"t": frame}, tmp_path / "a")
    files.write_tables({"t": pieces}, tmp_path / "b")
    for suffix in (".parquet", ".csv"):
        assert (tmp_path / "a" / f"t{suffix}").read_bytes() == (
            tmp_path / "b" / f"t{suffix}"
        ).read_bytes()


def test_an_unsafe_table_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="safe file name"):
        files.write_tables({"../x": pl.DataFrame({"a": [1]})}, tmp_path)


# --- report.xlsx ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workbook(written):
    return openpyxl.load_workbook(written / reports.WORKBOOK)


def rows_of(sheet) -> list[list]:
    return [[c.value for c in row] for row in sheet.iter_rows()]


def test_workbook_has_one_sheet_per_table_with_chinese_title_and_headers(workbook):
    assert workbook.sheetnames == [labels.TABLE_TITLES[n] for n in labels.TABLE_TITLES]
    sheet = workbook["投诉业务类别分布"]
    assert sheet["A1"].value == "2025年度 投诉业务类别分布"
    assert rows_of(sheet)[1] == ["业务类别代码", "业务类别", "投诉量（件）", "占比"]
    assert sheet.freeze_panes == "A3"  # title and header stay in view
    assert sheet.column_dimensions["B"].width > 10


def test_workbook_total_rows_sum_counts_and_show_the_actual_share_sum(workbook):
    category = rows_of(workbook["投诉业务类别分布"])
    assert category[-1][0] == "合计" and category[-1][2] == 125
    cause = rows_of(workbook["投诉原因分布"])
    assert cause[-1][2] == 6 and cause[-1][3] == pytest.approx(1.0001)  # 100.01%, as rounded
    # channel levels overlap: the total is over the top level only
    channel = rows_of(workbook["投诉业务办理渠道分布"])
    assert channel[-1][0] == "合计" and channel[-1][4] == 125 and channel[-1][5] == 1.0
    # rates are not summed
    branches = rows_of(workbook["分支机构投诉情况"])
    assert branches[-1][2:7] == [1, 7, 4, 3, 4] and branches[-1][7] is None
    # metric tables have no total row
    assert "合计" not in [r[0] for r in rows_of(workbook["投诉概况"])]


def test_workbook_percentages_show_exactly_the_rounded_value(workbook):
    cell = workbook["投诉业务类别分布"]["D3"]
    assert cell.value == pytest.approx(0.336) and cell.number_format == "0.00%"
    overview = {r[0]: r for r in rows_of(workbook["投诉概况"])[2:]}
    assert overview["办结率"][1] == pytest.approx(0.968)
    assert workbook["投诉概况"]["B5"].number_format == "0.00%"  # close_rate is a rate
    assert workbook["投诉概况"]["B3"].number_format == "#,##0"  # complaints is a count
    assert rows_of(workbook["投诉概况"])[1] == ["指标", "本期", "上年", "同比变动"]


def test_held_updates_show_rules_and_reasons_in_chinese_as_the_quarantine_export_does(
    workbook, written
):
    # stored: rule `unknown_label`, reason '投诉原因 (cause): "其它" is not a JR/T 0169 code'
    sheet = workbook["被隔离的投诉更新"]
    rows = rows_of(sheet)
    assert rows[1] == ["投诉编号", "数据日期", "隔离规则", "隔离原因"]
    complaint, _, rule, reason = rows[2]
    assert (complaint, rule) == ("C2025030100007", "未知分类标签")
    assert reason.startswith('投诉原因："其它"') and "(cause)" not in reason
    # the reason wraps inside its column instead of running past the border
    assert sheet["D3"].alignment.wrap_text and sheet.column_dimensions["D"].width <= 50
    assert not sheet["A3"].alignment.wrap_text
    page = (written / reports.PAGE).read_text(encoding="utf-8")
    held = page[page.index('<section id="held_updates">') :].split("</section>")[0]
    assert "<td>未知分类标签</td>" in held and "<td>投诉原因：&quot;其它&quot;" in held
    assert "unknown_label" not in held and "(cause)" not in held


def test_workbook_rows_of_a_long_wrapped_reason_are_tall_enough_to_show_it(tmp_path):
    reason = ("更新时间 (updated_at): not a date-time in YYYY-MM-DD HH:MM:SS, YYYY/MM/DD HH:MM or "
              "YYYY年MM月DD日: N/A")  # fmt: skip
    held = pl.DataFrame({"complaint_id": ["A", "B"], "drop_date": [date(2025, 3, 2)] * 2,
                         "rule": ["unparseable", "required"],
                         "reason": [reason, "机构代码 (branch_code) is missing"]})  # fmt: skip
    xlsx.write_workbook({"held_updates": held}, tmp_path / "r.xlsx", "annual", "2025")
    sheet = openpyxl.load_workbook(tmp_path / "r.xlsx").active
    assert sheet.row_dimensions[3].height >= 2 * 15  # wraps onto two lines at least: all shown
    assert sheet.row_dimensions[4].height is None  # one line: left to the spreadsheet


def test_workbook_holds_no_formula_even_for_text_that_looks_like_one(workbook):
    texts = set()
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    texts.add(cell.value)
    for text in INJECTIONS[:5]:
        assert text in texts
    # a leading CR is kept as a character (OOXML writes it as _x000D_)
    assert any(t.endswith("监管局") and t != "监管局" for t in texts)


def test_sheet_names_are_made_valid_and_unique():
    used: set[str] = set()
    assert xlsx.sheet_name("a/b:c", used) == "a_b_c"
    assert xlsx.sheet_name("A_B_C", used) == "A_B_C(2)"
    assert len(xlsx.sheet_name("长" * 40, used)) == 31


# --- charts --------------------------------------------------------------------------------


def test_charts_are_written_deterministically_without_a_software_stamp(written, tmp_path):
    names = sorted(p.name for p in (written / "charts").iterdir())
    assert {"business_category_share.png", "cause_share.png", "monthly_trend.png"} <= set(names)
    again = charts.write_charts(literal_tables(), tmp_path, "annual", "2025")
    for path in again:
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5_000
        assert b"matplotlib" not in data.lower()
        assert data == (written / "charts" / path.name).read_bytes()


def test_a_cjk_font_is_found_when_one_is_installed():
    from matplotlib import font_manager

    installed = [p for p in font_manager.findSystemFonts() if "cjk" in p.lower()]
    if not installed:
        pytest.skip("no CJK font on this machine (scripts/system-deps.sh installs one)")
    assert charts.cjk_font() is not None


def test_without_a_cjk_font_the_charts_warn_once_not_per_missing_glyph(
    tmp_path, monkeypatch, caplog
):
    """A machine without a CJK font (a new user's `make demo`): kesu's one warning, and none of
    matplotlib's per glyph, which printed ~240 lines under every report command."""
    import warnings

    monkeypatch.setattr(charts, "cjk_font", lambda: None)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        charts.write_charts(literal_tables(), tmp_path, "annual", "2025")
    assert [str(w.message) for w in shown if "Glyph" in str(w.message)] == []
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert caplog.records[0].message.startswith("no CJK font installed")
    with warnings.catch_warnings(record=True) as after:  # the filter ends with the charts
        warnings.simplefilter("always")
        warnings.warn("Glyph 23395 missing from font(s) DejaVu Sans.", UserWarning, stacklevel=1)
    assert len(after) == 1


# --- report.html ---------------------------------------------------------------------------


def test_html_is_self_contained_and_escapes_every_text(written):
    page = (written / reports.PAGE).read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert "<script" not in page and "<link" not in page
    assert 'src="http' not in page and "url(" not in page
    assert page.count('src="data:image/png;base64,') == 4
    assert "\t北京分行&lt;b&gt;" in page and "北京分行<b>" not in page
    assert "=HYPERLINK(&quot;http://x&quot;)" in page
    for title in labels.TABLE_TITLES.values():
        assert f"<h2>{title}</h2>" in page


def test_html_shows_shares_and_the_actual_share_total(written):
    page = (written / reports.PAGE).read_text(encoding="utf-8")
    assert '<td class="num">33.60%</td>' in page
    assert '<td class="num">100.01%</td>' in page  # the cause column as rounded, not forced
    assert '<td>投诉（合并重复后）</td><td class="num">125</td>' in page


def test_html_says_how_shares_were_rounded_under_every_table_the_workbook_notes(written, workbook):
    # the cause column adds to 100.01%: the page says why, as the workbook's footer does
    page = (written / reports.PAGE).read_text(encoding="utf-8")
    note = "注：占比按四舍五入保留2位小数，各行分别舍入，合计可能不等于100%；“合计”为本列所列数值之和。"
    sections = {
        name: page[page.index(f'<section id="{name}">') :].split("</section>")[0]
        for name in labels.TABLE_TITLES
    }
    noted = {name for name, section in sections.items() if note in section}
    footers = {n: workbook[t].oddFooter.left.text for n, t in labels.TABLE_TITLES.items()}
    footed = {name for name, footer in footers.items() if footer == note}
    assert noted == footed == {"by_business_category", "by_cause", "by_channel", "by_region",
                               "handling_time", "hotline_by_category"}  # fmt: skip
    # after the table, before the chart that follows it
    cause = sections["by_cause"]
    assert cause.index("</table>") < cause.index(note) < cause.index("<figure>")


def test_html_prints_counts_with_thousands_separators_as_the_workbook_does(written, workbook):
    # 1000 calls: the workbook's #,##0 shows 1,000; the page showed 1000
    page = (written / reports.PAGE).read_text(encoding="utf-8")
    assert '<td>来电量</td><td class="num">1,000</td>' in page
    kpis = workbook["客服热线服务指标"]
    assert (kpis["B3"].value, kpis["B3"].number_format) == (1000, "#,##0")


@pytest.mark.parametrize(
    ("value", "kind", "shown"),
    [
        (D("9033.00"), "count", "9,033"),  # a metric's count, stored as a Decimal
        (9033, "count", "9,033"),
        (125, "count", "125"),
        (D("1234.56"), "number", "1,234.56"),  # a measure keeps its stored decimals
        (12.4, "number", "12.40"),
        (D("33.60"), "percent", "33.60%"),  # percentages are never over 100 but as stored
        ("2025-Q3", "text", "2025-Q3"),
    ],
)
def test_display_of_a_cell(value, kind, shown):
    from kesu.reports.layout import display

    assert display(value, kind) == shown


def test_html_marks_an_empty_table():
    empty = literal_tables()["by_region"].clear()
    page = html.render({"by_region": empty}, "quarterly", "2025Q3", "2025-09-30", {})
    assert "本期无数据" in page and "2025年第三季度" in page


def test_html_of_a_period_no_drop_covers_says_so_in_its_title():
    empty = literal_tables()["by_region"].clear()
    no_drop = Coverage(None, None, complete=False)
    page = html.render({"by_region": empty}, "annual", "2024", "2025-07-01", {}, no_drop)
    assert "<title>2024年度（暂无数据）消费投诉统计报告</title>" in page
    assert "<h1>2024年度（暂无数据）消费投诉统计报告</h1>" in page
    assert "暂无数据覆盖本期：截至 2025-07-01 的数据批次均不在本期内" in page
    assert "数据截至" not in page
    partial = Coverage(date(2024, 1, 1), date(2024, 6, 30), complete=False)
    page = html.render({"by_region": empty}, "annual", "2024", "2024-06-30", {}, partial)
    assert "<h1>2024年度（数据截至2024年6月30日）消费投诉统计报告</h1>" in page
    assert "暂无数据" not in page


def test_a_period_no_drop_covers_whose_tables_hold_late_records_never_says_no_data(tmp_path):
    # 2024: no drop dated in it, yet complaints received in December came with January's drops
    # and fill the tables. Every text says both, none says the tables hold nothing.
    no_drop = Coverage(None, None, complete=False)
    late = tmp_path / "late"
    files.write_tables(literal_tables(), late / reports.TABLES_DIR)
    reports.write_presentation(late, kind="annual", period="2024", as_of="2025-12-31",
                               decimals=2, rounding="half_up", coverage=no_drop)  # fmt: skip
    page = (late / reports.PAGE).read_text(encoding="utf-8")
    text = (late / reports.DISCLOSURE).read_text(encoding="utf-8")
    title = openpyxl.load_workbook(late / reports.WORKBOOK).worksheets[0].cell(1, 1).value
    assert "<h1>2024年度（本期无数据批次，仅含后续批次报送的记录）消费投诉统计报告</h1>" in page
    assert ("暂无数据批次覆盖本期：截至 2025-12-31 的数据批次均不在本期内；以下各表仅有本期受理、"
            "随后续数据批次报送的记录，并非本期完整数据") in page  # fmt: skip
    assert "均无数据" not in page and "（暂无数据）" not in page
    assert title.startswith("2024年度（本期无数据批次，仅含后续批次报送的记录）")
    assert (
        text.splitlines()[0] == "# 2024年度（本期无数据批次，仅含后续批次报送的记录）消费投诉情况"
    )
    assert "暂无数据批次覆盖本期；现有数据仅有本期受理、随后续数据批次报送的记录" in text
    assert "共受理" not in text and "全年" not in text  # still no figure is disclosed
    # the same period with tables of zeros: nothing came at all, the empty wording stays
    empty = tmp_path / "empty"
    zeros = literal_tables()
    zeros["overview"] = zeros["overview"].with_columns(pl.col("value") * 0)
    zeros["hotline_kpis"] = zeros["hotline_kpis"].with_columns(pl.col("value") * 0)
    files.write_tables(zeros, empty / reports.TABLES_DIR)
    reports.write_presentation(empty, kind="annual", period="2024", as_of="2025-12-31",
                               decimals=2, rounding="half_up", coverage=no_drop)  # fmt: skip
    page = (empty / reports.PAGE).read_text(encoding="utf-8")
    assert "<h1>2024年度（暂无数据）消费投诉统计报告</h1>" in page and "以下各表均无数据" in page
    text = (empty / reports.DISCLOSURE).read_text(encoding="utf-8")
    assert "说明如下：暂无数据覆盖本期，尚无可披露的投诉及客服热线数据。" in text


# --- disclosure.md -------------------------------------------------------------------------


def test_disclosure_numbers_come_from_the_tables(written):
    text = (written / reports.DISCLOSURE).read_text(encoding="utf-8")
    assert text.startswith("# 2025年度消费投诉情况")
    assert "共受理消费投诉125件（合并重复后），较上年增加25件，同比上升25.00%" in text
    assert "监管转办投诉6件" in text
    # (42 + 30 + 25) / 125 from the counts; 其他 never ranks among the top three
    top = '前三类业务（“信用卡”、“=HYPERLINK("http://x")”和“贷款”）投诉合计占比77.60%'
    assert top in text
    # three causes of 1 each out of 6: 50.00% from counts, not 16.67 x 3 = 50.01
    assert "投诉合计占比50.00%" in text and "50.01" not in text.split("## 四")[1].split("|")[0]
    assert "| 信用卡 | 42 | 33.60% |" in text and "| 合计 | 125 | 100.00% |" in text
    assert "| 北京市 | 3 | 50.00% |" in text
    assert "前台业务渠道100件，占80.00%，其中营业现场60件（占前台业务渠道60.00%）" in text
    assert "来电1,000通，人工接通率92.30%，客户满意度98.10%" in text


def test_disclosure_says_when_there_is_no_previous_year_and_handles_a_decrease():
    tables = literal_tables()
    down = tables["overview"].with_columns(
        pl.when(pl.col("metric") == "complaints")
        .then(pl.lit(D("150")))
        .otherwise(pl.col("previous"))
        .cast(P)
        .alias("previous"),
        pl.when(pl.col("metric") == "complaints")
        .then(pl.lit(D("-16.67")))
        .otherwise(pl.col("change_pct"))
        .cast(P)
        .alias("change_pct"),
    )
    text = disclosure.render(tables | {"overview": down}, "2025", 2)
    assert "较上年减少25件，同比下降16.67%" in text
    unknown = tables["overview"].with_columns(pl.lit(None, dtype=P).alias("previous"))
    assert "上年无可比数据" in disclosure.render(tables | {"overview": unknown}, "2025", 2)


def test_disclosure_escapes_table_pipes():
    tables = literal_tables()
    tables["by_region"] = tables["by_region"].with_columns(pl.lit("甲|乙").alias("region"))
    assert "| 甲\\|乙 |" in disclosure.render(tables, "2025", 2)


def _causes(*rows: tuple[str, str, int]) -> pl.DataFrame:
    """A by_cause table of (code, name, complaints) rows, shares computed as the report does."""
    frame = pl.DataFrame(
        {"code": [r[0] for r in rows], "name": [r[1] for r in rows],
         "complaints": pl.Series([r[2] for r in rows], dtype=pl.Int64)}
    )  # fmt: skip
    return with_shares(frame, "complaints", "code", "half_up", 2)


@pytest.mark.parametrize(
    ("rows", "expect"),
    [
        # a third cause with 0 complaints is not named: two with complaints are "前两类"
        ([("C01", "服务态度", 3), ("C02", "定价收费", 1), ("C03", "信息披露", 0)],
         "前两类原因（“服务态度”和“定价收费”）投诉合计占比100.00%。"),
        # one cause with complaints (and 其他, which never ranks but counts in the total)
        ([("C01", "服务态度", 3), ("C02", "定价收费", 0), ("C03", "信息披露", 0),
          ("C99", "其他", 1)],
         "投诉最多的原因为“服务态度”，占比75.00%。"),
        # four with complaints, one of 0: the three largest, as before
        ([("C01", "服务态度", 4), ("C02", "定价收费", 3), ("C03", "信息披露", 2),
          ("C04", "消费者资金安全", 1), ("C05", "自主选择权", 0)],
         "前三类原因（“服务态度”、“定价收费”和“信息披露”）投诉合计占比90.00%。"),
        # no complaints at all (or only 其他): no sentence
        ([("C01", "服务态度", 0), ("C02", "定价收费", 0), ("C03", "信息披露", 0)], ""),
        ([("C99", "其他", 2)], ""),
    ],
    ids=["two", "one", "three-of-four", "none", "other-only"],
)  # fmt: skip
def test_the_top_sentence_names_only_rows_with_complaints(rows, expect):
    text = disclosure.render({"by_cause": _causes(*rows)}, "2025", 2)
    section = text.split("## 五、投诉原因分布")[1].split("|")[0].strip()
    assert section == expect


# --- the output folder ---------------------------------------------------------------------


def test_output_folder_is_replaced_whole_or_not_at_all(tmp_path):
    with output.replace_folder(tmp_path, "annual", "2025") as work:
        (work / "a.txt").write_text("first")
    live = tmp_path / "annual" / "2025"
    assert (live / "a.txt").read_text() == "first"
    with pytest.raises(RuntimeError), output.replace_folder(tmp_path, "annual", "2025") as work:
        (work / "a.txt").write_text("half")
        raise RuntimeError("crash while writing")
    assert (live / "a.txt").read_text() == "first"  # the old report, untouched
    assert sorted(p.name for p in (tmp_path / "annual").iterdir()) == ["2025"]  # and no lock
    with output.replace_folder(tmp_path, "annual", "2025") as work:
        (work / "b.txt").write_text("second")
    assert sorted(p.name for p in live.iterdir()) == ["b.txt"]  # nothing of the old one left
    assert [p.name for p in (tmp_path / "annual").iterdir() if ".tmp-" in p.name] == []


def test_a_failed_write_leaves_the_output_tree_as_it_found_it(tmp_path):
    root = tmp_path / "fresh" / "reports"  # a new --out: it and its parent are made for the run
    with pytest.raises(RuntimeError), output.replace_folder(root, "quarterly", "2025Q3") as work:
        (work / "tables").mkdir()
        raise RuntimeError("a report rule raised")
    assert not (tmp_path / "fresh").exists()  # an empty reports/quarterly/ stayed behind
    # an --out that was there stays; another report in the kind folder keeps that folder
    with output.replace_folder(root, "quarterly", "2025Q2") as work:
        (work / "a.txt").write_text("kept")
    with pytest.raises(RuntimeError), output.replace_folder(root, "quarterly", "2025Q3"):
        raise RuntimeError("a report rule raised")
    assert sorted(p.name for p in (root / "quarterly").iterdir()) == ["2025Q2"]
    with pytest.raises(RuntimeError), output.replace_folder(root, "annual", "2025"):
        raise RuntimeError("a report rule raised")
    assert sorted(p.name for p in root.iterdir()) == ["quarterly"]


def test_output_recovers_a_report_moved_aside_by_a_crash(tmp_path):
    (tmp_path / "annual" / ".2025.old-abc").mkdir(parents=True)
    (tmp_path / "annual" / ".2025.old-abc" / "x").write_text("old")
    (tmp_path / "annual" / ".2025.tmp-def").mkdir()
    done = output.recover(tmp_path, "annual", "2025")
    assert (tmp_path / "annual" / "2025" / "x").read_text() == "old"
    assert len(done) == 2 and not (tmp_path / "annual" / ".2025.tmp-def").exists()


def test_output_crash_between_the_two_renames_puts_the_old_report_back(tmp_path, monkeypatch):
    with output.replace_folder(tmp_path, "annual", "2025") as work:
        (work / "a.txt").write_text("first")
    real = output._rename

    def crash_before_moving_in(src, dst):
        if ".tmp-" in src.name:  # the live folder is already aside: the process dies here
            raise KeyboardInterrupt("killed")
        real(src, dst)

    monkeypatch.setattr(output, "_rename", crash_before_moving_in)
    with pytest.raises(KeyboardInterrupt), output.replace_folder(tmp_path, "annual", "2025") as w:
        (w / "b.txt").write_text("second")
    live = tmp_path / "annual" / "2025"
    assert not live.exists()  # the report is missing until the next write of it
    assert [p.name[:10] for p in (tmp_path / "annual").iterdir() if ".old-" in p.name] == [
        ".2025.old-"
    ]
    monkeypatch.setattr(output, "_rename", real)
    with output.replace_folder(tmp_path, "annual", "2025") as work:
        assert (live / "a.txt").read_text() == "first"  # put back before the new one is built
        (work / "c.txt").write_text("third")
    assert sorted(p.name for p in live.iterdir()) == ["c.txt"]
    assert sorted(p.name for p in (tmp_path / "annual").iterdir()) == ["2025"]


def test_output_lock_file_is_there_only_while_a_run_writes(tmp_path, monkeypatch):
    lock = tmp_path / "annual" / ".2025.lock"
    with output.replace_folder(tmp_path, "annual", "2025"):
        assert lock.exists()
        with pytest.raises(output.ReportBusy), output.replace_folder(tmp_path, "annual", "2025"):
            pass
    assert not lock.exists()
    # a run that opened the lock file just before its holder removed it gets the lock of a file
    # no other run can see: it locks the file now at the name instead
    stale = os.open(lock, os.O_RDWR | os.O_CREAT)
    lock.unlink()
    opened, real_open = [], os.open

    def stale_first(path, flags, mode=0o777):
        opened.append(path)
        return stale if len(opened) == 1 else real_open(path, flags, mode)

    monkeypatch.setattr(output.os, "open", stale_first)
    with output.replace_folder(tmp_path, "annual", "2025"):
        monkeypatch.undo()
        assert opened[:2] == [lock, lock] and lock.exists()
        with pytest.raises(output.ReportBusy), output.replace_folder(tmp_path, "annual", "2025"):
            pass  # the file at the name is the one locked
    assert not lock.exists()


@pytest.mark.parametrize("bad", ["../x", "", "2025/..", ".hidden"])
def test_output_refuses_unsafe_names(tmp_path, bad):
    with pytest.raises(ValueError), output.replace_folder(tmp_path, "annual", bad):
        pass


# --- warehouse.reader ----------------------------------------------------------------------


@pytest.fixture
def warehouse(tmp_path) -> Path:
    root = tmp_path / "wh"
    for day, ids in ((1, ["a", "b"]), (2, ["c"]), (3, ["d", "e", "f"])):
        frame = pl.DataFrame({"call_id": ids, "n": list(range(len(ids)))})
        publish_partition(
            Warehouse.at(root),
            "stg_hotline",
            f"drop_date=2025-03-0{day}",
            {"part-x.parquet": frame},
        )
    return root


def test_scan_reads_only_the_window_and_records_each_partition(warehouse):
    # a corrupt file outside the window proves those partitions are never opened
    for part in (warehouse / "stg_hotline" / "drop_date=2025-03-01").glob("*.parquet"):
        part.write_bytes(b"junk")
    frame, read = scan_table(
        Warehouse.at(warehouse), "stg_hotline", date(2025, 3, 2), date(2025, 3, 3)
    )
    got = frame.collect()
    assert sorted(got["call_id"]) == ["c", "d", "e", "f"]
    assert got.schema["drop_date"] == pl.Date
    assert [r.path for r in read] == [
        "stg_hotline/drop_date=2025-03-02",
        "stg_hotline/drop_date=2025-03-03",
    ]
    assert [r.rows for r in read] == [1, 3]
    assert [r.version for r in read] == [3, 3]  # the table version read (0: its creation)
    part = warehouse / read[0].files[0].path
    assert read[0].files[0].bytes == part.stat().st_size


def test_scan_at_a_recorded_version_ignores_later_corrections(warehouse):
    """Time travel: the version a report manifest recorded reads as it was then."""
    wh = Warehouse.at(warehouse)
    before, read = scan_table(wh, "stg_hotline", None, date(2025, 3, 3))
    fixed = pl.DataFrame({"call_id": ["c-fixed"], "n": [0]})
    publish_partition(wh, "stg_hotline", "drop_date=2025-03-02", {"part-x.parquet": fixed})
    again, read_again = scan_table(wh, "stg_hotline", None, date(2025, 3, 3), version=3)
    assert again.collect().sort("call_id").equals(before.collect().sort("call_id"))
    assert read_again == read
    latest = scan_table(wh, "stg_hotline", None, date(2025, 3, 3))[0].collect()
    assert "c-fixed" in latest["call_id"].to_list()


def test_an_empty_selection_keeps_the_schema(warehouse, tmp_path):
    frame, read = scan_table(
        Warehouse.at(warehouse), "stg_hotline", date(2024, 1, 1), date(2024, 1, 31)
    )
    assert read == [] and frame.collect().height == 0
    assert set(frame.collect_schema()) == {"call_id", "n", "drop_date"}
    # a table never loaded gets the staging schema
    frame, _ = scan_table(Warehouse.at(tmp_path / "none"), "stg_complaints", None, date(2025, 1, 1))
    assert dict(frame.collect_schema()) == staged_schema("stg_complaints") | {"drop_date": pl.Date}


def test_latest_drop_is_the_newest_partition_of_any_staged_table(warehouse, tmp_path):
    assert latest_drop(Warehouse.at(warehouse)) == date(2025, 3, 3)
    assert latest_drop(Warehouse.at(tmp_path / "empty")) is None


# --- kesu report (command line) ------------------------------------------------------------


def test_report_cli_parses_and_imports_nothing_heavy():
    code = (
        "import argparse, sys\n"
        "from kesu.flows import report_cli\n"
        "p = argparse.ArgumentParser(); sub = p.add_subparsers(dest='command')\n"
        "report_cli.add_parser(sub)\n"
        "a = p.parse_args(['report', 'annual', '2025', '--as-of', '2025-03-02', '--out', 'o'])\n"
        "assert (a.kind, a.period, str(a.as_of), a.out) == ('annual', '2025', '2025-03-02', 'o')\n"
        "heavy = [m for m in ('prefect', 'polars', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_workbook_percent_format_follows_the_configured_decimals(tmp_path):
    # [report] decimals = 1 gives Decimal(10, 1) shares: the cells show one decimal
    frame = pl.DataFrame(
        {"bucket": ["≤15天"], "complaints": [3], "share_pct": [D("100.0")]},
        schema_overrides={"share_pct": pl.Decimal(10, 1)},
    )
    xlsx.write_workbook({"handling_time": frame}, tmp_path / "r.xlsx", "quarterly", "2025Q3")
    sheet = openpyxl.load_workbook(tmp_path / "r.xlsx").active
    assert sheet["C3"].number_format == "0.0%" and sheet["C3"].value == 1.0
    assert sheet["A1"].value == "2025年第三季度 投诉办理时长分布"
    # decimals = 0: whole percents, as share_display and the html print them (it showed 25.00%)
    whole = frame.with_columns(pl.col("share_pct").cast(pl.Decimal(10, 0)))
    xlsx.write_workbook({"handling_time": whole}, tmp_path / "r0.xlsx", "quarterly", "2025Q3")
    assert openpyxl.load_workbook(tmp_path / "r0.xlsx").active["C3"].number_format == "0%"


def test_disclosure_note_follows_the_rounding_policy():
    tables = literal_tables()
    assert "合计可能不等于100%" in disclosure.render(tables, "2025", 2, "half_up")
    assert "尾差调整，合计为100%" in disclosure.render(tables, "2025", 2, "largest_remainder")
