"""The watch list's files: `tables/*.parquet|csv`, `watch.xlsx` and `watch.html`.

Renders the tables it is given (kesu.transforms.watch); computes nothing. In the workbook and
the page, overdue rows (days_left < 0) are highlighted; the tables arrive sorted by days_left.
A row listed as it was before a newer version held in quarantine (`held_update` set) has its
held columns marked, its rule and reason in Chinese, and the title above says how many.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import polars as pl
from kesu.reports import files
from kesu.reports.quarantine_reasons import reason_zh, rule_title
from kesu.reports.xlsx import (
    REASON_WIDTH,
    display_width,
    fit_wrapped_rows,
    print_setup,
    safe_workbook,
    sheet_name,
    write_text,
)
from kesu.transforms.watch import HELD_MARK

TABLES_DIR = "tables"
WORKBOOK = "watch.xlsx"
PAGE = "watch.html"
TITLES = {"due_soon": "临期及超期未办结", "volume_alerts": "投诉量异动预警"}
HEADERS = {
    "kind": "类型",
    "id": "编号",
    "branch_code": "机构代码",
    "branch_name": "机构名称",
    "business_category": "业务类别",
    "received_on": "受理日期",
    "due_on": "办理期限",
    "days_left": "剩余天数",
    "status": "状态",
    "customer_masked": "客户",
    "held_update": "隔离中的更新（数据日期）",
    "held_rule": "隔离规则",
    "held_reason": "隔离原因",
    "last_7_days": "近7日投诉",
    "baseline_mean": "前8周周均",
    "baseline_sd": "前8周标准差",
    "score": "异动分值",
}
KINDS = {"complaint": "投诉", "transfer": "监管转办"}
OVERDUE_FILL = "#F8CBAD"
HELD_FILL = "#FFE699"


def held_note(frame: pl.DataFrame, unlisted: int = 0) -> str:
    """What the title of the due-soon table adds when rows are listed as before a held version,
    and when complaints are left out because every version of theirs is held (`unlisted`)."""
    held = frame["held_update"].is_not_null().sum() if "held_update" in frame.columns else 0
    note = ""
    if held:
        note += (f"（其中{held}件有较新版本被隔离，按隔离前的版本列出，可能已办结，"
                 "请先核实：见“隔离中的更新”列）")  # fmt: skip
    if unlisted:
        note += (f"（另有{unlisted}件投诉的所有版本均被隔离、从未入库，无法计算办理期限，"
                 "未列入本表：请用 kesu quarantine 查看并更正）")  # fmt: skip
    return note


def _cell(column: str, value: Any) -> Any:
    if value is None:
        return ""
    if column == "kind":
        return KINDS.get(value, value)
    if column == "held_rule":
        return rule_title(value)
    if column == "held_reason":
        return reason_zh(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _overdue(row: dict[str, Any]) -> bool:
    return row.get("days_left") is not None and row["days_left"] < 0


def _held(row: dict[str, Any], column: str) -> bool:
    return column in HELD_MARK and row.get("held_update") is not None


def write_workbook(
    tables: dict[str, pl.DataFrame], path: Path, drop: str, unlisted: int = 0
) -> Path:
    """One sheet per table: title, Chinese headers, rows; overdue rows filled; print-ready.
    `unlisted`: complaints held whole in quarantine, which the due-soon title counts."""
    heading = f"{drop} 投诉预警清单"
    book = safe_workbook(path, heading)
    title = book.add_format({"bold": True, "font_size": 14})
    header = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    plain = book.add_format({"border": 1})
    late = book.add_format({"border": 1, "bg_color": OVERDUE_FILL})
    held = book.add_format({"border": 1, "bg_color": HELD_FILL, "text_wrap": True,
                            "valign": "top"})  # fmt: skip
    used: set[str] = set()
    for name in ("due_soon", "volume_alerts"):
        frame = tables[name]
        sheet = book.add_worksheet(sheet_name(TITLES[name], used))
        note = held_note(frame, unlisted if name == "due_soon" else 0)
        write_text(sheet, 0, 0, f"{heading} {TITLES[name]}{note}", title)
        widths = [display_width(HEADERS.get(c, c)) for c in frame.columns]
        for j, column in enumerate(frame.columns):
            write_text(sheet, 1, j, HEADERS.get(column, column), header)
        reasons: list[tuple[int, str]] = []  # the wrapped cells: (row, text)
        for i, row in enumerate(frame.iter_rows(named=True), start=2):
            for j, column in enumerate(frame.columns):
                fmt = held if _held(row, column) else late if _overdue(row) else plain
                value = _cell(column, row[column])
                if isinstance(value, int | float) and not isinstance(value, bool):
                    sheet.write_number(i, j, value, fmt)
                else:
                    write_text(sheet, i, j, value, fmt)
                widths[j] = max(widths[j], display_width(str(value)))
                if _held(row, column) and column == "held_reason":
                    reasons.append((i, str(value)))
        shown = [min(max(w + 2, 8), REASON_WIDTH if c == "held_reason" else 60)
                 for w, c in zip(widths, frame.columns, strict=True)]  # fmt: skip
        for j, width in enumerate(shown):
            sheet.set_column(j, j, width)
        if "held_reason" in frame.columns:
            wide = shown[frame.columns.index("held_reason")]
            fit_wrapped_rows(sheet, [(i, text, wide) for i, text in reasons])
        sheet.freeze_panes(2, 0)
        print_setup(sheet)  # as report.xlsx: A4 landscape, one page wide, headers repeated
    book.close()
    return path


def _html_cell(row: dict[str, Any], column: str) -> str:
    value = _cell(column, row[column])
    classes = ["held"] if _held(row, column) else []
    if isinstance(value, int | float) and not isinstance(value, bool):
        classes.append("num")  # numbers right-aligned, as in report.html
    attrs = f' class="{" ".join(classes)}"' if classes else ""
    return f"<td{attrs}>{escape(str(value))}</td>"


def render_html(tables: dict[str, pl.DataFrame], drop: str, within: int, unlisted: int = 0) -> str:
    """A self-contained page: both tables, overdue rows highlighted, every text escaped."""
    sections = []
    for name in ("due_soon", "volume_alerts"):
        frame = tables[name]
        head = "".join(f"<th>{escape(HEADERS.get(c, c))}</th>" for c in frame.columns)
        body = []
        for row in frame.iter_rows(named=True):
            cells = "".join(_html_cell(row, c) for c in frame.columns)
            attrs = ' class="overdue"' if _overdue(row) else ""
            body.append(f"<tr{attrs}>{cells}</tr>")
        if not body:
            body.append(f'<tr><td colspan="{len(frame.columns)}">无</td></tr>')
        heading = escape(TITLES[name] + held_note(frame, unlisted if name == "due_soon" else 0))
        sections.append(f"<h2>{heading}</h2>\n<table><thead><tr>{head}</tr></thead>"
                        f"<tbody>{''.join(body)}</tbody></table>")  # fmt: skip
    title = f"{drop} 投诉预警清单"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="zh-CN">', '<head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "th,td{border:1px solid #C8D3E0;padding:.3em .6em}th{background:#DDEBF7}"
        "td.num{text-align:right;font-variant-numeric:tabular-nums}"
        f"tr.overdue td{{background:{OVERDUE_FILL}}}tr td.held{{background:{HELD_FILL}}}"
        "</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>截至{escape(drop)}日终：已超期或{within}日内到期的未办结投诉与监管转办件；"
        "近7日投诉量明显高于前8周的机构与业务类别。超期行以底色标出；"
        "“隔离中的更新”标黄的投诉有较新版本因数据问题被隔离，按隔离前的版本列出。</p>",
        *sections, "</body></html>", "",
    ])  # fmt: skip


def write_watch(tables: dict[str, pl.DataFrame], folder: Path, drop: str, within: int,
                unlisted: int = 0) -> list[str]:  # fmt: skip
    """Every file of the watch list under `folder`; their paths relative to it. `unlisted`:
    complaints every version of which is held in quarantine (`watch.never_loaded`)."""
    written = files.write_tables(tables, folder / TABLES_DIR)
    written.append(write_workbook(tables, folder / WORKBOOK, drop, unlisted))
    (folder / PAGE).write_text(render_html(tables, drop, within, unlisted), encoding="utf-8")
    written.append(folder / PAGE)
    return [p.relative_to(folder).as_posix() for p in written]
