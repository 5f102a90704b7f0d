"""Tables per organisational unit: the forwarding regulator office (监管转办), the owning branch
(the customer-voice scorecard) and the region (province) of the branch."""

from __future__ import annotations

from datetime import date

import polars as pl
from kesu.transforms import shares
from kesu.transforms.columns import BRANCH_HEADERS
from kesu.transforms.periods import Period

LIABLE, OPINION, PRAISE = "有责", "意见", "表扬"
UNKNOWN_REGION, NATIONAL_UNITS = "未知", ("总行", "信用卡中心", "客服中心")


def reference_branches(branches: pl.DataFrame) -> pl.DataFrame:
    """One row per branch: code, name, type, province (canonical names, codes as text)."""
    frame = branches.rename({k: v for k, v in BRANCH_HEADERS.items() if k in branches.columns})
    if frame.schema["branch_code"] != pl.String:
        raise ValueError("read the branch reference as text: codes like 0101 lose their zeros")
    return frame.select(pl.col("branch_code", "branch_name", "branch_type", "province"))


def regulator_transfers(transfers: pl.DataFrame, period: Period, as_of: date) -> pl.DataFrame:
    """One row per forwarding office with transfers received (转办日期) in the period: each
    transfer counts once, linked to a ticket or not. Replies and open counts are at the cutoff;
    a transfer is overdue when unanswered after its 办理期限 (due_on before the cutoff)."""
    cutoff = pl.lit(period.cutoff(as_of))
    replied = pl.col("replied_on").is_not_null() & (pl.col("replied_on") <= cutoff)
    on_time = replied & (pl.col("replied_on") <= pl.col("due_on"))
    table = (
        transfers.filter(pl.col("transferred_on").is_between(period.start, period.end))
        .group_by("regulator")
        .agg(
            received=pl.len(),
            replied=replied.sum(),
            replied_on_time=on_time.sum(),
            replied_late=(replied & ~on_time).sum(),
            open=(~replied).sum(),
            open_overdue=(~replied & (pl.col("due_on") < cutoff)).sum(),
        )
        .with_columns(pl.exclude("regulator").cast(pl.Int64))
        .sort(["received", "regulator"], descending=[True, False], maintain_order=True)
    )
    judged = (table["replied"] + table["open_overdue"]).to_list()
    return table.with_columns(
        shares.rates("on_time_rate", table["replied_on_time"].to_list(), judged)
    )


def branch_scorecard(pg: pl.DataFrame, pt: pl.DataFrame, branches: pl.DataFrame,
                     backlog: pl.DataFrame | None = None) -> pl.DataFrame:  # fmt: skip
    """One row per branch (owning branch code as recorded) with a complaint, opinion or praise
    received in the period, or a backlog complaint open at its end, by branch code.
    on_time_rate = closed within the limit / (closed + open past the limit): complaints still
    within their limit are not judged yet. Extra columns backlog_open_at_end and
    backlog_overdue_at_end: groups received before the period, open at its cutoff."""
    if backlog is None:
        backlog = pg.clear()
    carried = backlog.group_by("branch_code").agg(
        backlog_open_at_end=pl.len(), backlog_overdue_at_end=pl.col("overdue").sum()
    )
    complaints = pg.group_by("branch_code").agg(
        regulator_transferred=pl.col("has_transfer").sum(),
        direct_complaints=(~pl.col("has_transfer")).sum(),
        valid_complaints=(pl.col("liability") == LIABLE).sum(),
        _on_time=pl.col("on_time").sum(),
        _judged=(pl.col("closed") | pl.col("overdue")).sum(),
    )
    others = pt.group_by("branch_code").agg(
        opinions=(pl.col("ticket_type") == OPINION).sum(),
        praises=(pl.col("ticket_type") == PRAISE).sum(),
    )
    counts = ["regulator_transferred", "direct_complaints", "opinions", "valid_complaints",
              "praises"]  # fmt: skip
    extra = ["backlog_open_at_end", "backlog_overdue_at_end"]
    table = (
        complaints.join(others, on="branch_code", how="full", coalesce=True)
        .join(carried, on="branch_code", how="full", coalesce=True)
        .with_columns(pl.exclude("branch_code").fill_null(0).cast(pl.Int64))
        .filter(pl.sum_horizontal(counts + extra) > 0)
        .join(branches.select("branch_code", "branch_name"), on="branch_code", how="left")
        .sort("branch_code", maintain_order=True)
    )
    return table.select(
        "branch_code", "branch_name", *counts,
        shares.rates("on_time_rate", table["_on_time"].to_list(), table["_judged"].to_list()),
        *extra,
    )  # fmt: skip


def by_region(pg: pl.DataFrame, branches: pl.DataFrame, rounding: str, decimals: int,
              ) -> pl.DataFrame:  # fmt: skip
    """One row per region with complaints: the province of the owning branch, except that units
    serving the whole country (总行, 信用卡中心, 客服中心) are regions of their own, after the
    provinces; a branch missing from the reference is 未知, last. Shares are of the total."""
    national = pl.col("branch_type").is_in(NATIONAL_UNITS)
    ref = branches.select(
        "branch_code", region=pl.when(national).then("branch_type").otherwise("province")
    )
    located = pg.join(ref, on="branch_code", how="left")
    counts = located.group_by(pl.col("region").fill_null(UNKNOWN_REGION)).agg(
        complaints=pl.len().cast(pl.Int64)
    )
    rank = pl.col("region").is_in(NATIONAL_UNITS).cast(pl.Int8) + 2 * (
        pl.col("region") == UNKNOWN_REGION
    )  # fmt: skip
    table = counts.sort(
        [rank, "complaints", "region"], descending=[False, True, False], maintain_order=True
    )
    table = shares.with_shares(table, "complaints", "region", rounding, decimals)
    return table.select("region", "complaints", "share_pct", "share_display")
