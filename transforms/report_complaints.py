"""Complaint report tables for one period, from the merge groups of the complaint model.

A group belongs to the period its root (earliest member) was received in, China date; closures
and open counts are at the cutoff (period end, or as_of if earlier): see periods.period_groups.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

import polars as pl
from kesu.transforms import shares
from kesu.transforms.complaint_model import ComplaintModel
from kesu.transforms.periods import (
    Period,
    backlog_groups,
    buckets,
    period_groups,
    period_tickets,
)

if TYPE_CHECKING:
    from kesu.transforms.reporting import ReportConfig as Limits

LIABLE, NOT_LIABLE = "有责", "无责"
CALLBACK_SATISFIED, CALLBACK_DONE = ("满意", "基本满意"), ("满意", "基本满意", "不满意")
OPINION, PRAISE = "意见", "表扬"
# overview metrics that are percentages (0-100): their change is also given in points
PERCENT_METRICS = frozenset({"close_rate", "repeat_rate", "callback_satisfaction_rate"})


def metrics(pg: pl.DataFrame, pt: pl.DataFrame, limits: Limits, backlog: pl.DataFrame | None = None,
            ) -> dict[str, int | Decimal | None]:  # fmt: skip
    """The complaint metrics of `overview` for one period (counts, then rates); `backlog`: the
    groups received before the period still open at its cutoff (backlog_groups)."""

    def n(expr: pl.Expr, frame: pl.DataFrame = pg) -> int:
        return int(frame.select(expr.fill_null(False).sum()).item())

    closed, days = pl.col("closed"), pl.col("handling_days")
    raw = pl.col("ticket_type") == "投诉"
    callback = pl.col("callback_satisfaction")
    done = n(closed & callback.is_in(CALLBACK_DONE))
    values: dict[str, int | Decimal | None] = {
        "complaints": pg.height,
        "complaints_raw": n(raw, pt),
        "regulator_transferred": n(pl.col("has_transfer")),
        "opinions": n(pl.col("ticket_type") == OPINION, pt),
        "praises": n(pl.col("ticket_type") == PRAISE, pt),
        "closed": n(closed),
        "closed_within_15d": n(closed & (days <= limits.decision_days)),
        "closed_within_30d": n(closed & (days <= limits.extended_days)),
        "closed_within_60d": n(closed & (days <= limits.max_days)),
        "closed_late": n(closed & ~pl.col("on_time")),
        "open_at_end": n(~closed),
        "open_overdue_at_end": n(pl.col("overdue")),
        "close_rate": shares.percent(n(closed), pg.height),
        "avg_handling_days": shares.ratio(int(pg["handling_days"].sum()), n(closed)),
        "responsible": n(pl.col("liability") == LIABLE),
        "not_responsible": n(pl.col("liability") == NOT_LIABLE),
        "repeat_rate": shares.percent(n(raw & ~pl.col("is_root"), pt), n(raw, pt)),
        "callback_satisfaction_rate": shares.percent(
            n(closed & callback.is_in(CALLBACK_SATISFIED)), done
        ),
    }
    if backlog is not None:
        values["backlog_open_at_end"] = backlog.height
        values["backlog_overdue_at_end"] = n(pl.col("overdue"), backlog)
    return values


def denominator_rates(complaints: int, period: Period, as_of: date,
                      denominators: pl.DataFrame | None) -> dict[str, Decimal | None]:  # fmt: skip
    """complaints_per_outlet_month and complaints_per_10m_customers when the denominators
    (reference: period, outlets, personal_customers) hold a row for the period itself (2025Q3,
    2025-06, 2025) or else for its year; {} when they do not cover it. Months are those from
    the period's start to its cutoff (a month begun counts whole)."""
    if denominators is None or denominators.is_empty():
        return {}
    labels = [period.label, str(period.start.year)]
    for label in labels:
        found = denominators.filter(pl.col("period").cast(pl.String).str.strip_chars() == label)
        if found.height:
            break
    else:
        return {}
    row = found.row(0, named=True)
    cutoff = period.cutoff(as_of)
    months = (cutoff.year - period.start.year) * 12 + cutoff.month - period.start.month + 1
    outlets, customers = (_count(row.get(k)) for k in ("outlets", "personal_customers"))
    rates: dict[str, Decimal | None] = {}
    if outlets:
        rates["complaints_per_outlet_month"] = shares.ratio(complaints, outlets * max(months, 1))
    if customers:
        rates["complaints_per_10m_customers"] = shares.ratio(complaints * 10**7, customers)
    return rates


def _count(value: object) -> int | None:
    text = str(value).replace(",", "").strip() if value is not None else ""
    return int(text) if text.isdigit() else None


