"""Tables per organisational unit: the forwarding regulator office (监管转办), the owning branch
(the customer-voice scorecard) and the region (province) of the branch."""

from __future__ import annotations

from datetime import date

import polars as pl
from kesu.transforms import shares
from kesu.transforms.columns import BRANCH_HEADERS
from kesu.transforms.periods import Period

LIABLE, OPINION, PRAISE = "有责", "意见", "表扬"
UNKNOWN_REGION, NATIONAL_UNITS = "未知", ("信用卡中心", "客服中心")
TIER_ONE = "分行"
REGION_MODES = ("province", "branch", "city", "urban_rural")
NATIONAL_UNIT_MODES = ("province", "separate")
_REGION_COLUMN = {"province": "province", "city": "city", "urban_rural": "urban_rural"}
BRANCH_COLUMNS = ["branch_code", "branch_name", "parent_code", "branch_type", "province", "city",
                  "urban_rural"]  # fmt: skip


def reference_branches(branches: pl.DataFrame) -> pl.DataFrame:
    """One row per branch: code, name, parent, type, province, city, urban/rural (canonical
    names, codes as text; a column missing from a bank's file is null)."""
    frame = branches.rename({k: v for k, v in BRANCH_HEADERS.items() if k in branches.columns})
    if frame.schema["branch_code"] != pl.String:
        raise ValueError("read the branch reference as text: codes like 0101 lose their zeros")
    missing = [pl.lit(None, pl.String).alias(c) for c in BRANCH_COLUMNS if c not in frame.columns]
    return frame.with_columns(missing).select(pl.col(BRANCH_COLUMNS).cast(pl.String))


def regions(branches: pl.DataFrame, mode: str, national_units: str) -> pl.DataFrame:
    """One row per branch: `region` under [report] region (province, tier-1 branch, city or
    城区/乡镇) and `national` (a 信用卡中心 / 客服中心 listed under its own name, national_units =
    "separate"). Tier-1 = the nearest 分行 up the 上级机构代码 chain; a unit under none (总行,
    the national centres) is its own."""
    if mode not in REGION_MODES or national_units not in NATIONAL_UNIT_MODES:
        raise ValueError(f"region mode {mode!r} / national_units {national_units!r} unknown")
    if mode == "branch":
        rows = branches.select("branch_code", "parent_code", "branch_type", "branch_name").rows()
        by_code = {code: (parent, kind, name) for code, parent, kind, name in rows}

        def tier_one(code: str) -> str:
            seen, current = set(), code
            while current in by_code and current not in seen:
                seen.add(current)
                parent, kind, name = by_code[current]
                if kind == TIER_ONE:
                    return name
                current = parent
            return by_code[code][2]

        region = pl.Series([tier_one(c) for c in branches["branch_code"]], dtype=pl.String)
    else:
        region = branches[_REGION_COLUMN[mode]]
    national = branches["branch_type"].is_in(NATIONAL_UNITS) & (national_units == "separate")
    return branches.select("branch_code").with_columns(
        region=pl.when(national).then(branches["branch_name"]).otherwise(region),
        national=national.fill_null(False),
    )


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
              mode: str = "province", national_units: str = "province",
              ) -> pl.DataFrame:  # fmt: skip
    """One row per region with complaints (`regions`: province by default, national units in
    the province they sit in), by descending count; national units listed separately come
    after the regions; a branch missing from the reference (or a blank region) is 未知, last.
    Shares are of the total."""
    ref = regions(branches, mode, national_units)
    located = pg.join(ref, on="branch_code", how="left")
    unknown = pl.col("region").is_null() | (pl.col("region").str.strip_chars() == "")
    counts = located.group_by(
        pl.when(unknown).then(pl.lit(UNKNOWN_REGION)).otherwise("region").alias("region")
    ).agg(complaints=pl.len().cast(pl.Int64), national=pl.col("national").fill_null(False).any())
    rank = pl.col("national").cast(pl.Int8) + 2 * (pl.col("region") == UNKNOWN_REGION)
    table = counts.sort(
        [rank, "complaints", "region"], descending=[False, True, False], maintain_order=True
    )
    table = shares.with_shares(table, "complaints", "region", rounding, decimals)
    return table.select("region", "complaints", "share_pct", "share_display")
