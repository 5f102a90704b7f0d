"""Hotline (客服热线) tables for one period: KPIs, calls by inquiry category, and the monthly
trend that puts calls beside complaints."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl
from kesu.transforms import shares
from kesu.transforms.periods import TZ, Period, latest

UPSET, DEFUSED, TO_COMPLAINT, SATISFIED, NOT_RATED = "不满", "已化解", "转投诉", "满意", "未评价"
COUNTS = ["calls", "dissatisfied", "complaint_intent", "defused", "converted"]
KEEP = ("category", "started_on", "wait_us")


def call_flags(hotline: pl.LazyFrame, period: Period, as_of: date, service_level_seconds: int,
               ) -> pl.LazyFrame:  # fmt: skip
    """One row per call started in the period (China date; a call exported twice counts once, as
    its latest export up to as_of). A call asked for a human when it was queued; it was answered
    when it was queued and picked up, so requested = answered + abandoned always."""
    started = pl.col("call_start_at").dt.convert_time_zone(TZ).dt.date()
    requested = pl.col("queued_at").is_not_null()
    answered = requested & pl.col("answered_at").is_not_null()
    wait = (pl.col("answered_at") - pl.col("queued_at")).dt.total_microseconds()
    intent = pl.col("complaint_intent").fill_null(False)
    survey = pl.col("survey_satisfaction")
    return (
        latest(hotline, "call_id", as_of, ())
        .filter(started.is_between(period.start, period.end))
        .select(
            pl.col("inquiry_category").fill_null(shares.OTHER_NAME).alias("category"),
            started.alias("started_on"),
            pl.lit(1, pl.Int64).alias("calls"),
            ivr_only=~requested, human_requested=requested, human_answered=answered,
            abandoned=requested & ~answered,
            wait_us=pl.when(answered).then(wait),
            in_level=answered & (wait <= service_level_seconds * 1_000_000),
            dissatisfied=pl.col("customer_mood") == UPSET, complaint_intent=intent,
            defused=intent & (pl.col("outcome") == DEFUSED),
            converted=pl.col("outcome") == TO_COMPLAINT,
            survey_responses=survey.is_not_null() & (survey != NOT_RATED),
            satisfied=survey == SATISFIED,
        )
        .with_columns(pl.exclude(KEEP).fill_null(False).cast(pl.Int64))
    )  # fmt: skip


def hotline_by_category(flags: pl.LazyFrame, rounding: str, decimals: int) -> pl.DataFrame:
    """One row per 业务大类 with calls in the period, descending by calls, 其他 last."""
    table = flags.group_by("category").agg(pl.sum(c) for c in COUNTS).collect()
    table = shares.ordered(table, "calls", "category", shares.is_other(pl.col("category")))
    table = shares.with_shares(table, "calls", "category", rounding, decimals)
    return table.select("category", "calls", "share_pct", *COUNTS[1:])


def hotline_values(flags: pl.LazyFrame) -> dict[str, int | Decimal | None]:
    """The `hotline_kpis` values by metric id: counts, then rates (percent) and ASA (seconds)."""
    sums = flags.select(pl.exclude("category", "started_on").sum()).collect().row(0, named=True)
    n = {k: int(v or 0) for k, v in sums.items()}
    return {
        "calls": n["calls"],
        "ivr_only": n["ivr_only"],
        "human_requested": n["human_requested"],
        "human_answered": n["human_answered"],
        "abandoned": n["abandoned"],
        "answer_rate": shares.percent(n["human_answered"], n["human_requested"]),
        "service_level": shares.percent(n["in_level"], n["human_requested"]),
        "asa_seconds": shares.ratio(n["wait_us"], n["human_answered"] * 1_000_000),
        "dissatisfied_calls": n["dissatisfied"],
        "complaint_intent_calls": n["complaint_intent"],
        "defused_calls": n["defused"],
        "converted_calls": n["converted"],
        "survey_responses": n["survey_responses"],
        "survey_satisfaction_rate": shares.percent(n["satisfied"], n["survey_responses"]),
    }


def monthly_trend(pg: pl.DataFrame, pt: pl.DataFrame, calls: pl.DataFrame, period: Period,
                  ) -> pl.DataFrame:  # fmt: skip
    """One row per month of the period (for the trend chart): merged complaints, opinions,
    praises, regulator-transferred complaints and calls received that month."""
    ticket_day = pl.col("received_at").dt.convert_time_zone(TZ).dt.date()
    counted = [
        (pg, pl.col("received_on"), {"complaints": pl.len(),
                                      "regulator_transferred": pl.col("has_transfer")}),
        (pt, ticket_day, {"opinions": pl.col("ticket_type") == "意见",
                          "praises": pl.col("ticket_type") == "表扬"}),
        (calls, pl.col("started_on"), {"calls": pl.col("calls")}),
    ]  # fmt: skip
    table = pl.DataFrame({"month": [m.strftime("%Y-%m") for m in period.months()]})
    for frame, day, counts in counted:
        found = frame.group_by(day.dt.strftime("%Y-%m").alias("month")).agg(
            **{name: expr.cast(pl.Int64).sum() for name, expr in counts.items()}
        )
        table = table.join(found, on="month", how="left", maintain_order="left")
    order = ["complaints", "opinions", "praises", "regulator_transferred", "calls"]
    return table.select("month", pl.col(order).fill_null(0).cast(pl.Int64))
