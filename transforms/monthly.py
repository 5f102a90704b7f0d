"""The monthly 客户之声 report's one addition to the tables: the same month a year earlier.

`overview` of a monthly report compares with the previous month in `previous` / `change_pct`
(as every report compares with its previous period) and, in `previous_year` / `change_yoy_pct`,
with the same month of the year before, computed by the same metric rules (rc.metrics).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl
from kesu.transforms import complaint_model, shares
from kesu.transforms import report_complaints as rc
from kesu.transforms.periods import Period, period_groups, period_tickets
from kesu.transforms.reporting import ReportConfig, ReportInputs


def year_earlier_values(inputs: ReportInputs, period: Period, as_of: date, config: ReportConfig,
                        ) -> dict[str, int | Decimal | None] | None:  # fmt: skip
    """The complaint metrics of the same period a year earlier, as known at the end of as_of;
    None when the warehouse knows nothing of that period (no drop up to its end)."""
    earlier = period.year_earlier()
    known = inputs.complaints.filter(pl.col("drop_date") <= min(earlier.end, as_of))
    if known.select(pl.len()).collect().item() == 0:
        return None
    model = complaint_model.build(inputs.complaints, inputs.transfers, as_of, config.implicit_merge)
    pg = period_groups(model.groups, earlier, as_of, config)
    return rc.metrics(pg, period_tickets(model.tickets, earlier), config)


Values = dict[str, int | Decimal | None]


def with_year_on_year(overview: pl.DataFrame, year_earlier: Values | None) -> pl.DataFrame:
    """One row per metric, as given, plus `previous_year` and `change_yoy_pct` ((value −
    previous_year) / previous_year × 100, half-up to 2 decimals; null when it is 0 or unknown;
    null too for a metric the year-earlier rules do not compute)."""
    found = year_earlier or {}
    before = [None if (v := found.get(m)) is None else Decimal(v) for m in overview["metric"]]
    change = [
        None if v is None or p is None else shares.percent(v - p, p)
        for v, p in zip(overview["value"].to_list(), before, strict=True)
    ]
    return overview.with_columns(
        previous_year=pl.Series(before, dtype=overview.schema["value"]),
        change_yoy_pct=pl.Series(change, dtype=shares.VALUE),
    )
