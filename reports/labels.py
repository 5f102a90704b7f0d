"""Report vocabulary: the Chinese title of each table and the header of each column.

One dict per table (reports.md names the tables and columns). A column missing here is shown
under its own name, so a new builder column never breaks a report, it only reads less well.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from kesu.reports.quarantine_reasons import reason_zh, rule_title

if TYPE_CHECKING:  # a type only: `kesu report --help` imports this module and no Polars
    from datetime import date

    from kesu.transforms.periods import Coverage

# Tables in report order; the xlsx sheets and the HTML sections follow it.
TABLE_TITLES = {
    "overview": "投诉概况",
    "by_business_category": "投诉业务类别分布",
    "by_cause": "投诉原因分布",
    "by_channel": "投诉业务办理渠道分布",
    "by_region": "投诉地区分布",
    "branch_scorecard": "分支机构投诉情况",
    "handling_time": "投诉办理时长分布",
    "regulator_transfers": "监管转办投诉办理情况",
    "hotline_by_category": "客服热线来电业务分类",
    "hotline_kpis": "客服热线服务指标",
    "monthly_trend": "月度趋势",
    "held_updates": "被隔离的投诉更新",
    "unmapped_labels": "未映射标签（归入其他）",
}

OVERVIEW = {
    "metric": "指标代码",
    "label": "指标",
    "value": "本期",
    "previous": "上期",
    "change_pct": "变动",
    "change_pp": "变动（百分点）",
}
BY_BUSINESS_CATEGORY = {
    "code": "业务类别代码",
    "name": "业务类别",
    "complaints": "投诉量（件）",
    "share_pct": "占比",
    "share_display": "占比",
}
BY_CAUSE = {
    "code": "投诉原因代码",
    "name": "投诉原因",
    "complaints": "投诉量（件）",
    "share_pct": "占比",
    "share_display": "占比",
}
BY_CHANNEL = {
    "code": "渠道代码",
    "name": "业务办理渠道",
    "level": "层级",
    "parent_code": "上级渠道代码",
    "complaints": "投诉量（件）",
    "share_pct": "占投诉总量比例",
    "share_of_parent_pct": "占上级渠道比例",
}
BY_REGION = {
    "region": "地区",
    "complaints": "投诉量（件）",
    "share_pct": "占比",
    "share_display": "占比",
}
BRANCH_SCORECARD = {
    "branch_code": "机构代码",
    "branch_name": "机构名称",
    "regulator_transferred": "监管转办投诉",
    "direct_complaints": "客户之声投诉",
    "opinions": "意见",
    "valid_complaints": "有效投诉",
    "praises": "表扬",
    "on_time_rate": "按时办结率",
    "backlog_open_at_end": "往期投诉期末未办结",
    "backlog_overdue_at_end": "往期投诉期末超时限未办结",
}
HANDLING_TIME = {
    "bucket": "办理时长",
    "complaints": "投诉量（件）",
    "share_pct": "占比",
}
REGULATOR_TRANSFERS = {
    "regulator": "转办机构",
    "received": "转办件数",
    "replied": "已回复",
    "replied_on_time": "按期回复",
    "replied_late": "逾期回复",
    "open": "未回复",
    "open_overdue": "未回复且已逾期",
    "on_time_rate": "按期回复率",
}
HOTLINE_BY_CATEGORY = {
    "category": "业务大类",
    "calls": "来电量（通）",
    "share_pct": "占比",
    "dissatisfied": "不满意来电",
    "complaint_intent": "投诉倾向来电",
    "defused": "化解",
    "converted": "转投诉",
}
HOTLINE_KPIS = {
    "metric": "指标代码",
    "label": "指标",
    "value": "数值",
}
MONTHLY_TREND = {
    "month": "月份",
    "complaints": "投诉",
    "opinions": "意见",
    "praises": "表扬",
    "regulator_transferred": "监管转办投诉",
    "calls": "热线来电",
}
HELD_UPDATES = {
    "complaint_id": "投诉编号",
    "drop_date": "数据日期",
    "rule": "隔离规则",
    "reason": "隔离原因",
}
UNMAPPED_LABELS = {"axis": "分类维度", "label": "源系统标签", "mapped_to": "归入代码",
                   "tickets": "工单数"}  # fmt: skip

COLUMN_LABELS: dict[str, dict[str, str]] = {
    "overview": OVERVIEW,
    "by_business_category": BY_BUSINESS_CATEGORY,
    "by_cause": BY_CAUSE,
    "by_channel": BY_CHANNEL,
    "by_region": BY_REGION,
    "branch_scorecard": BRANCH_SCORECARD,
    "handling_time": HANDLING_TIME,
    "regulator_transfers": REGULATOR_TRANSFERS,
    "hotline_by_category": HOTLINE_BY_CATEGORY,
    "hotline_kpis": HOTLINE_KPIS,
    "monthly_trend": MONTHLY_TREND,
    "held_updates": HELD_UPDATES,
    "unmapped_labels": UNMAPPED_LABELS,
}

# What the overview's `previous` and `change_pct` compare with, by report kind.
COMPARISON = {
    "quarterly": {"previous": "上季度", "change_pct": "环比变动"},
    "annual": {"previous": "上年", "change_pct": "同比变动"},
    "monthly": {
        "previous": "上月",
        "change_pct": "环比变动",
        "previous_year": "上年同月",
        "change_yoy_pct": "同比变动",
    },  # fmt: skip
}

# Columns holding percentages (0-100), in every table where they occur.
PERCENT_COLUMNS = frozenset({"share_pct", "share_of_parent_pct", "on_time_rate", "change_pct"})
PERCENT_COLUMNS |= {"change_yoy_pct"}  # monthly overview
# Metric rows of `overview` / `hotline_kpis` whose value is a percentage (0-100).
PERCENT_METRICS = frozenset(
    {
        "close_rate",
        "repeat_rate",
        "callback_satisfaction_rate",
        "answer_rate",
        "service_level",
        "survey_satisfaction_rate",
    }
)
# Metric rows whose value is a measure, not a count (shown with decimals).
MEASURE_METRICS = frozenset(
    {"avg_handling_days", "asa_seconds", "complaints_per_outlet_month",
     "complaints_per_10m_customers"}
)  # fmt: skip
PERCENT_UNITS = ("（%）", "(%)")


def without_percent_unit(label: str) -> str:
    """'办结率（%）' -> '办结率' where the cell itself is formatted as a percentage."""
    for unit in PERCENT_UNITS:
        label = label.removesuffix(unit)
    return label


# Columns shown to readers in the xlsx and HTML only through another one (same content).
HIDDEN_COLUMNS = {
    # share_pct is shown as a formatted number in the workbook, share_display in the HTML
    "xlsx": frozenset({"share_display", "metric"}),
    "html": frozenset({"share_pct", "metric"}),
}
# Columns whose stored text (English, as the warehouse keeps it) a reader sees translated: the
# quarantine's rules and reasons, as the quarantine export shows them (reports.quarantine_reasons).
SHOWN_AS: dict[str, dict[str, Callable[[str], str | None]]] = {
    "held_updates": {"rule": rule_title, "reason": reason_zh},
}
# Columns of long text: wrapped in the workbook, at most xlsx.REASON_WIDTH characters wide.
WRAPPED_COLUMNS = frozenset({"reason"})
# Tables whose rows are metrics or overlapping levels: no plain 合计 row.
NO_TOTAL = frozenset({"overview", "hotline_kpis", "held_updates", "unmapped_labels"})
TOTAL_LABEL = "合计"

_QUARTERS = {"1": "第一季度", "2": "第二季度", "3": "第三季度", "4": "第四季度"}


def table_title(name: str) -> str:
    return TABLE_TITLES.get(name, name)


def column_labels(name: str, kind: str) -> dict[str, str]:
    """{column: Chinese header} of one table in a report of this kind."""
    labels = dict(COLUMN_LABELS.get(name, {}))
    if name == "overview":
        labels |= COMPARISON.get(kind, {})
    return labels


NO_DATA = "暂无数据"  # the titles of a period no drop covers (--allow-empty)
# A period no drop covers whose tables still hold records received in it, from later drops
# (Coverage.late_records): its texts say both, never "no data" above tables that hold data.
NO_DROP = "暂无数据批次覆盖本期"
LATE_RECORDS = "仅有本期受理、随后续数据批次报送的记录，并非本期完整数据"
LATE_TITLE = "本期无数据批次，仅含后续批次报送的记录"


def coverage_note(coverage: Coverage | None) -> str:
    """What the titles add about a period's coverage: '' when complete (or not given),
    '（数据截至2025年6月30日）' when its drops reach that day only, '（暂无数据）' when no drop
    covers it at all (there is no day to name), or LATE_TITLE when no drop covers it but records
    of it came with later drops."""
    if coverage is None or coverage.complete:
        return ""
    if coverage.through is None:  # not complete, yet no day reached: no drop at all
        return f"（{LATE_TITLE if coverage.late_records else NO_DATA}）"
    return f"（数据截至{day_text(coverage.through)}）"


def day_text(day: date, year: bool = True) -> str:
    """'2025年6月30日' ('6月30日' without the year), as Chinese official text writes a date."""
    return (f"{day.year}年" if year else "") + f"{day.month}月{day.day}日"


def period_title(kind: str, period: str, coverage: Coverage | None = None) -> str:
    """'2025年第三季度' for quarterly 2025Q3, '2025年度' for annual 2025; an incomplete period
    says how far it reaches: '2025年度（数据截至2025年6月30日）', or '2025年度（暂无数据）'."""
    return _period_title(kind, period) + coverage_note(coverage)


def _period_title(kind: str, period: str) -> str:
    if kind == "quarterly" and "Q" in period.upper():
        year, quarter = period.upper().split("Q", 1)
        return f"{year}年{_QUARTERS.get(quarter, quarter + '季度')}"
    if kind == "annual":
        return f"{period}年度"
    if kind == "monthly" and "-" in period:
        year, month = period.split("-", 1)
        return f"{year}年{int(month)}月"
    return period


def ordered(names: list[str]) -> list[str]:
    """Table names in report order; unknown tables last, alphabetically."""
    known = [n for n in TABLE_TITLES if n in names]
    return known + sorted(n for n in names if n not in TABLE_TITLES)


def share_note(rounding: str, decimals: int) -> str:
    """The footnote under a table of shares: how they were rounded, what 合计 adds up."""
    if rounding == "largest_remainder":
        how = f"占比保留{decimals}位小数，按最大余数法进行尾差调整，合计为100%"
    else:
        how = f"占比按四舍五入保留{decimals}位小数，各行分别舍入，合计可能不等于100%"
    return f"注：{how}；“合计”为本列所列数值之和。"
