"""The morning watch list after drop D: deadlines at risk and volumes that stand out.

Pure: the complaint model as known at the end of D, reference data and the rules' numbers in,
tables out. Time limits are the report's own (periods.period_groups): 15 days after the day the
bank received the complaint (`clock_on`: a linked transfer's 转办日期 when earlier than the
ticket's 受理时间), 30 when extended, plus the excluded (扣除) days, in calendar days. A regulator
transfer not yet answered must also be answered by its 办理期限 when that is earlier; once the
bank has replied to the regulator, that date no longer binds the complaint.

A complaint whose newest version is held in quarantine is listed as it was before that version
(the report's rule, report_quality.newest_held) but never silently: `held_update` names the
held version's drop date, `held_rule` and `held_reason` why it is held. Such a row stays listed
and counted as overdue: the held version may close the complaint, or may not (it failed its
checks, so kesu cannot read it), and a deadline missed unseen harms a customer more than one
checked in vain. A complaint none of whose versions loaded (every one held) has no deadline
kesu can reckon: it is not listed, but counted (`never_loaded`), and the list says so.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

import polars as pl
from kesu.transforms.complaint_model import ComplaintModel
from kesu.transforms.periods import Period, period_groups
from kesu.transforms.report_quality import newest_held

if TYPE_CHECKING:
    from kesu.transforms.reporting import ReportConfig as Limits

DUE_SOON = ["kind", "id", "branch_code", "branch_name", "business_category", "received_on",
            "due_on", "days_left", "status", "customer_masked",
            "held_update", "held_rule", "held_reason"]  # fmt: skip
HELD_MARK = ["held_update", "held_rule", "held_reason"]  # the held version, null when none
VOLUME_ALERTS = ["branch_code", "branch_name", "business_category", "last_7_days",
                 "baseline_mean", "baseline_sd", "score"]  # fmt: skip
BASELINE_WEEKS = 8
MIN_BASELINE_WEEKS = 4  # with less history than this a week cannot be judged unusual


def _days(expr: pl.Expr) -> pl.Expr:
    return pl.duration(days=expr)


def _named(frame: pl.DataFrame, branches: pl.DataFrame, categories: pl.DataFrame,
           ) -> pl.DataFrame:  # fmt: skip
    """The rows with `branch_name` (reference branches) and `business_category` (the JR/T 0169
    name of business_category_code; the code itself when the reference lacks it)."""
    names = categories.select(business_category_code="code", _name="name")
    return (
        frame.join(branches.select("branch_code", "branch_name"), on="branch_code", how="left",
                   maintain_order="left")
        .join(names, on="business_category_code", how="left", maintain_order="left")
        .with_columns(business_category=pl.coalesce("_name", "business_category_code"))
    )  # fmt: skip


def _customer_masked(name: str, phone: str) -> pl.Expr:
    return pl.coalesce(pl.col(name).replace("", None), pl.col(phone).replace("", None))


def _unanswered(as_of: date) -> pl.Expr:
    """A transfer the regulator still waits for at the end of as_of (no 反馈日期 up to as_of)."""
    return pl.col("replied_on").is_null() | (pl.col("replied_on") > as_of)


def open_groups(model: ComplaintModel, as_of: date, limits: Limits) -> pl.DataFrame:
    """One row per merge group holding a 投诉 ticket and open at the end of as_of: its earliest
    ticket, received_on (the day its clock starts, `clock_on`), due_on (the group's limit, or
    the 办理期限 of a transfer not yet answered when earlier) and days_left."""
    # every group received up to as_of, with the clocks read at as_of
    so_far = Period("annual", f"to-{as_of}", date(1, 1, 1), as_of)
    groups = period_groups(model.groups, so_far, as_of, limits).filter(~pl.col("closed"))
    # the bank received the complaint when the regulator forwarded it, if that was earlier:
    # shown as received_on, so that due_on − received_on is the limit the row is judged by
    groups = groups.with_columns(received_on="clock_on").with_columns(
        due_on=pl.col("received_on") + _days(pl.col("limit_days") + pl.col("excluded_days"))
    )
    first_ticket = (
        model.tickets.filter(pl.col("group_id").is_not_null())
        .sort("received_at", "complaint_id")
        .unique("group_id", keep="first", maintain_order=True)
        .select("group_id", id="complaint_id", status="status",
                customer_masked=_customer_masked("customer_name_masked", "contact_phone_masked"))
    )  # fmt: skip
    regulator_due = (
        model.transfers.filter(pl.col("group_id").is_not_null() & _unanswered(as_of))
        .group_by("group_id")
        .agg(transfer_due_on=pl.col("due_on").min())
    )
    return (
        groups.join(first_ticket, on="group_id", maintain_order="left")
        .join(regulator_due, on="group_id", how="left", maintain_order="left")
        .with_columns(due_on=pl.min_horizontal("due_on", "transfer_due_on"))
        .with_columns(kind=pl.lit("complaint"))
    )  # fmt: skip


def held_groups(model: ComplaintModel, held: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """One row per merge group with a ticket whose newest landed version (up to as_of) is held
    in quarantine: `group_id`, and of its latest held version `held_update` (its drop date),
    `held_rule` and `held_reason`. `held`: quarantined complaint rows as the report reads them."""
    found = newest_held(model.tickets, held, as_of)
    return (
        found.join(model.tickets.select("complaint_id", "group_id"), on="complaint_id")
        .filter(pl.col("group_id").is_not_null())
        .sort("group_id", "drop_date", "complaint_id")
        .unique("group_id", keep="last", maintain_order=True)
        .select("group_id", held_update="drop_date", held_rule="rule", held_reason="reason")
    )


def never_loaded(model: ComplaintModel, held: pl.DataFrame | None, as_of: date) -> int:
    """How many complaints up to as_of have landed only in quarantine: every version held, none
    loaded. No deadline can be reckoned for them (their received date failed its checks or is
    unread), so the list cannot show them; it says how many there are instead."""
    found = newest_held(model.tickets, pl.DataFrame() if held is None else held, as_of)
    return found.join(model.tickets.select("complaint_id"), on="complaint_id", how="anti").height


def open_transfers(model: ComplaintModel, as_of: date, limits: Limits, listed: pl.Series,
                   ) -> pl.DataFrame:  # fmt: skip
    """One row per regulator transfer unanswered at the end of as_of whose merge group is not
    already listed (in `listed`) as an open complaint: due the 15th day after 转办日期, or on its
    办理期限 when earlier."""
    limit = pl.col("transferred_on") + pl.duration(days=limits.decision_days)
    elsewhere = pl.col("group_id").is_in(listed.implode()).fill_null(False)
    return model.transfers.filter(_unanswered(as_of) & ~elsewhere).select(
        "branch_code", "business_category_code", "status", kind=pl.lit("transfer"),
        id="transfer_id", received_on="transferred_on",
        due_on=pl.min_horizontal(limit, "due_on"),
        customer_masked=_customer_masked("complainant_name_masked", "contact_phone_masked"),
    )  # fmt: skip


def due_soon(model: ComplaintModel, branches: pl.DataFrame, categories: pl.DataFrame,
             as_of: date, within: int, limits: Limits, held: pl.DataFrame | None = None,
             ) -> pl.DataFrame:  # fmt: skip
    """One row per open complaint merge group (kind complaint, id its earliest 投诉编号) or open
    regulator transfer not in such a group (kind transfer, id its 转办单号) that is overdue or
    due within `within` days of as_of; days_left = due_on − as_of (negative when overdue);
    `held_update`, `held_rule`, `held_reason` set when a newer version of the group's tickets
    is held in quarantine (`held_groups`). Sorted by days_left, then kind and id."""
    groups = open_groups(model, as_of, limits)
    marks = held_groups(model, pl.DataFrame() if held is None else held, as_of)
    groups = groups.join(marks, on="group_id", how="left", maintain_order="left")
    transfers = open_transfers(model, as_of, limits, groups["group_id"]).with_columns(
        held_update=pl.lit(None, pl.Date), held_rule=pl.lit(None, pl.String),
        held_reason=pl.lit(None, pl.String),
    )  # fmt: skip
    rows = pl.concat([groups.select(transfers.columns), transfers], how="vertical_relaxed")
    rows = rows.with_columns(days_left=(pl.col("due_on") - pl.lit(as_of)).dt.total_days())
    rows = rows.filter(pl.col("days_left") <= within).sort("days_left", "kind", "id")
    return _named(rows, branches, categories).select(
        pl.col("kind", "id", "branch_code", "branch_name", "business_category").cast(pl.String),
        pl.col("received_on", "due_on").cast(pl.Date), pl.col("days_left").cast(pl.Int64),
        pl.col("status", "customer_masked").cast(pl.String),
        pl.col("held_update").cast(pl.Date), pl.col("held_rule", "held_reason").cast(pl.String),
    )  # fmt: skip


def weekly_counts(groups: pl.DataFrame, as_of: date, first_drop: date) -> pl.DataFrame:
    """One row per branch × business category × week (0: the 7 days ending as_of; 1..8 the
    weeks before) that the data covers whole, for pairs with a complaint in week 0; weeks with
    no complaint count 0. Complaints after merging, by the day the group was received."""
    weeks = [w for w in range(BASELINE_WEEKS + 1)
             if as_of - timedelta(days=7 * w + 6) >= first_drop]  # fmt: skip
    keys = ["branch_code", "business_category_code"]
    age = (pl.lit(as_of) - pl.col("received_on")).dt.total_days()
    recent = groups.filter(age.is_between(0, 7 * (BASELINE_WEEKS + 1) - 1)).with_columns(
        week=(age // 7).cast(pl.Int64)
    )
    pairs = recent.filter(pl.col("week") == 0).select(keys).unique()
    grid = pairs.join(pl.DataFrame({"week": weeks}, schema={"week": pl.Int64}), how="cross")
    counts = recent.group_by(*keys, "week").agg(complaints=pl.len().cast(pl.Int64))
    return grid.join(counts, on=[*keys, "week"], how="left").with_columns(
        pl.col("complaints").fill_null(0)
    )


def volume_alerts(groups: pl.DataFrame, branches: pl.DataFrame, categories: pl.DataFrame,
                  as_of: date, first_drop: date, min_score: float, min_count: int,
                  ) -> pl.DataFrame:  # fmt: skip
    """One row per branch × business category whose complaints in the 7 days ending as_of stand
    out against the 8 weeks before (docs/reports.md): score = (last_7_days − baseline_mean) /
    max(baseline_sd, 1), alert when score ≥ min_score and last_7_days ≥ min_count. Needs at
    least 4 whole baseline weeks of data. Sorted by score, highest first."""
    weekly = weekly_counts(groups, as_of, first_drop)
    keys = ["branch_code", "business_category_code"]
    baseline = pl.col("complaints").filter(pl.col("week") > 0)
    table = weekly.group_by(keys).agg(
        last_7_days=pl.col("complaints").filter(pl.col("week") == 0).sum().cast(pl.Int64),
        baseline_mean=baseline.mean(),
        baseline_sd=baseline.std(ddof=1),
        _weeks=baseline.len(),
    )
    score = (pl.col("last_7_days") - pl.col("baseline_mean")) / pl.max_horizontal(
        "baseline_sd", pl.lit(1.0)
    )
    table = (
        table.filter(pl.col("_weeks") >= MIN_BASELINE_WEEKS)
        .with_columns(pl.col("baseline_mean", "baseline_sd").round(2), score=score.round(2))
        .filter((pl.col("score") >= min_score) & (pl.col("last_7_days") >= min_count))
        .sort(["score", *keys], descending=[True, False, False])
    )
    return _named(table, branches, categories).select(
        pl.col("branch_code", "branch_name", "business_category").cast(pl.String),
        "last_7_days", pl.col("baseline_mean", "baseline_sd", "score").cast(pl.Float64),
    )  # fmt: skip
