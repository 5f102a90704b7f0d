"""`disclosure.md`: the annual public disclosure (年度消费投诉情况), written from the tables alone.

Follows what published disclosures say: the total after merging duplicates with its
year-on-year change, the business-category, region and cause distributions with shares, the
business-handling channels, and the hotline. A sentence such as "前三类业务投诉合计占比 x%" is
computed from the raw counts (half-up, decimal arithmetic), never by adding rounded shares.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
from kesu.reports import labels
from kesu.transforms.shares import is_other, top_share


def _pct(value: Any) -> str:
    return "—" if value is None else f"{value}%"


def _count(value: Any) -> str:
    return "—" if value is None else f"{int(value):,}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _metric(frame: pl.DataFrame | None, metric: str, column: str = "value") -> Any:
    if frame is None or "metric" not in frame.columns:
        return None
    rows = frame.filter(pl.col("metric") == metric)
    return rows[column][0] if rows.height else None


def _share_text(row: dict[str, Any]) -> str:
    return row.get("share_display") or _pct(row.get("share_pct"))


def _distribution(frame: pl.DataFrame, label_col: str, header: str) -> list[str]:
    lines = [f"| {header} | 投诉量（件） | 占比 |", "|---|---:|---:|"]
    for row in frame.iter_rows(named=True):
        name, count = _cell(row[label_col]), _count(row["complaints"])
        lines.append(f"| {name} | {count} | {_share_text(row)} |")
    total = sum(frame["complaints"].to_list())
    share_total = sum(v for v in frame["share_pct"].to_list() if v is not None)
    lines.append(f"| 合计 | {_count(total)} | {_pct(share_total) if frame.height else '—'} |")
    return lines


def _top(frame: pl.DataFrame, label_col: str, n: int, decimals: int) -> tuple[list[str], Any]:
    """The n largest named rows (其他 never ranks) and their combined share, from raw counts."""
    other = is_other(pl.col("code"), pl.col(label_col)) if "code" in frame.columns else None
    flagged = frame.with_columns(
        (other if other is not None else pl.lit(False)).fill_null(False).alias("_other")
    )
    named = flagged.filter(~pl.col("_other")).sort(
        "complaints", descending=True, maintain_order=True
    )
    other_count = sum(flagged.filter(pl.col("_other"))["complaints"].to_list())
    share = top_share(named["complaints"].to_list(), n, decimals, other=other_count)
    return [str(x) for x in named.head(n)[label_col].to_list()], share


def _top_sentence(frame: pl.DataFrame, label_col: str, what: str, decimals: int) -> str:
    if frame.height < 3:
        return ""
    names, share = _top(frame, label_col, 3, decimals)
    if len(names) < 3 or share is None:
        return ""
    quoted = [f"“{n}”" for n in names]  # names such as 管理制度、业务规则与流程 contain 、
    return f"前三类{what}（{'、'.join(quoted[:-1])}和{quoted[-1]}）投诉合计占比 {share}%。"


def _span(year: str, through: str | None) -> str:
    """'2025年' for a complete year, '2025年1月1日至6月30日' for one the data covers in part."""
    if not through:
        return f"{year}年"
    month, day = int(through[5:7]), int(through[8:10])
    return f"{year}年1月1日至{month}月{day}日"


def _headline(overview: pl.DataFrame | None, year: str, through: str | None = None) -> list[str]:
    value = _metric(overview, "complaints")
    previous = _metric(overview, "complaints", "previous")
    change = _metric(overview, "complaints", "change_pct")
    text = f"{_span(year, through)}，本行共受理消费投诉 {_count(value)} 件（合并重复后）"
    if value is None or previous is None:
        text += "，上年无可比数据"
    else:
        diff = int(value) - int(previous)
        if diff == 0:
            text += "，与上年持平"
        else:
            word = "增加" if diff > 0 else "减少"
            text += f"，较上年{word} {abs(diff):,} 件"
            if change is not None:
                trend = "上升" if diff > 0 else "下降"
                text += f"，同比{trend} {abs(Decimal(str(change)))}%"
    text += "。"
    transferred = _metric(overview, "regulator_transferred")
    if transferred is not None:
        text += f"其中，监管转办投诉 {_count(transferred)} 件。"
    return [text]


def _channel_paragraph(by_channel: pl.DataFrame) -> list[str]:
    if by_channel.height == 0:
        return ["本年度无可按业务办理渠道统计的投诉。"]
    top_level = by_channel["level"].min()
    rows = by_channel.to_dicts()
    parts = []
    for row in (r for r in rows if r["level"] == top_level):
        text = f"{row['name']} {_count(row['complaints'])} 件，占 {_pct(row['share_pct'])}"
        children = [r for r in rows if r.get("parent_code") == row["code"]]
        if children:
            inner = "、".join(
                f"{c['name']} {_count(c['complaints'])} 件（占{row['name']} "
                f"{_pct(c['share_of_parent_pct'])}）"
                for c in children
            )
            text += f"，其中{inner}"
        parts.append(text)
    return ["按业务办理渠道划分：" + "；".join(parts) + "。"]


def _hotline(kpis: pl.DataFrame | None, through: str | None = None) -> list[str]:
    calls = _metric(kpis, "calls")
    if calls is None:
        return ["本年度无客服热线数据。"]
    span = "全年" if not through else f"截至{int(through[5:7])}月{int(through[8:10])}日"
    text = f"本行客服热线{span}受理来电 {_count(calls)} 通"
    answer = _metric(kpis, "answer_rate")
    if answer is not None:
        text += f"，人工接通率 {_pct(answer)}"
    satisfaction = _metric(kpis, "survey_satisfaction_rate")
    if satisfaction is not None:
        text += f"，客户满意度 {_pct(satisfaction)}"
    responses = _metric(kpis, "survey_responses")
    if responses is not None:
        text += f"（参评 {_count(responses)} 通）"
    text += "。"
    intent, defused = _metric(kpis, "complaint_intent_calls"), _metric(kpis, "defused_calls")
    if intent:
        text += f"表达投诉意向的来电 {_count(intent)} 通，其中在通话中化解 {_count(defused)} 通。"
    return [text]


def _note(decimals: int, rounding: str) -> str:
    if rounding == "largest_remainder":
        return (
            f"注：投诉数量为合并重复投诉后的件数；占比保留{decimals}位小数，经尾差调整合计为100%。"
        )
    return (
        f"注：投诉数量为合并重复投诉后的件数；占比按四舍五入保留{decimals}位小数，"
        "合计可能不等于100%。"
    )


EMPTY = pl.DataFrame(
    schema={
        "code": pl.String,
        "name": pl.String,
        "complaints": pl.Int64,
        "share_pct": pl.Decimal(5, 2),
    }
)


def render(
    tables: dict[str, pl.DataFrame],
    year: str,
    decimals: int,
    rounding: str = "half_up",
    *,
    through: str | None = None,
    settings: dict[str, Any] | None = None,
) -> str:
    """The disclosure as Markdown; `through` = the last drop of a year the data does not cover
    completely (the text then never says 全年); `settings`: the [disclosure] configuration."""
    empty = EMPTY
    category = tables.get("by_business_category", empty)
    cause = tables.get("by_cause", empty)
    region = tables.get("by_region", empty.rename({"name": "region"}))
    out = [f"# {labels.period_title('annual', year, through)}消费投诉情况", ""]
    out += ["## 一、消费投诉总体情况", "", *_headline(tables.get("overview"), year, through), ""]
    out += ["## 二、投诉业务类别分布", ""]
    out += [_top_sentence(category, "name", "业务", decimals), ""]
    out += [*_distribution(category, "name", "业务类别"), ""]
    out += ["## 三、投诉地区分布", "", *_distribution(region, "region", "地区"), ""]
    out += ["## 四、投诉原因分布", ""]
    out += [_top_sentence(cause, "name", "原因", decimals), ""]
    out += [*_distribution(cause, "name", "投诉原因"), ""]
    if "by_channel" in tables:
        out += ["## 五、投诉业务办理渠道分布", "", *_channel_paragraph(tables["by_channel"]), ""]
    out += ["## 六、客服热线服务情况", "", *_hotline(tables.get("hotline_kpis"), through), ""]
    out += [_note(decimals, rounding), ""]
    text = "\n".join(out)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text