def overview(model: ComplaintModel, period: Period, as_of: date, limits: Limits,
             previous_known: bool, denominators: pl.DataFrame | None = None,
             ) -> pl.DataFrame:  # fmt: skip
    """One row per complaint metric: value, previous period's value (same as_of; null when the
    warehouse knows nothing of that period), change_pct (null when previous is 0 or null) and,
    for percentages, change_pp = value - previous in percentage points."""

    def values(p: Period) -> dict[str, int | Decimal | None]:
        pg = period_groups(model.groups, p, as_of, limits)
        backlog = backlog_groups(model.groups, p, as_of, limits)
        found = metrics(pg, period_tickets(model.tickets, p), limits, backlog)
        return found | denominator_rates(pg.height, p, as_of, denominators)

    now = values(period)
    table = shares.metric_values(now)
    before = values(period.previous()) if previous_known else {}
    previous = shares.metric_values({m: before.get(m) for m in now})["value"]
    pairs = list(zip(table["metric"].to_list(), table["value"].to_list(), previous.to_list(),
                     strict=True))  # fmt: skip
    change = [None if v is None or p is None else shares.percent(v - p, p) for _, v, p in pairs]
    points = [
        v - p if m in PERCENT_METRICS and v is not None and p is not None else None
        for m, v, p in pairs
    ]
    return table.with_columns(
        previous=previous,
        change_pct=pl.Series(change, dtype=shares.VALUE),
        change_pp=pl.Series(points, dtype=shares.VALUE),
    )


def handling_time(pg: pl.DataFrame, limits: Limits, rounding: str, decimals: int,
                  ) -> pl.DataFrame:  # fmt: skip
    """One row per handling-time bucket, in bucket order (not by count), all five always."""
    order = pl.DataFrame({"bucket": buckets(limits)})
    counts = pg.group_by("bucket").agg(complaints=pl.len().cast(pl.Int64))
    table = order.join(counts, on="bucket", how="left", maintain_order="left").fill_null(0)
    table = shares.with_shares(table, "complaints", "bucket", rounding, decimals)
    return table.select("bucket", "complaints", "share_pct")


def reference_codes(codes: pl.DataFrame) -> pl.DataFrame:
    """One row per JR/T 0169 code: axis, code, name, level, parent_code (null at the top)."""
    parent = pl.col("parent_code").cast(pl.String).str.strip_chars()
    return codes.select(
        pl.col("axis", "code", "name").cast(pl.String), pl.col("level").cast(pl.Int64),
        pl.when(parent.str.len_chars() > 0).then(parent).alias("parent_code"),
    )  # fmt: skip


def _code_counts(pg: pl.DataFrame, column: str, other: str) -> dict[str, int]:
    # Unclassified complaints (only unlinked regulator transfers lack cause and channel) are
    # reported under the axis' 其他 so that every distribution adds up to the headline total.
    counted = pg.group_by(pl.col(column).fill_null(other)).agg(pl.len())
    return dict(zip(counted[column].to_list(), counted["len"].to_list(), strict=True))


def by_code(pg: pl.DataFrame, codes: pl.DataFrame, axis: str, column: str, rounding: str,
            decimals: int, keep_zero: bool) -> pl.DataFrame:  # fmt: skip
    """One row per code of a flat axis (B: only codes with complaints; C: every code)."""
    ref = codes.filter(pl.col("axis") == axis).select("code", "name")
    counts = _code_counts(pg, column, f"{axis}99")
    found = pl.DataFrame({"code": list(counts), "complaints": list(counts.values())},
                         schema={"code": pl.String, "complaints": pl.Int64})  # fmt: skip
    table = ref.join(found, on="code", how="full" if keep_zero else "right", coalesce=True)
    table = table.select("code", "name", pl.col("complaints").fill_null(0))
    table = shares.ordered(table, "complaints", "code", shares.is_other(pl.col("code")))
    table = shares.with_shares(table, "complaints", "code", rounding, decimals)
    return table.select("code", "name", "complaints", "share_pct", "share_display")


def by_channel(pg: pl.DataFrame, codes: pl.DataFrame, rounding: str, decimals: int,
               ) -> pl.DataFrame:  # fmt: skip
    """One row per A code at every level, zero rows included, depth first: siblings by
    descending count, 其他 last. Counted at the code a complaint carries, rolled up to parents."""
    ref = codes.filter(pl.col("axis") == "A")
    parent = dict(zip(ref["code"].to_list(), ref["parent_code"].to_list(), strict=True))
    counts = dict.fromkeys(parent, 0)
    for code, n in _code_counts(pg, "channel_code", "A0199").items():
        while code in parent:  # an unknown code counts only in the total
            counts[code] += n
            code = parent[code]
    share = shares.tree_shares(counts, parent, pg.height, rounding, decimals)
    rows: list[str] = []

    def visit(node: str | None) -> None:
        kids = [k for k in parent if parent[k] == node]
        kids.sort(key=lambda k: (k in shares.OTHER_CODES, -counts[k], k))
        for kid in kids:
            rows.append(kid)
            visit(kid)

    visit(None)
    pct = shares.pct_dtype(decimals)
    return pl.DataFrame({"code": rows}).join(ref, on="code", maintain_order="left").select(
        "code", "name", "level", "parent_code",
        complaints=pl.Series([counts[c] for c in rows], dtype=pl.Int64),
        share_pct=pl.Series([share[c][0] for c in rows], dtype=pct),
        share_of_parent_pct=pl.Series([share[c][1] for c in rows], dtype=pct),
    )  # fmt: skip
