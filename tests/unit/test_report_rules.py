"""The second release's report rules (issue 11) over literal rows: held updates, unknown labels,
backlog, the transfer clock, phone-matched customers, coverage, regions, denominators."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import polars as pl
import pytest
from kesu.reports import disclosure, xlsx
from kesu.reports.labels import period_title
from kesu.transforms.lookups import Lookups, branch_lookup, label_lookup
from kesu.transforms.periods import Coverage, Period, coverage
from kesu.transforms.reporting import ReportConfig, ReportInputs, build_tables, holds_records
from kesu.transforms.staging import StagingContext, stage
from test_complaint_model import COMPLAINTS, HOTLINE, TRANSFERS, frame, ticket, transfer

from kesu import reference

D = Decimal
CODES = pl.read_csv(reference.JRT0169_CODES, infer_schema=False)
BRANCHES = pl.read_csv(reference.BRANCHES, infer_schema=False)
LABEL_MAP = pl.read_csv(reference.LABEL_MAP, infer_schema=False)
LABELS = label_lookup(CODES, LABEL_MAP)
Q3 = Period.parse("quarterly", "2025Q3")


def build(tickets=(), transfers=(), period=Q3, as_of="2025-10-15", held=None, **config):
    inputs = ReportInputs(
        frame(list(tickets), COMPLAINTS), frame(list(transfers), TRANSFERS),
        frame([], HOTLINE), BRANCHES, CODES, held=held, labels=LABELS,
    )  # fmt: skip
    return build_tables(inputs, period, dt.date.fromisoformat(as_of), ReportConfig(**config))


def metric(table: pl.DataFrame, name: str, column: str = "value"):
    return table.filter(pl.col("metric") == name)[column].item()


def held_rows(*rows: tuple[str, str, str, str]) -> pl.DataFrame:
    """Quarantined complaint rows as `quarantine/complaints` holds them: source text."""
    return pl.DataFrame(
        [
            {"source_file": "c.csv", "source_line": 2, "field": "投诉原因", "rule": rule,
             "reason": f'投诉原因 (cause): "其它" {rule}', "complaint_id": cid,
             "updated_at": updated, "drop_date": dt.date.fromisoformat(drop)}
            for cid, updated, drop, rule in rows
        ]
    )  # fmt: skip


# --- 1. held updates -------------------------------------------------------------------------


def test_a_closing_version_held_in_quarantine_is_listed_not_silently_reported_open():
    tickets = [
        ticket("X", "2025-07-01 10:00"),  # open version loaded on 07-01; its closure is held
        ticket("Y", "2025-07-02 10:00"),  # open, nothing held: a real overdue complaint
        ticket("W", "2025-07-03 10:00", closed="2025-07-10 10:00"),  # held row is older
    ]
    held = held_rows(
        ("X", "2025-07-12 09:00:00", "2025-07-12", "unknown_label"),  # later drop: held
        ("W", "2025-07-03 10:00:00", "2025-07-03", "duplicate_key"),  # not newer than loaded
        ("V", "2025-06-01 09:00:00", "2025-06-01", "unparseable"),  # never loaded: held
    )
    t = build(tickets, held=held)
    assert t["held_updates"].rows() == [
        ("V", dt.date(2025, 6, 1), "unparseable", '投诉原因 (cause): "其它" unparseable'),
        ("X", dt.date(2025, 7, 12), "unknown_label", '投诉原因 (cause): "其它" unknown_label'),
    ]
    assert metric(t["overview"], "held_updates") == D(2)
    assert metric(t["overview"], "open_overdue_at_end") == D(2)  # X (as last loaded) and Y


def test_a_held_version_of_the_same_drop_counts_only_when_it_is_newer():
    tickets = [ticket("X", "2025-07-01 10:00")]  # loaded version: updated 07-01 10:00
    same_time = held_rows(("X", "2025-07-01 10:00:00", "2025-07-01", "duplicate_key"))
    later = held_rows(("X", "2025-07-01 18:00:00", "2025-07-01", "in_set"))
    assert build(tickets, held=same_time)["held_updates"].height == 0
    assert build(tickets, held=later)["held_updates"]["complaint_id"].to_list() == ["X"]


def test_held_updates_mask_an_id_that_looks_like_a_phone_number():
    held = held_rows(("13812345678", "2025-07-01 10:00:00", "2025-07-01", "required"))
    assert build(held=held)["held_updates"]["complaint_id"].to_list() == ["138****5678"]


def test_a_held_record_whose_id_was_withheld_names_no_complaint_and_is_not_listed():
    # a misshapen record keeps no id that does not look like one (quarantine.kept_ids), nor
    # any other value: it is in quarantine by file and line, but updates no complaint here
    held = held_rows(
        (None, None, "2025-07-01", "record_shape"),
        ("V", "2025-07-01 09:00:00", "2025-07-01", "unparseable"),
    )
    assert build(held=held)["held_updates"]["complaint_id"].to_list() == ["V"]


def test_no_quarantine_gives_an_empty_table_with_its_columns():
    t = build([ticket("A")])["held_updates"]
    assert t.height == 0 and t.columns == ["complaint_id", "drop_date", "rule", "reason"]


STAGE_ROW = {
    "complaint_id": "T1", "ticket_type": "投诉", "intake_channel": "客服热线",
    "received_at": "2025-07-01 10:00:00", "channel": "手机银行", "business_category": "信用卡",
    "cause": "服务态度", "branch_code": "0101", "status": "已受理",
    "updated_at": "2025-07-01 10:00:00",
}  # fmt: skip


def _stage(mode: str, **changes: str):
    row = STAGE_ROW | changes
    source = pl.DataFrame([row], schema={k: pl.String for k in row}).with_columns(
        _line=pl.lit(2, pl.Int64)
    )
    lookups = Lookups(LABELS, branch_lookup(BRANCHES.rename({"机构代码": "branch_code",
                                                              "机构名称": "branch_name"})), mode)  # fmt: skip
    return stage("complaints", source, "c.csv", StagingContext(b"k" * 32, lookups))


@pytest.mark.parametrize(
    ("changes", "column", "code"),
    [
        ({"cause": "其它"}, "cause_code", "C99"),  # a variant in the shipped mapping, no finding
        ({"business_category": "其它"}, "business_category_code", "B99"),
        ({"business_category": "银行卡"}, "business_category_code", "B99"),  # unknown: 其他
        ({"cause": "态度不好"}, "cause_code", "C99"),
        ({"channel": "线上渠道"}, "channel_code", "A0199"),  # axis A: the front office's 其他
    ],
)
def test_an_unknown_label_loads_under_the_axis_other_by_default(changes, column, code):
    staged = _stage("other", **changes)
    assert staged.issues.height == 0 and staged.staged[column].to_list() == [code]


def test_an_unknown_label_is_held_when_configured_so():
    staged = _stage("quarantine", business_category="银行卡")
    assert staged.issues["rule"].to_list() == ["unknown_label"]
    assert staged.staged["business_category_code"].to_list() == [None]


def test_unknown_labels_loaded_under_other_are_a_finding_of_the_report():
    rows = [
        ticket("A", business_category_label="银行卡", business_category_code="B99"),
        ticket("B", business_category_label="银行卡", business_category_code="B99"),
        ticket("C", business_category_label="其它", business_category_code="B99"),  # mapped
        ticket("D", cause_label="态度不好", cause_code="C99"),
    ]
    assert build(rows)["unmapped_labels"].rows() == [
        ("B", "银行卡", "B99", 2),
        ("C", "态度不好", "C99", 1),
    ]


def test_the_unknown_label_setting_is_checked():
    with pytest.raises(ValueError, match="unknown_label"):
        Lookups(unknown_label="drop")


# --- 2. backlog ------------------------------------------------------------------------------
Q1, Q2 = Period.parse("quarterly", "2025Q1"), Period.parse("quarterly", "2025Q2")
CARRIED = [
    ticket("M", "2025-03-10 10:00", branch_code="0102"),  # never closed
    ticket("N", "2025-03-30 10:00", closed="2025-04-05 10:00"),  # closed in Q2: not carried
    ticket("P", "2025-03-25 10:00", extended=True),  # open; 30-day limit
    ticket("R", "2025-06-25 10:00"),  # Q2's own, open and within its limit at 06-30
]


@pytest.mark.parametrize(
    ("period", "expect"),
    [
        # Q1 (cutoff 03-31): M, N, P received in the period, all open; M 21 days > 15
        (Q1, {"open_at_end": 3, "open_overdue_at_end": 1, "backlog_open_at_end": 0,
              "backlog_overdue_at_end": 0}),
        # Q2 (cutoff 06-30): M and P carried over, both past their limit (112 > 15, 97 > 30);
        # N was closed, R is Q2's own complaint
        (Q2, {"open_at_end": 1, "open_overdue_at_end": 0, "backlog_open_at_end": 2,
              "backlog_overdue_at_end": 2}),
    ],
)  # fmt: skip
def test_an_open_complaint_stays_visible_in_every_later_period(period, expect):
    overview = build(CARRIED, period=period, as_of="2025-07-10")["overview"]
    assert {m: metric(overview, m) for m in expect} == {m: D(v) for m, v in expect.items()}


def test_backlog_per_branch_in_the_scorecard():
    card = build(CARRIED, period=Q2, as_of="2025-07-10")["branch_scorecard"]
    rows = card.select("branch_code", "direct_complaints", "backlog_open_at_end",
                       "backlog_overdue_at_end").rows()  # fmt: skip
    # 0102 has no complaint of Q2 but carries M; 0101 holds R (Q2) and P (carried)
    assert rows == [("0101", 1, 1, 1), ("0102", 0, 1, 1)]


def test_backlog_is_measured_at_the_as_of_date_when_earlier():
    # Q2 as of 04-03 (cutoff 04-03): N, open then, closes 04-05 and is also carried over;
    # P is 9 days into its 30-day limit, M 24 days > 15, N 4 days
    rows = [*CARRIED, ticket("N", "2025-03-30 10:00", drop_date=dt.date(2025, 3, 30))]
    overview = build(rows, period=Q2, as_of="2025-04-03")["overview"]
    assert metric(overview, "backlog_open_at_end") == D(3)
    assert metric(overview, "backlog_overdue_at_end") == D(1)


# --- 3. transfer clock and same customer -------------------------------------------------------


def test_a_transfer_starts_the_clock_of_the_ticket_it_was_registered_as():
    # forwarded 01-29, registered as ticket T on 01-31, closed 02-14: 16 days from 01-29, late
    rows = [ticket("T", "2025-01-31 10:00", closed="2025-02-14 10:00")]
    forwarded = [transfer("R", "2025-01-29", complaint_id="T")]
    t = build(rows, forwarded, period=Q1, as_of="2025-04-10")
    assert metric(t["overview"], "avg_handling_days") == D("16.00")
    assert metric(t["overview"], "closed_within_15d") == D(0)
    assert metric(t["overview"], "closed_late") == D(1)
    assert t["handling_time"]["complaints"].to_list() == [0, 1, 0, 0, 0]  # 16–30天
    # without the transfer the same ticket takes 14 days: on time
    alone = build(rows, period=Q1, as_of="2025-04-10")["overview"]
    assert metric(alone, "closed_late") == D(0)


def test_a_transfer_received_before_a_period_still_dates_the_group_by_its_ticket():
    # the group belongs to Q1 (its ticket's 受理时间), its clock starts on 12-30
    rows = [ticket("T", "2025-01-02 10:00")]
    forwarded = [transfer("R", "2024-12-30", complaint_id="T")]
    t = build(rows, forwarded, period=Q1, as_of="2025-01-16")["overview"]
    assert metric(t, "complaints") == D(1)
    assert metric(t, "open_overdue_at_end") == D(1)  # 17 days at 01-16, 14 from the ticket


@pytest.mark.parametrize(
    ("ticket_tokens", "transfer_phone", "complaints"),
    [
        ({"id_number_token": "id1", "contact_phone_token": "tel1"}, "tel1", 1),  # same phone
        ({"id_number_token": "id1", "contact_phone_token": "tel1"}, "tel2", 2),  # other phone
        ({"id_number_token": "id1", "contact_phone_token": None}, "tel1", 2),  # no phone known
    ],
)
def test_a_transfer_and_a_ticket_of_one_person_meet_through_the_phone(
    ticket_tokens, transfer_phone, complaints
):
    # ticket T open when the regulator forwards the same person's complaint (same category)
    rows = [ticket("T", "2025-07-01 10:00", **ticket_tokens)]
    forwarded = [transfer("R", "2025-07-05", contact_phone_token=transfer_phone)]
    t = build(rows, forwarded)["overview"]
    assert metric(t, "complaints") == D(complaints)
    assert metric(t, "regulator_transferred") == D(1)


def test_two_tickets_meet_through_the_id_number_or_the_phone():
    rows = [
        ticket("A", "2025-07-01 10:00", id_number_token="id1", contact_phone_token="tel1"),
        ticket("B", "2025-07-02 10:00", id_number_token="id1", contact_phone_token="tel2"),  # id
        ticket("C", "2025-07-03 10:00", id_number_token="id9", contact_phone_token="tel2"),  # tel
        ticket("E", "2025-07-04 10:00", id_number_token="id7", contact_phone_token="tel7"),
    ]
    assert metric(build(rows)["overview"], "complaints") == D(2)  # A+B+C, E
    assert metric(build(rows, implicit_merge=False)["overview"], "complaints") == D(4)


# --- 4. coverage -------------------------------------------------------------------------------


def _days(first: str, last: str) -> list[dt.date]:
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [start + dt.timedelta(n) for n in range((end - start).days + 1)]


@pytest.mark.parametrize(
    ("drops", "period", "as_of", "expect"),
    [
        # every day of Q3 has a drop: complete; drops outside the period do not count
        (_days("2025-06-20", "2025-10-02"), Q3, "2025-10-02", ("2025-07-01", "2025-09-30", True)),
        # a half year reported as annual
        (_days("2025-01-01", "2025-06-30"), Period.year(2025), "2025-06-30",
         ("2025-01-01", "2025-06-30", False)),
        # one day missing inside the quarter
        ([d for d in _days("2025-07-01", "2025-09-30") if d != dt.date(2025, 8, 8)], Q3,
         "2025-10-02", ("2025-07-01", "2025-09-30", False)),
        # as of a day inside the period: the days after it are not known yet
        (_days("2025-07-01", "2025-09-30"), Q3, "2025-09-15", ("2025-07-01", "2025-09-15", False)),
        # no drop in the period at all
        (_days("2025-01-01", "2025-06-30"), Q3, "2025-06-30", (None, None, False)),
    ],
)  # fmt: skip
def test_coverage_of_a_period(drops, period, as_of, expect):
    found = coverage(drops, period, dt.date.fromisoformat(as_of))
    first, last, complete = expect
    assert found.as_dict() == {"first_drop": first, "last_drop": last, "complete": complete}
    assert found.through == (None if complete else found.last_drop)
    assert found.empty == (last is None)


def metrics(**values: int) -> pl.DataFrame:
    return pl.DataFrame({"metric": list(values), "value": [D(v) for v in values.values()]})


@pytest.mark.parametrize(
    ("tables", "holds"),
    [
        # a period no drop covers, and nothing of it came later: zeros are not records
        (
            {
                "overview": metrics(
                    complaints=0, complaints_raw=0, opinions=0, praises=0, regulator_transferred=0
                ),
                "hotline_kpis": metrics(calls=0),
            },
            False,
        ),
        # December complaints exported in January's drops
        ({"overview": metrics(complaints=15, complaints_raw=11, regulator_transferred=7)}, True),
        # an opinion alone is a record too; so is a call
        ({"overview": metrics(complaints=0, opinions=1)}, True),
        ({"overview": metrics(complaints=0), "hotline_kpis": metrics(calls=3)}, True),
        # a rate or a backlog is not a record received in the period
        ({"overview": metrics(complaints=0, backlog_open_at_end=4, close_rate=50)}, False),
    ],
)
def test_whether_a_reports_tables_hold_records_of_its_period(tables, holds):
    assert holds_records(tables) is holds


@pytest.mark.parametrize(
    ("drops", "as_of", "said"),
    [
        # the first ten days, as of the tenth: the rest of the quarter has no drop yet
        (_days("2025-07-01", "2025-07-10"), "2025-07-10",
         "drops from 2025-07-01 to 2025-07-10 only, none from 2025-07-11 to 2025-09-30"),
        # drops begin late and stop early: both gaps are named
        (_days("2025-07-05", "2025-09-20"), "2025-10-02",
         "drops from 2025-07-05 to 2025-09-20 only, none from 2025-07-01 to 2025-07-04 or "
         "from 2025-09-21 to 2025-09-30"),
        # both ends have a drop, 8 August has none
        ([d for d in _days("2025-07-01", "2025-09-30") if d != dt.date(2025, 8, 8)], "2025-10-02",
         "its drops run from 2025-07-01 to 2025-09-30, but a day between has none"),
        # --allow-empty: no drop in the quarter at all
        (_days("2025-01-01", "2025-06-30"), "2025-06-30", "no drop falls in it"),
    ],
)  # fmt: skip
def test_the_warning_of_an_incomplete_period_is_a_sentence(drops, as_of, said):
    from kesu.flows.report import incomplete

    found = coverage(drops, Q3, dt.date.fromisoformat(as_of))
    assert incomplete(Q3, found) == (
        f"quarterly 2025Q3 (2025-07-01 to 2025-09-30) is not complete: {said}"
    )


HALF_YEAR = Coverage(dt.date(2025, 1, 1), dt.date(2025, 6, 30), complete=False)
NO_DROP = Coverage(None, None, complete=False)  # --allow-empty: no drop in the period at all


def test_titles_of_an_incomplete_period_say_how_far_the_data_reaches():
    assert period_title("annual", "2025", HALF_YEAR) == "2025年度（数据截至2025年6月30日）"
    assert period_title("quarterly", "2025Q3", None) == "2025年第三季度"
    whole = Coverage(dt.date(2025, 7, 1), dt.date(2025, 9, 30), complete=True)
    assert period_title("quarterly", "2025Q3", whole) == "2025年第三季度"


def test_titles_of_a_period_no_drop_covers_say_there_is_no_data():
    # not complete, and no day its data reaches: neither the bare title nor 数据截至 a day
    assert period_title("annual", "2024", NO_DROP) == "2024年度（暂无数据）"
    assert period_title("monthly", "2024-06", NO_DROP) == "2024年6月（暂无数据）"


def test_the_trend_chart_stops_at_the_month_of_the_last_drop():
    from kesu.reports.charts import known_months

    trend = pl.DataFrame({"month": [f"2025-{m:02d}" for m in range(1, 13)],
                          "complaints": [5] * 6 + [0] * 6})  # fmt: skip
    assert known_months(trend, dt.date(2025, 6, 30))["month"].to_list()[-1] == "2025-06"
    assert known_months(trend, dt.date(2025, 7, 1)).height == 7  # July has begun: drawn so far
    assert known_months(trend, None).height == 0  # no drop: no month is known


def test_a_partial_year_disclosure_never_says_whole_year():
    overview = pl.DataFrame(
        {"metric": ["complaints"], "value": [D(199)], "previous": [None], "change_pct": [None]},
        schema_overrides={"previous": pl.Decimal(20, 2), "change_pct": pl.Decimal(20, 2)},
    )
    kpis = pl.DataFrame({"metric": ["calls"], "value": [D(1200)]})
    text = disclosure.render({"overview": overview, "hotline_kpis": kpis}, "2025", 2,
                             coverage=HALF_YEAR)  # fmt: skip
    assert "全年" not in text
    assert "2025年1月1日至6月30日，本行共受理消费投诉" in text
    assert "本行客服热线截至6月30日受理来电1,200通" in text
    full = disclosure.render({"overview": overview, "hotline_kpis": kpis}, "2025", 2)
    assert "2025年，本行共受理消费投诉" in full and "全年" in full


def test_a_year_no_drop_covers_is_disclosed_as_without_data():
    # the tables of such a year hold zeros (--allow-empty): they are not counts to publish
    overview = pl.DataFrame(
        {"metric": ["complaints"], "value": [D(0)], "previous": [D(199)], "change_pct": [None]},
        schema_overrides={"previous": pl.Decimal(20, 2), "change_pct": pl.Decimal(20, 2)},
    )
    kpis = pl.DataFrame({"metric": ["calls"], "value": [D(0)]})
    tables = {"overview": overview, "hotline_kpis": kpis}
    text = disclosure.render(tables, "2024", 2, coverage=NO_DROP, settings={"date": "2025年7月1日"})
    lines = [line for line in text.splitlines() if line]
    assert lines[0] == "# 2024年度（暂无数据）消费投诉情况"
    assert lines[1] == (
        "根据《银行业保险业消费投诉处理管理办法》有关规定，现将本行2024年度消费投诉情况说明如下："
        "暂无数据覆盖本期，尚无可披露的投诉及客服热线数据。"
    )
    assert lines[2:] == ["特此公告。", "本行", "2025年7月1日"]


# --- 5. regions --------------------------------------------------------------------------------
REGION_ROWS = [
    ticket("A", branch_code="9900"),  # 客服中心, sits in 合肥 (安徽省), 城区
    ticket("B", branch_code="1201"),  # 合肥蜀山支行, under 安徽省分行
    ticket("C", branch_code="3201"),  # 大连中山支行, under 大连分行 (计划单列市), 辽宁省
    ticket("D", branch_code="3206"),  # 庄河支行, under 大连分行, 乡镇
    ticket("E", branch_code="0601"),  # 沈阳和平支行, under 辽宁省分行
    ticket("F", branch_code="1205"),  # 肥西支行, 合肥, 乡镇
    ticket("G", branch_code="9800"),  # 信用卡中心, sits in 上海市
    ticket("H", branch_code="7777"),  # not in the reference
]


@pytest.mark.parametrize(
    ("region", "national_units", "expect"),
    [
        ("province", "province", [("安徽省", 3), ("辽宁省", 3), ("上海市", 1), ("未知", 1)]),
        ("province", "separate", [("辽宁省", 3), ("安徽省", 2), ("金泉银行信用卡中心", 1),
                                  ("金泉银行客服中心", 1), ("未知", 1)]),
        ("branch", "province", [("金泉银行大连分行", 2), ("金泉银行安徽省分行", 2),
                                ("金泉银行信用卡中心", 1), ("金泉银行客服中心", 1),
                                ("金泉银行辽宁省分行", 1), ("未知", 1)]),
        ("city", "province", [("合肥市", 3), ("大连市", 2), ("上海市", 1), ("沈阳市", 1),
                              ("未知", 1)]),
        ("urban_rural", "province", [("城区", 5), ("乡镇", 2), ("未知", 1)]),
    ],
)  # fmt: skip
def test_each_region_mode(region, national_units, expect):
    t = build(REGION_ROWS, region=region, national_units=national_units)["by_region"]
    assert t.select("region", "complaints").rows() == expect
    assert t["complaints"].sum() == 8  # every complaint in exactly one region


def test_an_unknown_region_mode_is_refused():
    with pytest.raises(ValueError, match=r"\[report\] region"):
        ReportConfig(region="county")
    with pytest.raises(ValueError, match=r"\[report\] national_units"):
        ReportConfig.from_settings({"report": {"national_units": "apart"}})


# --- 6. rates with denominators, change in points ---------------------------------------------
RATED = [
    ticket("Q2a", "2025-05-01 10:00", closed="2025-05-05 10:00"),
    ticket("Q2b", "2025-05-02 10:00", closed="2025-07-20 10:00"),  # open at Q2's end
    ticket("Q3a", "2025-07-01 10:00", closed="2025-07-03 10:00"),
    ticket("Q3b", "2025-07-02 10:00"),
    ticket("Q3c", "2025-08-02 10:00"),
]
DENOMINATORS = pl.DataFrame(
    {"period": ["2025Q3", "2025"], "outlets": ["2", "4"],
     "personal_customers": ["15,000,000", "40000000"]}
)  # fmt: skip


def rated(denominators, as_of="2025-10-15"):
    inputs = ReportInputs(
        frame(RATED, COMPLAINTS), frame([], TRANSFERS), frame([], HOTLINE), BRANCHES, CODES,
        denominators=denominators,
    )  # fmt: skip
    table = build_tables(inputs, Q3, dt.date.fromisoformat(as_of), ReportConfig())["overview"]
    return {m: (v, p) for m, v, p in table.select("metric", "value", "previous").rows()}


def test_rates_per_outlet_month_and_per_10m_customers_when_the_denominators_cover_the_period():
    rows = rated(DENOMINATORS)
    # Q3 (its own row): 3 / (2 outlets x 3 months); 3 x 10^7 / 15,000,000
    # Q2 (no row of its own: the year's row): 2 / (4 x 3) = 0.1666..; 2 x 10^7 / 40,000,000
    assert rows["complaints_per_outlet_month"] == (D("0.50"), D("0.17"))
    assert rows["complaints_per_10m_customers"] == (D("2.00"), D("0.50"))


def test_an_incomplete_period_divides_by_the_months_it_reaches():
    rows = rated(DENOMINATORS, as_of="2025-08-10")  # July and August: 3 / (2 x 2)
    assert rows["complaints_per_outlet_month"][0] == D("0.75")


def test_no_denominator_rates_when_the_reference_does_not_cover_the_period():
    rows = rated(pl.DataFrame({"period": ["2024"], "outlets": ["4"],
                               "personal_customers": ["1"]}))  # fmt: skip
    assert "complaints_per_outlet_month" not in rows
    assert "complaints_per_10m_customers" not in rows
    assert "complaints_per_outlet_month" not in rated(None)


def test_change_of_a_rate_in_percentage_points_and_of_a_count_in_percent():
    inputs = ReportInputs(frame(RATED, COMPLAINTS), frame([], TRANSFERS), frame([], HOTLINE),
                          BRANCHES, CODES)  # fmt: skip
    table = build_tables(inputs, Q3, dt.date(2025, 10, 15), ReportConfig())["overview"]
    rows = {r[0]: r[1:] for r in table.select("metric", "value", "previous", "change_pct",
                                              "change_pp").rows()}  # fmt: skip
    # close rate 1/3 = 33.33% against 1/2 = 50.00% (Q2b closed only after Q2 ended)
    assert rows["close_rate"] == (D("33.33"), D("50.00"), D("-33.34"), D("-16.67"))
    assert rows["complaints"] == (D(3), D(2), D("50.00"), None)  # counts: no change in points


# --- 7. the disclosure as banks publish it -----------------------------------------------------
P2 = pl.Decimal(10, 2)
PUBLISHED = {
    "overview": pl.DataFrame(
        {"metric": ["complaints", "regulator_transferred", "closed", "closed_within_15d",
                    "close_rate"],
         "label": ["投诉总量（合并重复后）", "监管转办投诉量", "已办结投诉量", "15日内办结量",
                   "办结率（%）"],
         "value": [D(199), D(12), D(190), D(171), D("95.48")],
         "previous": [D(187), D(10), D(180), D(160), D("96.26")],
         "change_pct": [D("6.42"), D("20.00"), D("5.56"), D("6.88"), D("-0.81")]},
        schema_overrides={"value": P2, "previous": P2, "change_pct": P2},
    ),
    "by_business_category": pl.DataFrame(
        {"code": ["B03", "B02", "B04", "B08", "B10", "B09", "B99"],
         "name": ["信用卡", "借记卡", "贷款", "外汇", "个人金融信息", "贵金属", "其他"],
         "complaints": [100, 50, 30, 7, 5, 3, 4],
         "share_pct": [D("50.25"), D("25.13"), D("15.08"), D("3.52"), D("2.51"), D("1.51"),
                       D("2.01")]},
        schema_overrides={"share_pct": P2},
    ),
    "by_region": pl.DataFrame(
        {"region": ["辽宁省", "上海市"], "complaints": [150, 49],
         "share_pct": [D("75.38"), D("24.62")], "share_display": ["75.38%", "24.62%"]},
        schema_overrides={"share_pct": P2},
    ),
}  # fmt: skip
BUCKET = "外汇、贵金属、个人金融信息等其他业务"
SETTINGS = {"channels": "客服热线95xxx、营业网点、手机银行", "date": "2026年3月31日",
            "category_buckets": {BUCKET: ["B08", "B09", "B10", "B11", "B12", "B13", "B14"]},
            "region": "province", "national_units": "province"}  # fmt: skip


def test_the_disclosure_opens_and_closes_as_published():
    text = disclosure.render(PUBLISHED, "2025", 2, settings=SETTINGS)
    lines = [line for line in text.splitlines() if line]
    assert lines[0] == "# 2025年度消费投诉情况"
    assert (
        lines[1]
        == "根据《银行业保险业消费投诉处理管理办法》有关规定，现将本行2025年消费投诉情况披露如下。"
    )
    assert ("2025年，本行共受理消费投诉199件（合并重复后），较上年增加12件，同比上升6.42%。"
            "其中，监管转办投诉12件。") in text  # fmt: skip
    # 171 of 190 closed within 15 days = 90.00%
    assert "已办结投诉190件，办结率95.48%；其中15日内办结171件，占已办结投诉的90.00%。" in text
    assert lines[-4:] == ["本行消费者投诉渠道：客服热线95xxx、营业网点、手机银行。", "特此公告。",
                          "本行", "2026年3月31日"]  # fmt: skip


def test_the_category_tail_is_one_bucket_and_the_total_row_adds_up_what_is_printed():
    text = disclosure.render(PUBLISHED, "2025", 2, settings=SETTINGS)
    table = text.split("## 三")[1].split("## 四")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1:] == [
        "| 信用卡 | 100 | 50.25% |",
        "| 借记卡 | 50 | 25.13% |",
        "| 贷款 | 30 | 15.08% |",
        f"| {BUCKET} | 15 | 7.54% |",  # 7 + 5 + 3 = 15 of 199, from the counts
        "| 其他 | 4 | 2.01% |",
        "| 合计 | 199 | 100.01% |",  # the printed shares add to 100.01 under half_up
    ]
    assert "占比按四舍五入保留2位小数，各行分别舍入，合计可能不等于100%" in text


def test_under_largest_remainder_the_bucketed_column_adds_to_100():
    text = disclosure.render(PUBLISHED, "2025", 2, "largest_remainder", settings=SETTINGS)
    assert "| 合计 | 199 | 100.00% |" in text


def test_the_region_paragraph_follows_the_region_mode():
    text = disclosure.render(PUBLISHED, "2025", 2, settings=SETTINGS)
    assert ("按省份划分，投诉分布为辽宁省150件（占75.38%）、上海市49件（占24.62%）。"
            "信用卡中心、客服中心等全国性服务机构的投诉计入其所在省份。") in text  # fmt: skip
    cities = SETTINGS | {"region": "city", "national_units": "separate"}
    text = disclosure.render(PUBLISHED, "2025", 2, settings=cities)
    assert "按城市划分，投诉分布为" in text and "全国性服务机构的投诉单独列示" in text


def test_no_space_between_a_numeral_and_its_unit():
    text = disclosure.render(PUBLISHED, "2025", 2, settings=SETTINGS)
    assert re.search(r"\d [件通%]", text) is None


# --- 8. print-ready workbook -------------------------------------------------------------------


@pytest.fixture(scope="module")
def printed_book(tmp_path_factory):
    import openpyxl

    channel = pl.DataFrame(
        {"code": ["A01", "A0101", "A0103", "A010303", "A02"],
         "name": ["前台业务渠道", "营业现场", "电子渠道", "移动客户端", "中、后台业务渠道"],
         "level": [1, 2, 2, 3, 1], "parent_code": [None, "A01", "A01", "A0103", None],
         "complaints": [150, 100, 50, 40, 49],
         "share_pct": [D("75.38"), D("50.25"), D("25.13"), D("20.10"), D("24.62")],
         "share_of_parent_pct": [D("75.38"), D("66.67"), D("33.33"), D("80.00"), D("24.62")]},
        schema_overrides={"share_pct": P2, "share_of_parent_pct": P2},
    )  # fmt: skip
    path = tmp_path_factory.mktemp("xlsx") / "report.xlsx"
    xlsx.write_workbook(PUBLISHED | {"by_channel": channel}, path, "annual", "2025")
    return openpyxl.load_workbook(path)


def test_every_sheet_prints_landscape_one_page_wide_with_repeated_header_rows(printed_book):
    for sheet in printed_book.worksheets:
        assert sheet.page_setup.orientation == "landscape", sheet.title
        assert sheet.page_setup.paperSize == 9  # A4
        assert sheet.sheet_properties.pageSetUpPr.fitToPage, sheet.title
        # one page wide (1 is the OOXML default, left out of the file), any number high
        assert sheet.page_setup.fitToWidth in (None, 1) and sheet.page_setup.fitToHeight == 0
        assert sheet.print_title_rows == "$1:$2"  # the title and the header on every page


def test_channel_levels_are_indented(printed_book):
    sheet = printed_book["投诉业务办理渠道分布"]
    names = {row[1].value: row[1].alignment.indent for row in sheet.iter_rows(min_row=3)}
    assert names == {"前台业务渠道": 0, "营业现场": 1, "电子渠道": 1, "移动客户端": 2,
                     "中、后台业务渠道": 0, None: 0}  # fmt: skip


def test_rate_labels_carry_no_duplicated_percent_unit(printed_book):
    sheet = printed_book["投诉概况"]
    rows = {row[0].value: row[1] for row in sheet.iter_rows(min_row=3)}
    assert "办结率" in rows and "办结率（%）" not in rows
    assert rows["办结率"].number_format == "0.00%"


def test_a_sheet_of_shares_says_in_its_footer_how_they_were_rounded(tmp_path):
    import openpyxl

    note = "注：占比按四舍五入保留2位小数，各行分别舍入，合计可能不等于100%；“合计”为本列所列数值之和。"
    path = tmp_path / "r.xlsx"
    xlsx.write_workbook(PUBLISHED, path, "annual", "2025", note=note)
    book = openpyxl.load_workbook(path)
    assert book["投诉业务类别分布"].oddFooter.left.text == note
    assert book["投诉概况"].oddFooter.left.text is None  # no shares, no note
