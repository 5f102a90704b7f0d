"""Reporting time: periods (a calendar quarter "2025Q3" or year "2025", China dates), what was
known at the end of a drop date, and the handling clock at a period's cutoff.

Handling days are calendar days after the day of receipt (the receipt day does not count, as
for any period counted in days under Chinese law), less excluded (appraisal) days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Literal

import polars as pl

if TYPE_CHECKING:
    from kesu.transforms.reporting import ReportConfig as Limits

TZ = "Asia/Shanghai"
PeriodKind = Literal["quarterly", "annual", "monthly"]
_QUARTER = re.compile(r"(\d{4})Q([1-4])")
_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
_YEAR = re.compile(r"\d{4}")


@dataclass(frozen=True)
class Period:
    kind: PeriodKind
    label: str
    start: date
    end: date  # inclusive

    @classmethod
    def parse(cls, kind: str, text: str) -> Period:
        """ "2025Q3" for kind "quarterly", "2025" for kind "annual"."""
        value = text.strip().upper()
        if kind == "quarterly":
            found = _QUARTER.fullmatch(value)
            if found is None:
                raise ValueError(f"a quarterly period is written like 2025Q3, not {text!r}")
            return cls.quarter(int(found[1]), int(found[2]))
        if kind == "annual":
            if _YEAR.fullmatch(value) is None:
                raise ValueError(f"an annual period is written like 2025, not {text!r}")
            return cls.year(int(value))
        if kind == "monthly":
            found = _MONTH.fullmatch(value)
            if found is None:
                raise ValueError(f"a monthly period is written like 2025-06, not {text!r}")
            return cls.month(int(found[1]), int(found[2]))
        raise ValueError(f"period kind must be 'quarterly', 'annual' or 'monthly', not {kind!r}")

    @classmethod
    def quarter(cls, year: int, quarter: int) -> Period:
        start = date(year, 3 * quarter - 2, 1)
        return cls("quarterly", f"{year}Q{quarter}", start, _month_end(year, 3 * quarter))

    @classmethod
    def year(cls, year: int) -> Period:
        return cls("annual", str(year), date(year, 1, 1), date(year, 12, 31))

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        return cls("monthly", f"{year}-{month:02d}", date(year, month, 1), _month_end(year, month))

    def year_earlier(self) -> Period:
        """The same month (quarter, year) one year earlier: the year-on-year comparison."""
        if self.kind == "monthly":
            return Period.month(self.start.year - 1, self.start.month)
        if self.kind == "quarterly":
            return Period.quarter(self.start.year - 1, (self.start.month + 2) // 3)
        return Period.year(self.start.year - 1)

    def previous(self) -> Period:
        """The previous month, quarter or year."""
        if self.kind == "monthly":
            before = self.start - timedelta(days=1)
            return Period.month(before.year, before.month)
        if self.kind == "annual":
            return Period.year(self.start.year - 1)
        before = self.start - timedelta(days=1)
        return Period.quarter(before.year, (before.month + 2) // 3)

    def months(self) -> list[date]:
        """The first day of each month of the period, in order."""
        first = self.start.year * 12 + self.start.month - 1
        last = self.end.year * 12 + self.end.month - 1
        return [date(m // 12, m % 12 + 1, 1) for m in range(first, last + 1)]

    def cutoff(self, as_of: date) -> date:
        """The day closures and open counts are measured at: the period end, or as_of if earlier."""
        return min(self.end, as_of)


@dataclass(frozen=True)
class Coverage:
    """How far a report's data reaches: its first and last drop within the period (as of the
    report), and whether a drop exists for every day of the period."""

    first_drop: date | None
    last_drop: date | None
    complete: bool
    # A period no drop covers may still hold records received in it that came with later drops
    # (a complaint of 31 December exported on 2 January): set once the tables are built
    # (reporting.holds_records), so that its texts say so instead of "no data". Not in as_dict.
    late_records: bool = False

    @property
    def through(self) -> date | None:
        """The day the data of a period covered in part reaches (its titles say 数据截至 …);
        None when the period is complete, and also when no drop covers it (see `empty`)."""
        return None if self.complete else self.last_drop

    @property
    def empty(self) -> bool:
        """No drop in the period at all (a report of it is written only with --allow-empty).
        Such a period is not complete either, and it has no day its data reaches: its titles
        say 暂无数据, never 数据截至 a day."""
        return self.last_drop is None

    def as_dict(self) -> dict[str, str | bool | None]:
        first, last = self.first_drop, self.last_drop
        return {"first_drop": first.isoformat() if first else None,
                "last_drop": last.isoformat() if last else None,
                "complete": self.complete}  # fmt: skip


def coverage(drops: list[date], period: Period, as_of: date) -> Coverage:
    """The drops (any staged table) dated in the period and not after as_of."""
    inside = sorted({d for d in drops if period.start <= d <= min(period.end, as_of)})
    days = (period.end - period.start).days + 1
    complete = len(inside) == days  # a missing day, or days after as_of, leave it incomplete
    return Coverage(inside[0] if inside else None, inside[-1] if inside else None, complete)


def _month_end(year: int, month: int) -> date:
    following = date(year + month // 12, month % 12 + 1, 1)
    return following - timedelta(days=1)


def latest(versions: pl.LazyFrame, key: str, as_of: date, order: tuple[str, ...]) -> pl.LazyFrame:
    """One row per `key`: its latest version in the drops up to as_of (by `order`, then later
    drop_date, then later source_line and source_file)."""
    by = [key, *order, "drop_date", "source_line", "source_file"]
    known = versions.filter(pl.col("drop_date") <= as_of).with_columns(
        pl.col(key).hash().alias("_key_hash")
    )
    # Only keys seen more than once need ordering: sorting all of a year's calls (~100M rows at
    # a large bank, nearly all exported once) would dominate the report. Repeats are found on a
    # sorted 64-bit hash of the key (10x faster than is_duplicated on strings); a collision only
    # sends a few more rows through the exact path below, never fewer.
    # The repeated hashes are collected first (a few per thousand keys), so the rows of keys seen
    # once stream through a filter: a join would hold every row of the year in memory.
    h = pl.col("_key_hash")
    found = known.select(h).sort(h).filter(h == h.shift(1)).unique().collect()
    repeated = h.is_in(found.to_series().implode())
    single = known.filter(~repeated)
    newest = (
        known.filter(repeated)
        .sort(by, nulls_last=False, maintain_order=True)
        .unique(key, keep="last", maintain_order=True)
    )
    return pl.concat([single, newest]).drop("_key_hash").sort(key, maintain_order=True)


def china_midnight(day: pl.Expr) -> pl.Expr:
    """A Date as the start of that day, China time."""
    return day.cast(pl.Datetime("us")).dt.replace_time_zone(TZ)


def drop_window(table: str, period: Period, as_of: date) -> tuple[date | None, date]:
    """The drop_date partitions (min, max; min None = from the first) a report reads of a staged
    table. Tickets and transfers need all history (merge roots and the previous period may be
    old); calls are counted by start time, exported on that day or later (one day of margin)."""
    name = table.removeprefix("stg_")
    if name in ("complaints", "regulator_transfers"):
        return None, as_of
    if name == "hotline":
        return period.start - timedelta(days=1), as_of
    raise ValueError(f"not a staged table: {table!r}")


def buckets(limits: Limits) -> list[str]:
    """Handling-time bucket labels; with the default limits exactly ≤15天, 16–30天, 31–60天, ..."""
    d, e, m = limits.decision_days, limits.extended_days, limits.max_days
    return [f"≤{d}天", f"{d + 1}–{e}天", f"{e + 1}–{m}天", f">{m}天", "未办结"]


def period_groups(groups: pl.DataFrame, period: Period, as_of: date, limits: Limits,
                  ) -> pl.DataFrame:  # fmt: skip
    """One row per merge group received in the period: closure, handling days, limit, on time,
    overdue and handling-time bucket as at the cutoff."""
    received = groups.filter(pl.col("received_on").is_between(period.start, period.end))
    return at_cutoff(received, period.cutoff(as_of), limits)


def backlog_groups(groups: pl.DataFrame, period: Period, as_of: date, limits: Limits,
                   ) -> pl.DataFrame:  # fmt: skip
    """One row per merge group received before the period and still open at its cutoff, with
    the columns of `period_groups` (`overdue`: past its time limit at the cutoff)."""
    before = groups.filter(pl.col("received_on") < period.start)
    return at_cutoff(before, period.cutoff(as_of), limits).filter(~pl.col("closed"))


def at_cutoff(groups: pl.DataFrame, day: date, limits: Limits) -> pl.DataFrame:
    """The groups with closure, handling days, limit, on time, overdue and bucket at `day`.
    The clock runs from `clock_on` (a transfer's 转办日期 can be before the ticket's receipt)."""
    cutoff = pl.lit(day)
    start = pl.col("clock_on") if "clock_on" in groups.columns else pl.col("received_on")
    limit = pl.when("extended").then(limits.extended_days).otherwise(limits.decision_days)
    closed = pl.col("closed_on").is_not_null() & (pl.col("closed_on") <= cutoff)
    days = (pl.col("closed_on") - start).dt.total_days() - pl.col("excluded_days")
    elapsed = (cutoff - start).dt.total_days() - pl.col("excluded_days")
    label = buckets(limits)
    return (
        groups.with_columns(closed=closed, limit_days=limit.cast(pl.Int64))
        .with_columns(handling_days=pl.when("closed").then(days.clip(0)).cast(pl.Int64))
        .with_columns(
            on_time=pl.col("closed") & (pl.col("handling_days") <= pl.col("limit_days")),
            overdue=~pl.col("closed") & (elapsed > pl.col("limit_days")),
            bucket=pl.when(~pl.col("closed")).then(pl.lit(label[4]))
            .when(pl.col("handling_days") <= limits.decision_days).then(pl.lit(label[0]))
            .when(pl.col("handling_days") <= limits.extended_days).then(pl.lit(label[1]))
            .when(pl.col("handling_days") <= limits.max_days).then(pl.lit(label[2]))
            .otherwise(pl.lit(label[3])),
        )
    )  # fmt: skip


def period_tickets(tickets: pl.DataFrame, period: Period) -> pl.DataFrame:
    """One row per ticket (any type) received in the period, China date."""
    received = pl.col("received_at").dt.convert_time_zone(TZ).dt.date()
    return tickets.filter(received.is_between(period.start, period.end))
