"""The report entry point: configuration, which partitions a report reads, and every table.

`build_tables` is pure: the same inputs, period, as_of and configuration give identical frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import polars as pl
from kesu.transforms import complaint_model, periods, report_quality, shares
from kesu.transforms import report_complaints as rc
from kesu.transforms import report_hotline as rh
from kesu.transforms import report_transfers as rt
from kesu.transforms.periods import Period, drop_window

__all__ = ["ReportConfig", "ReportInputs", "build_tables", "drop_window"]
# Report vocabulary (not source headers): metric id -> Chinese label; {…} from the configuration.
LABELS = {
    "complaints": "投诉总量（合并重复后）",
    "complaints_raw": "投诉工单量（合并前）",
    "regulator_transferred": "监管转办投诉量",
    "opinions": "意见量",
    "praises": "表扬量",
    "closed": "已办结投诉量",
    "closed_within_15d": "{decision_days}日内办结量",
    "closed_within_30d": "{extended_days}日内办结量",
    "closed_within_60d": "{max_days}日内办结量",
    "closed_late": "超时限办结量",
    "open_at_end": "期末未办结量",
    "open_overdue_at_end": "期末超时限未办结量",
    "close_rate": "办结率（%）",
    "avg_handling_days": "平均办理天数（天）",
    "responsible": "有责投诉量",
    "not_responsible": "无责投诉量",
    "repeat_rate": "重复投诉率（%）",
    "callback_satisfaction_rate": "回访满意率（%）",
    "backlog_open_at_end": "期末未办结的往期投诉量",
    "backlog_overdue_at_end": "期末超时限未办结的往期投诉量",
    "held_updates": "更新被隔离暂按旧版本统计的投诉",
    "complaints_per_outlet_month": "每网点每月投诉量（件）",
    "complaints_per_10m_customers": "每千万个人客户投诉量（件）",
    "calls": "来电总量",
    "ivr_only": "自助语音服务量",
    "human_requested": "转人工请求量",
    "human_answered": "人工接通量",
    "abandoned": "排队放弃量",
    "answer_rate": "人工接通率（%）",
    "service_level": "{service_level_seconds}秒服务水平（%）",
    "asa_seconds": "平均应答速度（秒）",
    "dissatisfied_calls": "客户不满来电量",
    "complaint_intent_calls": "有投诉意向来电量",
    "defused_calls": "投诉意向化解量",
    "converted_calls": "转投诉来电量",
    "survey_responses": "满意度评价量",
    "survey_satisfaction_rate": "满意度调查满意率（%）",
}
_SECTIONS = {  # field -> ([section], key) in kesu.toml
    "rounding": ("report", "rounding"), "decimals": ("report", "decimals"),
    "decision_days": ("sla", "decision_days"), "extended_days": ("sla", "extended_days"),
    "max_days": ("sla", "max_days"), "service_level_seconds": ("hotline", "service_level_seconds"),
    "implicit_merge": ("merge", "implicit"),
    "region": ("report", "region"), "national_units": ("report", "national_units"),
}  # fmt: skip
_CHOICES = {"rounding": shares.ROUNDINGS, "region": rt.REGION_MODES,
            "national_units": rt.NATIONAL_UNIT_MODES}  # fmt: skip


@dataclass(frozen=True)
class ReportConfig:
    rounding: str = "half_up"
    decimals: int = 2
    decision_days: int = 15
    extended_days: int = 30
    max_days: int = 60
    service_level_seconds: int = 20
    implicit_merge: bool = True
    region: str = "province"  # or "branch", "city", "urban_rural"
    national_units: str = "province"  # or "separate"

    def __post_init__(self) -> None:
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                section, key = _SECTIONS[name]
                raise ValueError(f"[{section}] {key} must be one of {', '.join(choices)}, not "
                                 f"{getattr(self, name)!r}")  # fmt: skip
        for name, (section, key) in _SECTIONS.items():
            value, kind = getattr(self, name), bool if name == "implicit_merge" else int
            if name not in _CHOICES and (type(value) is not kind or (kind is int and value < 0)):
                wanted = "true or false" if kind is bool else "a whole number, 0 or more"
                raise ValueError(f"[{section}] {key} must be {wanted}, not {value!r}")
        if not 0 <= self.decimals <= 4:
            raise ValueError(f"[report] decimals must be 0 to 4, not {self.decimals}")
        if not 0 < self.decision_days <= self.extended_days <= self.max_days:
            raise ValueError("[sla] needs 0 < decision_days <= extended_days <= max_days")

    @classmethod
    def from_settings(cls, values: dict[str, dict]) -> ReportConfig:
        """From the kesu.toml sections [report] [sla] [hotline] [merge]; absent keys: defaults."""
        found = {
            name: values[section][key]
            for name, (section, key) in _SECTIONS.items()
            if key in values.get(section, {})
        }
        return cls(**found)


@dataclass(frozen=True)
class ReportInputs:
    complaints: pl.LazyFrame  # stg_complaints with drop_date
    transfers: pl.LazyFrame  # stg_regulator_transfers with drop_date
    hotline: pl.LazyFrame  # stg_hotline with drop_date
    branches: pl.DataFrame  # reference/branches.csv, read as text (Chinese or canonical headers)
    codes: pl.DataFrame  # reference/jrt0169_codes.csv
    # quarantined complaint rows (source text) with drop_date <= as_of: for held_updates
    held: pl.DataFrame | None = None
    labels: dict[str, dict[str, str]] | None = None  # the label lookup, for unmapped_labels
    denominators: pl.DataFrame | None = None  # reference/denominators.csv, read as text


# What a report counts as records received in its period: tickets, transfers (overview), calls.
RECORD_METRICS = {
    "overview": ("complaints", "complaints_raw", "regulator_transferred", "opinions", "praises"),
    "hotline_kpis": ("calls",),
}


def holds_records(tables: dict[str, pl.DataFrame]) -> bool:
    """Whether the report's tables count any ticket, transfer or call received in the period.
    A period no drop covers can: its records came with later drops (`Coverage.late_records`)."""
    for name, metrics in RECORD_METRICS.items():
        table = tables.get(name)
        if table is None or "metric" not in table.columns:
            continue
        values = table.filter(pl.col("metric").is_in(metrics))["value"]
        if (values.fill_null(0) > 0).any():
            return True
    return False


def labelled(table: pl.DataFrame, config: ReportConfig) -> pl.DataFrame:
    """The same rows (one per metric) with the Chinese `label` after `metric`."""
    labels = [LABELS[m].format(**vars(config)) for m in table["metric"]]
    return table.insert_column(1, pl.Series("label", labels, dtype=pl.String))


def with_metrics(overview: pl.DataFrame, values: dict[str, int | Decimal | None]) -> pl.DataFrame:
    """`overview` with more metric rows that have no previous value (known only as of now)."""
    extra = shares.metric_values(values).with_columns(
        previous=pl.lit(None, shares.VALUE),
        change_pct=pl.lit(None, shares.VALUE),
        change_pp=pl.lit(None, shares.VALUE),
    )
    return pl.concat([overview, extra.select(overview.columns)])


def build_tables(inputs: ReportInputs, period: Period, as_of: date, config: ReportConfig,
                 ) -> dict[str, pl.DataFrame]:  # fmt: skip
    """Every report table of the period, by name, as known at the end of drop date as_of."""
    codes, branches = rc.reference_codes(inputs.codes), rt.reference_branches(inputs.branches)
    model = complaint_model.build(inputs.complaints, inputs.transfers, as_of, config.implicit_merge)
    pg = periods.period_groups(model.groups, period, as_of, config)
    pt = periods.period_tickets(model.tickets, period)
    backlog = periods.backlog_groups(model.groups, period, as_of, config)
    # Every hotline figure is a sum, so the year's calls (~100M rows at a large bank) are
    # reduced to one row per category and day inside the scan instead of being materialised.
    flags = rh.call_flags(inputs.hotline, period, as_of, config.service_level_seconds)
    calls = flags.group_by("category", "started_on").agg(pl.all().sum()).collect()
    known = inputs.complaints.filter(pl.col("drop_date") <= min(period.previous().end, as_of))
    previous_known = known.select(pl.len()).collect().item() > 0
    r, d = config.rounding, config.decimals
    held = report_quality.held_updates(
        model.tickets,
        inputs.held if inputs.held is not None else pl.DataFrame(),
        period.cutoff(as_of),
    )
    overview = rc.overview(model, period, as_of, config, previous_known, inputs.denominators)
    overview = with_metrics(overview, {"held_updates": held.height})
    return {
        "overview": labelled(overview, config),
        "held_updates": held,
        "unmapped_labels": report_quality.unmapped_labels(model.tickets, inputs.labels or {}),
        "by_business_category": rc.by_code(pg, codes, "B", "business_category_code", r, d, False),
        "by_cause": rc.by_code(pg, codes, "C", "cause_code", r, d, True),
        "by_channel": rc.by_channel(pg, codes, r, d),
        "by_region": rt.by_region(pg, branches, r, d, config.region, config.national_units),
        "branch_scorecard": rt.branch_scorecard(pg, pt, branches, backlog),
        "handling_time": rc.handling_time(pg, config, r, d),
        "regulator_transfers": rt.regulator_transfers(model.transfers, period, as_of),
        "hotline_by_category": rh.hotline_by_category(calls.lazy(), r, d),
        "hotline_kpis": labelled(shares.metric_values(rh.hotline_values(calls.lazy())), config),
        "monthly_trend": rh.monthly_trend(pg, pt, calls, period),
    }
