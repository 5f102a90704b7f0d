"""`summary.md` of a monthly report: the 总体情况 paragraph of the 客户之声 bulletin.

Worded the way banks' bulletins word it ("4月份各渠道共受理消费投诉类工单22件，受理量下降71.79%"):
every number comes from the `overview` table (value, previous month, same month a year earlier);
counts change by 上升/下降 x% (or 持平), rates by x个百分点. A month the drops cover in part says
how far they reach; a month no drop covers says 暂无数据 and states no count.
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl
from kesu.reports import labels
from kesu.transforms import shares
from kesu.transforms.periods import Coverage

TICKET_TYPES = (("complaints_raw", "投诉"), ("opinions", "意见"), ("praises", "表扬"))
COMPARISONS = (("previous", "较上月", "上月"), ("previous_year", "较上年同月", "上年同月"))


def count_change(value: Decimal | int, previous: Decimal | int | None) -> str | None:
    """'上升12.50%', '下降71.79%' or '持平'; None when the previous count is unknown or 0."""
    if previous is None:
        return None
    if value == previous:
        return "持平"
    change = shares.percent(Decimal(value) - Decimal(previous), previous)
    if change is None:
        return None
    return f"{'上升' if change > 0 else '下降'}{abs(change):.2f}%"


def rate_change(value: Decimal | None, previous: Decimal | None) -> str | None:
    """'上升1.50个百分点', '下降0.20个百分点' or '持平'; None when either rate is unknown."""
    if value is None or previous is None:
        return None
    if value == previous:
        return "持平"
    points = Decimal(value) - Decimal(previous)
    return f"{'上升' if points > 0 else '下降'}{abs(points):.2f}个百分点"


def _changes(row: dict, rate: bool) -> str:
    """'，较上月下降5.00%，较上年同月持平' (a clause per comparison; 上月无数据 when unknown)."""
    parts = []
    for column, lead, name in COMPARISONS:
        phrase = (rate_change if rate else count_change)(row["value"], row.get(column))
        if phrase is None and not rate and row.get(column) == 0:
            phrase = f"{name}为0件"
            parts.append(phrase)
            continue
        parts.append(f"{lead}{phrase}" if phrase else f"{name}无可比数据")
    return "".join(f"，{p}" for p in parts)


def _count(value: Decimal | int | None) -> int:
    return int(value or 0)


def _month(period: str) -> str:
    year, month = period.split("-")
    return f"{year}年{int(month)}月份"


def paragraph(overview: pl.DataFrame, period: str, coverage: Coverage | None = None) -> str:
    """The 总体情况 paragraph from a monthly `overview` (one row per metric). A month the drops
    cover up to a day says so (2025年6月份（截至6月15日）); one no drop covers states no count."""
    if coverage is not None and coverage.empty and coverage.late_records:
        return (f"{_month(period)}{labels.NO_DROP}：本月没有任何数据批次；"
                f"各表{labels.LATE_RECORDS}，此处不列示指标。")  # fmt: skip
    if coverage is not None and coverage.empty:
        return f"{_month(period)}{labels.NO_DATA}：本月没有任何数据批次，各项指标均无数据。"
    month = _month(period)
    if coverage is not None and coverage.through is not None:
        month += f"（截至{labels.day_text(coverage.through, year=False)}）"
    rows = {r["metric"]: r for r in overview.iter_rows(named=True)}
    total: dict[str, Decimal | None] = {"value": Decimal(0)}
    for column, _lead, _name in COMPARISONS:
        known = [rows[m].get(column) for m, _ in TICKET_TYPES]
        total[column] = (
            None if None in known else sum((k for k in known if k is not None), Decimal(0))
        )
    total["value"] = sum((rows[m]["value"] for m, _ in TICKET_TYPES), Decimal(0))
    by_type = "、".join(f"{label}{_count(rows[m]['value'])}件" for m, label in TICKET_TYPES)
    text = [
        f"{month}各渠道共受理消费投诉类工单{_count(total['value'])}件（{by_type}），"
        f"受理量{_changes(total, rate=False).removeprefix('，')}。"
    ]
    for metric, label in TICKET_TYPES:
        text.append(f"{label}{_count(rows[metric]['value'])}件{_changes(rows[metric], False)}。")
    for metric, label in (("regulator_transferred", "监管转办投诉"), ("responsible", "有效投诉")):
        text.append(f"{label}{_count(rows[metric]['value'])}件{_changes(rows[metric], False)}。")
    rate = rows["close_rate"]
    shown = "—" if rate["value"] is None else f"{rate['value']:.2f}%"
    text.append(f"投诉办结率{shown}{_changes(rate, rate=True)}。")
    return "".join(text)


def render(tables: dict[str, pl.DataFrame], period: str, coverage: Coverage | None = None) -> str:
    """summary.md: a heading (with the coverage note of an incomplete month, as the other
    files' titles) and the 总体情况 paragraph; `coverage` None: the month is complete."""
    heading = f"{_month(period)}客户之声{labels.coverage_note(coverage)}"
    text = paragraph(tables["overview"], period, coverage)
    return f"# {heading}\n\n## 总体情况\n\n{text}\n"
