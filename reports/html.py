"""`report.html`: one self-contained page, readable from disk without a server or network.

Inline CSS, charts embedded as base64 PNG data URLs, no script, no external URL. Every piece of
text from the data goes through `html.escape`.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

import polars as pl
from kesu.reports import labels
from kesu.reports.layout import TableView, display, table_view
from kesu.transforms.periods import Coverage

CSS = """
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC",
  "Microsoft YaHei", "WenQuanYi Zen Hei", sans-serif; margin: 2em auto; max-width: 1100px;
  color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; border-bottom: 2px solid #2F6DB5; padding-bottom: .3em; }
h2 { font-size: 1.2em; margin-top: 2em; color: #2F6DB5; }
p.meta { color: #666; font-size: .9em; }
p.note { color: #666; font-size: .85em; margin-top: -.5em; }
nav ol { columns: 2; font-size: .95em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: .9em; }
th, td { border: 1px solid #C8D3E0; padding: .3em .7em; }
th { background: #DDEBF7; text-align: center; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.level2 { padding-left: 1.8em; } td.level3 { padding-left: 2.9em; }
td.level4 { padding-left: 4em; }
tr.total td { font-weight: bold; border-top: 2px solid #555; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; }
"""

CHART_CAPTIONS = {
    "business_category_share": "投诉业务类别占比",
    "cause_share": "投诉原因占比",
    "region_share": "投诉地区占比",
    "monthly_trend": "月度趋势",
}
# Which chart goes after which table.
CHART_AFTER = {
    "business_category_share": "by_business_category",
    "cause_share": "by_cause",
    "region_share": "by_region",
    "monthly_trend": "monthly_trend",
}


def _table_html(view: TableView) -> str:
    head = "".join(f"<th>{escape(c.header)}</th>" for c in view.columns)
    body = []
    for values, kinds in zip(view.rows, view.cell_kinds, strict=True):
        body.append(_row(view, values, kinds, ""))
    if view.total is not None:
        body.append(_row(view, view.total, view.total_kinds, ' class="total"'))
    if not view.rows:
        body.append(f'<tr><td colspan="{len(view.columns)}">本期无数据</td></tr>')
    return (
        f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(body)
        + "\n</tbody>\n</table>"
    )


def _row(view: TableView, values: list, kinds: list, attrs: str) -> str:
    named = dict(zip((c.name for c in view.columns), values, strict=True))
    level = named.get("level")
    cells = []
    for column, value, kind in zip(view.columns, values, kinds, strict=True):
        text = display(value, kind, column.decimals or 2)
        cls = ' class="num"' if kind != "text" or column.name == "share_display" else ""
        if column.name == "name" and isinstance(level, int) and level > 1:  # channel tree
            cls = f' class="level{min(level, 4)}"'
        cells.append(f"<td{cls}>{escape(text)}</td>")
    return f"<tr{attrs}>{''.join(cells)}</tr>"


def _figure(stem: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    caption = escape(CHART_CAPTIONS.get(stem, stem))
    return f'<figure><img src="data:image/png;base64,{data}" alt="{caption}"></figure>'


def _meta(as_of: str, coverage: Coverage | None) -> str:
    """The line under the title: what the data is as of, and how it is counted. A period no
    drop covers says so instead (its tables' zeros are not counts; 数据截至 the as-of day would
    read as data of the period up to that day), and, when its tables hold records that came
    with later drops, that they are those and not the whole period."""
    if coverage is not None and coverage.empty and coverage.late_records:
        return (f'<p class="meta">{labels.NO_DROP}：截至 {escape(as_of)} 的数据批次均不在本期内；'
                f"以下各表{labels.LATE_RECORDS}（按受理时间归属期间）。</p>")  # fmt: skip
    if coverage is not None and coverage.empty:
        return (f'<p class="meta">{labels.NO_DATA}覆盖本期：截至 {escape(as_of)} 的数据批次均不在'
                f"本期内，以下各表均无数据。</p>")  # fmt: skip
    return (f'<p class="meta">数据截至 {escape(as_of)}（按受理时间归属期间；投诉数均为合并重复后，'
            f"另有注明者除外）</p>")  # fmt: skip


def render(
    tables: dict[str, pl.DataFrame],
    kind: str,
    period: str,
    as_of: str,
    charts: dict[str, bytes],
    coverage: Coverage | None = None,
    note: str | None = None,
) -> str:
    """The page as text; `charts` maps a chart's file stem to its PNG bytes; `coverage` None:
    the period is complete; `note` (how shares were rounded, as the workbook's footer) under
    every table of shares."""
    heading = labels.period_title(kind, period, coverage)
    names = labels.ordered(list(tables))
    toc = "".join(
        f'<li><a href="#{escape(n)}">{escape(labels.table_title(n))}</a></li>' for n in names
    )
    sections = []
    placed = set()
    for name in names:
        view = table_view(name, tables[name], kind, "html")
        parts = [f'<section id="{escape(name)}">', f"<h2>{escape(view.title)}</h2>"]
        parts.append(_table_html(view))
        if note and view.shares:
            parts.append(f'<p class="note">{escape(note)}</p>')
        for stem, table in CHART_AFTER.items():
            if table == name and stem in charts:
                parts.append(_figure(stem, charts[stem]))
                placed.add(stem)
        parts.append("</section>")
        sections.append("\n".join(parts))
    extra = [_figure(s, png) for s, png in sorted(charts.items()) if s not in placed]
    title = f"{heading}消费投诉统计报告"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="zh-CN">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title>",
            f"<style>{CSS}</style>",
            "</head>",
            "<body>",
            f"<h1>{escape(title)}</h1>",
            _meta(as_of, coverage),
            f"<nav><ol>{toc}</ol></nav>",
            *sections,
            *extra,
            "</body>",
            "</html>",
            "",
        ]
    )


def write_html(
    tables: dict[str, pl.DataFrame],
    path: Path,
    kind: str,
    period: str,
    as_of: str,
    chart_files: list[Path],
    coverage: Coverage | None = None,
    note: str | None = None,
) -> Path:
    charts = {p.stem: p.read_bytes() for p in chart_files}
    page = render(tables, kind, period, as_of, charts, coverage, note)
    path.write_text(page, encoding="utf-8")
    return path
