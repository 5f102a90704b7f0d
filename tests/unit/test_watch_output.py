"""The watch list's files (kesu.reports.watch_output) over literal rows: a row listed as it was
before a newer version held in quarantine is marked in the page and the workbook, in Chinese."""

from __future__ import annotations

import datetime as dt

import openpyxl
import polars as pl
from kesu.reports.watch_output import write_watch
from kesu.transforms.watch import DUE_SOON, VOLUME_ALERTS

REASON = (  # as staging writes it
    "更新时间 (updated_at): not a date-time in YYYY-MM-DD HH:MM:SS, YYYY/MM/DD HH:MM or "
    "YYYY年MM月DD日: N/A"
)


def due_rows() -> pl.DataFrame:
    def one(id_: str, days_left: int, held: tuple | None) -> dict:
        update, rule, reason = held or (None, None, None)
        return {"kind": "complaint", "id": id_, "branch_code": "0101", "branch_name": "总行营业部",
                "business_category": "借记卡", "received_on": dt.date(2025, 6, 1),
                "due_on": dt.date(2025, 6, 16), "days_left": days_left, "status": "处理中",
                "customer_masked": "王*", "held_update": update, "held_rule": rule,
                "held_reason": reason}  # fmt: skip

    rows = [
        one("HELD", -14, (dt.date(2025, 6, 20), "unparseable", REASON)),
        one("PLAIN", -13, None),
    ]
    held = {"held_update": pl.Date, "held_rule": pl.String, "held_reason": pl.String}
    schema = dict.fromkeys(DUE_SOON, pl.String) | held | {
        "received_on": pl.Date, "due_on": pl.Date, "days_left": pl.Int64,
    }  # fmt: skip
    return pl.DataFrame(rows, schema=schema)


def written(tmp_path) -> tuple[str, openpyxl.Workbook]:
    alerts = pl.DataFrame(schema=dict.fromkeys(VOLUME_ALERTS, pl.String))
    write_watch({"due_soon": due_rows(), "volume_alerts": alerts}, tmp_path, "2025-06-30", 5)
    page = (tmp_path / "watch.html").read_text(encoding="utf-8")
    return page, openpyxl.load_workbook(tmp_path / "watch.xlsx")


def test_complaints_held_whole_are_counted_in_the_title_of_page_and_workbook(tmp_path):
    alerts = pl.DataFrame(schema=dict.fromkeys(VOLUME_ALERTS, pl.String))
    tables = {"due_soon": due_rows(), "volume_alerts": alerts}
    write_watch(tables, tmp_path, "2025-06-30", 5, unlisted=2)
    page = (tmp_path / "watch.html").read_text(encoding="utf-8")
    book = openpyxl.load_workbook(tmp_path / "watch.xlsx")
    note = "（另有2件投诉的所有版本均被隔离、从未入库，无法计算办理期限"
    assert page.count(note) == 1  # in the due-soon heading, not the volume alerts'
    assert note in book["临期及超期未办结"].cell(1, 1).value
    assert "另有" not in book["投诉量异动预警"].cell(1, 1).value
    page, book = written(tmp_path / "none")  # none held whole: no such note
    assert "另有" not in page and "另有" not in book["临期及超期未办结"].cell(1, 1).value


def test_a_held_row_is_marked_in_the_page_with_its_rule_and_reason_in_chinese(tmp_path):
    page, _ = written(tmp_path)
    # the heading says how many rows are listed as before a held version
    assert "（其中1件有较新版本被隔离" in page
    held_row = next(line for line in page.split("<tr") if ">HELD<" in line)
    plain_row = next(line for line in page.split("<tr") if ">PLAIN<" in line)
    assert held_row.count('class="held"') == 3
    assert '<td class="held">2025-06-20</td>' in held_row
    assert '<td class="held">无法解析</td>' in held_row
    assert "更新时间：不是日期时间" in held_row and "updated_at" not in held_row
    assert 'class="held"' not in plain_row


def test_a_held_row_is_marked_in_the_workbook_with_its_rule_and_reason_in_chinese(tmp_path):
    _, book = written(tmp_path)
    sheet = book["临期及超期未办结"]
    assert "其中1件有较新版本被隔离" in sheet["A1"].value
    headers = [c.value for c in sheet[2]]
    update, rule, reason = (headers.index(h) + 1 for h in ("隔离中的更新（数据日期）", "隔离规则",
                                                          "隔离原因"))  # fmt: skip
    assert sheet.max_row == 4  # title, header, two rows: the note is in the title, not a row
    assert (sheet.cell(3, update).value, sheet.cell(3, rule).value) == ("2025-06-20", "无法解析")
    assert sheet.cell(3, reason).value.startswith("更新时间：不是日期时间")
    assert sheet.cell(3, reason).alignment.wrap_text
    fill = "FFFFE699"  # the held columns' yellow, not the overdue row's orange (FFF8CBAD)
    assert {sheet.cell(3, c).fill.fgColor.rgb for c in (update, rule, reason)} == {fill}
    assert sheet.cell(4, update).fill.fgColor.rgb != fill  # nothing held: not marked


def test_the_workbook_is_print_ready_as_the_reports_are(tmp_path):
    # it printed portrait, 4 pages for 9 rows, rows split across pages
    _, book = written(tmp_path)
    for sheet in book.worksheets:
        setup = sheet.page_setup
        assert (setup.paperSize, setup.orientation) == (9, "landscape")  # A4 landscape
        assert sheet.sheet_properties.pageSetUpPr.fitToPage
        # one page wide (1 is the file format's default, left out), any number of pages high
        assert (setup.fitToWidth or 1, setup.fitToHeight) == (1, 0)
        assert sheet.print_title_rows == "$1:$2"  # title and header on every page
        assert "&P" in sheet.oddFooter.center.text  # page numbers


def test_a_wrapped_reason_gets_a_row_tall_enough_to_show_it(tmp_path):
    # a row without a height stays one line in LibreOffice and in print: the reason was cut
    _, book = written(tmp_path)
    sheet = book["临期及超期未办结"]
    reason = [c.value for c in sheet[2]].index("隔离原因") + 1
    width = sheet.column_dimensions[openpyxl.utils.get_column_letter(reason)].width
    assert width <= 50 + 1  # capped (openpyxl reads back the width plus the cell padding)
    assert sheet.row_dimensions[3].height >= 2 * 15  # two lines of the 11-point font at least
    assert sheet.row_dimensions[4].height is None  # nothing wrapped: Excel's own height


def test_numbers_are_right_aligned_in_the_page(tmp_path):
    page, _ = written(tmp_path)
    held_row = next(line for line in page.split("<tr") if ">HELD<" in line)
    assert '<td class="num">-14</td>' in held_row  # days_left, aligned as report.html aligns
    assert "td.num{text-align:right" in page
