"""Report tables over literal rows: every metric worked out by hand, the contract's columns,
period arithmetic, configuration, determinism."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import polars as pl
import pytest
from kesu.transforms.periods import Period
from kesu.transforms.reporting import ReportConfig, ReportInputs, build_tables, drop_window
from test_complaint_model import COMPLAINTS, HOTLINE, TRANSFERS, at, call, frame, ticket, transfer

from kesu import reference

D = Decimal
CODES = pl.read_csv(reference.JRT0169_CODES, infer_schema=False)
BRANCHES = pl.read_csv(reference.BRANCHES, infer_schema=False)  # Chinese headers, as shipped
Q3 = Period.parse("quarterly", "2025Q3")
CONTRACT = {
    "overview": ["metric", "label", "value", "previous", "change_pct", "change_pp"],
    "by_business_category": ["code", "name", "complaints", "share_pct", "share_display"],
    "by_cause": ["code", "name", "complaints", "share_pct", "share_display"],
    "by_channel": ["code", "name", "level", "parent_code", "complaints", "share_pct",
                   "share_of_parent_pct"],
    "by_region": ["region", "complaints", "share_pct", "share_display"],
    "branch_scorecard": ["branch_code", "branch_name", "regulator_transferred",
                         "direct_complaints", "opinions", "valid_complaints", "praises",
                         "on_time_rate", "backlog_open_at_end", "backlog_overdue_at_end"],
    "handling_time": ["bucket", "complaints", "share_pct"],
    "regulator_transfers": ["regulator", "received", "replied", "replied_on_time", "replied_late",
                            "open", "open_overdue", "on_time_rate"],
    "hotline_by_category": ["category", "calls", "share_pct", "dissatisfied", "complaint_intent",
                            "defused", "converted"],
    "hotline_kpis": ["metric", "label", "value"],
    "monthly_trend": ["month", "complaints", "opinions", "praises", "regulator_transferred",
                      "calls"],
    "held_updates": ["complaint_id", "drop_date", "rule", "reason"],
    "unmapped_labels": ["axis", "label", "mapped_to", "tickets"],
}  # fmt: skip


def tables(tickets=(), transfers=(), calls=(), period=Q3, as_of="2025-10-15", **config):
    inputs = ReportInputs(
        frame(list(tickets), COMPLAINTS), frame(list(transfers), TRANSFERS),
        frame(list(calls), HOTLINE), BRANCHES, CODES,
    )  # fmt: skip
    return build_tables(inputs, period, dt.date.fromisoformat(as_of), ReportConfig(**config))


def column(table: pl.DataFrame, key: str, value: str) -> dict:
    return dict(zip(table[key].to_list(), table[value].to_list(), strict=True))


# The worked example of 2025Q3 (cutoff 09-30, as_of 10-15). Handling days exclude the receipt day.
QUARTER = [
    ticket("H", "2025-06-30 10:00"),  # 2025Q2 (the previous period), still open
    ticket("A", "2025-07-01 10:00", closed="2025-07-16 09:00", liability="有责",
           callback_satisfaction="满意"),  # 15 days: within 15
    ticket("B", "2025-07-03 10:00", original_complaint_id="A"),  # repeat: merged into A
    ticket("C", "2025-07-10 10:00", closed="2025-08-05 10:00", extended=True, liability="无责",
           callback_satisfaction="不满意", branch_code="9800"),  # 26 days, extended: on time
    ticket("D", "2025-08-01 10:00", closed="2025-08-20 10:00", excluded_days=2,
           business_category_code="B04", cause_code="C99", channel_code="A010303",
           callback_satisfaction="未回访"),  # 19 - 2 = 17 days, not extended: late
    ticket("E", "2025-09-10 10:00", channel_code="A02"),  # open, 20 days at 09-30: overdue
    ticket("F", "2025-09-25 10:00", channel_code="A0103"),  # open, 5 days: not yet due
    ticket("G", "2025-09-01 10:00", closed="2025-10-05 10:00"),  # closed after 09-30: open, 29
    ticket("O", "2025-07-05 10:00", ticket_type="意见", branch_code="0102"),
    ticket("P", "2025-07-06 10:00", ticket_type="表扬"),
]  # fmt: skip
TRANSFERS_Q3 = [
    transfer("Z1", "2025-07-09", complaint_id="C", replied_on=dt.date(2025, 7, 20)),  # linked
    transfer("Z2", "2025-09-15", replied_on=dt.date(2025, 9, 20), business_category_code="B04",
             regulator="国家金融监督管理总局上海监管局"),  # unlinked: a complaint of its own
]  # fmt: skip


def test_overview_metrics_worked_out():
    t = tables(QUARTER, TRANSFERS_Q3)
    value = column(t["overview"], "metric", "value")
    assert value == {
        "complaints": D(7),  # A(+B), C(+Z1), D, E, F, G, Z2
        "complaints_raw": D(7),  # tickets A..G (H is 2025Q2)
        "regulator_transferred": D(2),  # C (via Z1), Z2
        "opinions": D(1), "praises": D(1),
        "closed": D(4),  # A, C, D, Z2 (G closed after the period)
        "closed_within_15d": D(2),  # A 15, Z2 5
        "closed_within_30d": D(4),  # + C 27, D 17
        "closed_within_60d": D(4),
        "closed_late": D(1),  # D: 17 > 15, not extended
        "open_at_end": D(3),  # E, F, G
        "open_overdue_at_end": D(2),  # E 20 > 15, G 29 > 15
        "close_rate": D("57.14"),  # 4 / 7 = 57.142..
        # C's clock starts on Z1's 转办日期 07-09, a day before its ticket: 27 days
        "avg_handling_days": D("16.00"),  # (15 + 27 + 17 + 5) / 4
        "responsible": D(1), "not_responsible": D(1),
        "repeat_rate": D("14.29"),  # B merged: 1 / 7 = 14.285..
        "callback_satisfaction_rate": D("50.00"),  # A 满意 of A, C called back (D 未回访)
        "backlog_open_at_end": D(1),  # H (2025Q2), open at 09-30
        "backlog_overdue_at_end": D(1),  # H: 92 days
        "held_updates": D(0),  # nothing in quarantine
    }  # fmt: skip
    previous = column(t["overview"], "metric", "previous")
    change = column(t["overview"], "metric", "change_pct")
    assert previous["complaints"] == D(1) and change["complaints"] == D("600.00")  # (7-1)/1
    assert previous["closed"] == D(0) and change["closed"] is None  # previous 0
    assert previous["close_rate"] == D("0.00") and change["close_rate"] is None
    assert t["overview"]["label"][0] == "投诉总量（合并重复后）"
    assert t["overview"].schema["value"] == pl.Decimal(20, 2)


def test_previous_is_unknown_without_any_drop_of_the_previous_period():
    t = tables(QUARTER[1:], TRANSFERS_Q3)  # nothing exported before 2025-07-01
    assert t["overview"]["previous"].null_count() == t["overview"].height
    assert t["overview"]["change_pct"].null_count() == t["overview"].height


def test_distributions_add_up_to_the_headline():
    t = tables(QUARTER, TRANSFERS_Q3)
    # B03: A, C, E, F, G; B04: D, Z2 (the transfer's own category)
    assert column(t["by_business_category"], "code", "complaints") == {"B03": 5, "B04": 2}
    assert t["by_business_category"]["share_display"].to_list() == ["71.43%", "28.57%"]
    cause = t["by_cause"]
    assert cause.height == 13 and cause["code"][-1] == "C99"  # every C code, 其他 last
    assert column(cause, "code", "complaints")["C99"] == 2  # D, and Z2 that has no cause
    assert cause["complaints"].sum() == 7
    region = column(t["by_region"], "region", "complaints")
    # C is owned by the card centre (9800), counted in the province it sits in (上海市)
    assert region == {"北京市": 6, "上海市": 1}
    assert t["by_region"]["region"].to_list() == ["北京市", "上海市"]


def test_regions_provinces_first_then_national_units_then_unknown():
    rows = [
        ticket("A", branch_code="9900"),  # 客服中心 (in 合肥), a national unit: not 安徽省
        ticket("B", branch_code="1201"),  # 安徽省 (sub-branch; its province from the reference)
        ticket("C", branch_code="3201"),  # 大连 (计划单列市 branch) is in 辽宁省
        ticket("D", branch_code="3202"),
        ticket("E", branch_code="9800"),  # 信用卡中心
        ticket("F", branch_code="7777"),  # not in the reference
    ]
    # [report] national_units = "separate": the centres under their own names, after provinces
    t = tables(rows, national_units="separate")["by_region"]
    assert t["region"].to_list() == ["辽宁省", "安徽省", "金泉银行信用卡中心", "金泉银行客服中心",
                                     "未知"]  # fmt: skip
    assert t["complaints"].to_list() == [2, 1, 1, 1, 1]
    assert t["share_display"].to_list() == ["33.33%"] + ["16.67%"] * 4


def test_by_channel_rolls_leaves_up_and_shares_among_siblings():
    t = tables(QUARTER, TRANSFERS_Q3)["by_channel"]
    n = column(t, "code", "complaints")
    # A0101: A, C, G; A010303: D; A0103 itself: F; A0199: Z2 (no channel); A02: E
    assert (n["A0101"], n["A010303"], n["A0103"], n["A0199"], n["A01"], n["A02"]) == (
        3, 1, 2, 1, 6, 1)  # fmt: skip
    assert t.height == 13 and t["code"].to_list()[:3] == ["A01", "A0101", "A0103"]
    assert t["code"].to_list()[-1] == "A02"
    share = column(t, "code", "share_pct")
    of_parent = column(t, "code", "share_of_parent_pct")
    assert share["A01"] == D("85.71") and of_parent["A01"] == D("85.71")  # 6 / 7
    assert of_parent["A0101"] == D("50.00")  # 3 of A01's 6
    assert of_parent["A010303"] == D("100.00")  # the only complaint coded below A0103
    assert t.filter(pl.col("code") == "A010303")["parent_code"].item() == "A0103"


def test_handling_time_buckets():
    t = tables(QUARTER, TRANSFERS_Q3)["handling_time"]
    assert t["bucket"].to_list() == ["≤15天", "16–30天", "31–60天", ">60天", "未办结"]
    assert t["complaints"].to_list() == [2, 2, 0, 0, 3]  # A Z2 | C D | - | - | E F G
    assert t["share_pct"].to_list() == [D("28.57"), D("28.57"), D("0.00"), D("0.00"), D("42.86")]
    lr = tables(QUARTER, TRANSFERS_Q3, rounding="largest_remainder")["handling_time"]
    assert lr["share_pct"].sum() == D(100)  # 28.57 + 28.57 + 42.86 = 100 already
    assert lr.schema["share_pct"] == pl.Decimal(10, 2)


def test_branch_scorecard():
    t = tables(QUARTER, TRANSFERS_Q3)["branch_scorecard"]
    rows = {r["branch_code"]: r for r in t.iter_rows(named=True)}
    assert list(rows) == ["0101", "0102", "9800"]
    b = rows["0101"]  # A, D, E, F, G, Z2 and the praise P
    assert (b["regulator_transferred"], b["direct_complaints"], b["opinions"],
            b["valid_complaints"], b["praises"]) == (1, 5, 0, 1, 1)  # fmt: skip
    # judged: closed A (on time), D (late), Z2 (on time), overdue E, G -> 2 / 5
    assert b["on_time_rate"] == D("40.00")
    assert rows["0102"]["opinions"] == 1 and rows["0102"]["on_time_rate"] is None
    assert rows["9800"]["branch_name"] == "金泉银行信用卡中心"
    assert rows["9800"]["on_time_rate"] == D("100.00")  # C: 26 days, extended


def test_regulator_transfers_per_office():
    rows = TRANSFERS_Q3 + [
        transfer("Z3", "2025-09-01"),  # due 09-16, unanswered at 09-30: open, overdue
        transfer("Z4", "2025-09-20"),  # due 10-05: open, not overdue at 09-30
        transfer("Z5", "2025-08-01", replied_on=dt.date(2025, 8, 20)),  # due 08-16: late
        transfer("Z6", "2025-09-10", replied_on=dt.date(2025, 10, 2)),  # replied after 09-30
        transfer("Z0", "2025-06-30"),  # previous quarter
    ]
    t = tables([ticket("C", "2025-07-10 10:00")], rows)["regulator_transfers"]
    bj = t.row(0, named=True)
    assert bj == {
        "regulator": "国家金融监督管理总局北京监管局", "received": 5,  # Z1 Z3 Z4 Z5 Z6
        "replied": 2, "replied_on_time": 1, "replied_late": 1,  # Z1 on time, Z5 late
        "open": 3, "open_overdue": 2,  # Z3 (due 09-16), Z6 (due 09-25, answered 10-02)
        "on_time_rate": D("25.00"),  # 1 / (2 replied + 2 overdue)
    }  # fmt: skip
    assert t["regulator"].to_list()[1] == "国家金融监督管理总局上海监管局"


def test_hotline_kpis_and_categories():
    calls = [
        call("K1", wait=10),  # answered in 10 s
        call("K2", wait=25, customer_mood="不满"),  # answered, outside the 20 s level
        call("K3", answered=False),  # abandoned
        call("K4", wait=None, service_mode="自助语音"),  # IVR only
        call("K5", wait=20, complaint_intent=True, outcome="已化解", inquiry_category="信用卡",
             survey_satisfaction="满意"),  # fmt: skip
        call("K6", wait=5, complaint_intent=True, outcome="转投诉", inquiry_category="其他",
             survey_satisfaction="不满意"),  # fmt: skip
        call("K6", wait=5, complaint_intent=True, outcome="转投诉", inquiry_category="其他",
             survey_satisfaction="不满意", drop_date=dt.date(2025, 7, 2)),  # re-export: once
        call("K7", "2025-06-30 23:59:59"),  # previous quarter (China time)
    ]  # fmt: skip
    t = tables(calls=calls)
    kpi = column(t["hotline_kpis"], "metric", "value")
    assert kpi == {
        "calls": 6, "ivr_only": 1, "human_requested": 5, "human_answered": 4, "abandoned": 1,
        "answer_rate": D("80.00"),  # 4 / 5
        "service_level": D("60.00"),  # K1, K5 (exactly 20 s), K6 of 5 requested
        "asa_seconds": D("15.00"),  # (10 + 25 + 20 + 5) / 4
        "dissatisfied_calls": 1, "complaint_intent_calls": 2, "defused_calls": 1,
        "converted_calls": 1, "survey_responses": 2,
        "survey_satisfaction_rate": D("50.00"),  # K5 满意 of K5, K6
    }  # fmt: skip
    by = t["hotline_by_category"]
    assert by["category"].to_list() == ["个人业务", "信用卡", "其他"]
    assert by["calls"].to_list() == [4, 1, 1]
    assert by["share_pct"].to_list() == [D("66.67"), D("16.67"), D("16.67")]
    assert by.row(2) == ("其他", 1, D("16.67"), 0, 1, 0, 1)
    assert t["monthly_trend"]["calls"].to_list() == [6, 0, 0]


def opened(row: dict) -> dict:
    """The first version of a ticket: 已受理, exported on the day of receipt."""
    first = {k: v for k, v in row.items() if k not in ("closed_at", "drop_date")}
    return first | {
        "status": "已受理",
        "updated_at": row["received_at"],
        "drop_date": row["received_at"].date(),
        "callback_satisfaction": None,
    }


def test_an_earlier_as_of_sees_neither_later_drops_nor_later_closures():
    history = [opened(r) for r in QUARTER] + QUARTER
    assert tables(history, TRANSFERS_Q3)["overview"].equals(
        tables(QUARTER, TRANSFERS_Q3)["overview"])  # fmt: skip
    early = tables(history, TRANSFERS_Q3, as_of="2025-08-10")  # cutoff 08-10
    value = column(early["overview"], "metric", "value")
    # known by 08-10: A, C(+Z1), D; E, F, G, Z2 come later. C closed 08-05, D not yet (08-20)
    assert (value["complaints"], value["closed"], value["open_at_end"]) == (D(3), D(2), D(1))
    assert early["monthly_trend"]["complaints"].to_list() == [2, 1, 0]


def generated(seed: int) -> tuple[list, list, list]:
    """A year of tickets (some closed later, some repeats), transfers and calls."""
    rng = random.Random(seed)
    tickets, transfers, calls = [], [], []
    for i in range(150):
        start = at("2025-01-01 09:00") + dt.timedelta(days=rng.randrange(365),
                                                       hours=rng.randrange(14))  # fmt: skip
        received = start.strftime("%Y-%m-%d %H:%M")
        repeat = i and rng.random() < 0.1
        same = {
            "ticket_type": rng.choice(["投诉"] * 8 + ["意见", "表扬"]),
            "business_category_code": rng.choice(["B01", "B03", "B04", "B99"]),
            "id_number_token": f"p{rng.randrange(30)}",
            "original_complaint_id": f"T{rng.randrange(i):03d}" if repeat else None,
        }  # fmt: skip
        tickets.append(ticket(f"T{i:03d}", received, **same))
        if rng.random() < 0.7:
            closed = start + dt.timedelta(days=rng.randrange(1, 40))
            tickets.append(ticket(f"T{i:03d}", received, closed=closed.isoformat()[:16], **same))
        if rng.random() < 0.15:
            link = f"T{i:03d}" if rng.random() < 0.5 else None
            transfers.append(transfer(f"Z{i:03d}", start.date().isoformat(), complaint_id=link))
        category = rng.choice(["个人业务", "其他"])
        calls.append(call(f"K{i:03d}", start.isoformat(" ")[:19], wait=rng.choice([None, 5, 30]),
                          inquiry_category=category))  # fmt: skip
    return tickets, transfers, calls


ADDITIVE = ["complaints", "complaints_raw", "regulator_transferred", "opinions", "praises",
            "responsible", "not_responsible"]  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2])
def test_four_quarters_add_up_to_the_year(seed):
    data = generated(seed)
    year = tables(*data, period=Period.parse("annual", "2025"), as_of="2026-03-31")
    quarters = [tables(*data, period=Period.parse("quarterly", f"2025Q{q}"), as_of="2026-03-31")
                for q in range(1, 5)]  # fmt: skip
    annual = column(year["overview"], "metric", "value")
    for metric in ADDITIVE:
        assert sum(column(q["overview"], "metric", "value")[metric] for q in quarters) == annual[
            metric], metric  # fmt: skip
    assert pl.concat([q["monthly_trend"] for q in quarters]).equals(year["monthly_trend"])
    by_cat = pl.concat([q["by_business_category"] for q in quarters]).group_by("code").agg(
        pl.sum("complaints"))  # fmt: skip
    assert column(by_cat, "code", "complaints") == column(
        year["by_business_category"], "code", "complaints")  # fmt: skip
    hotline = column(year["hotline_kpis"], "metric", "value")
    assert sum(column(q["hotline_kpis"], "metric", "value")["calls"] for q in quarters) == hotline[
        "calls"]  # fmt: skip


def test_same_inputs_in_any_row_order_give_identical_tables():
    tickets, transfers, calls = generated(3)
    first = tables(tickets, transfers, calls, period=Period.parse("annual", "2025"))
    random.Random(0).shuffle(tickets)
    random.Random(0).shuffle(transfers)
    again = tables(tickets, transfers, calls[::-1], period=Period.parse("annual", "2025"))
    for name, table in first.items():
        assert table.equals(again[name]), name
        assert table.columns == CONTRACT[name], name


@pytest.mark.parametrize("rounding", ["half_up", "largest_remainder"])
def test_every_table_has_exactly_the_contract_columns_and_fixed_dtypes(rounding):
    empty = tables(rounding=rounding, decimals=1)
    built = tables(*generated(4), rounding=rounding, decimals=1)
    for name in CONTRACT:
        assert empty[name].columns == built[name].columns == CONTRACT[name], name
        assert empty[name].schema == built[name].schema, name  # dtypes do not depend on data
    assert set(built) == set(CONTRACT)
    assert built["by_business_category"].schema["share_pct"] == pl.Decimal(10, 1)
    assert empty["by_cause"]["share_pct"].null_count() == 13  # zero total: null shares
    if rounding == "largest_remainder":
        assert built["by_cause"]["share_pct"].sum() == D(100)
        level1 = built["by_channel"].filter(pl.col("level") == 1)
        assert level1["share_pct"].sum() == D(100)


def test_period_parse_previous_months():
    q = Period.parse("quarterly", "2025Q1")
    assert (q.start, q.end, q.previous().label) == (dt.date(2025, 1, 1), dt.date(2025, 3, 31),
                                                    "2024Q4")  # fmt: skip
    assert [m.month for m in q.months()] == [1, 2, 3]
    assert Period.parse("annual", "2025").previous().label == "2024"
    for kind, text in [("quarterly", "2025Q5"), ("annual", "25"), ("monthly", "2025")]:
        with pytest.raises(ValueError):
            Period.parse(kind, text)


def test_config_from_settings_and_drop_windows():
    config = ReportConfig.from_settings({
        "report": {"rounding": "largest_remainder", "decimals": 1}, "sla": {"decision_days": 10},
        "hotline": {"service_level_seconds": 30}, "merge": {"implicit": False},
        "reference": {"branches": "x.csv"},
    })  # fmt: skip
    assert config == ReportConfig("largest_remainder", 1, 10, 30, 60, 30, False)
    # each message in the words of kesu.toml, not Python's (tuples, type names, >=)
    with pytest.raises(ValueError, match=r"^\[report\] rounding must be one of half_up, "):
        ReportConfig.from_settings({"report": {"rounding": "bankers"}})
    with pytest.raises(ValueError, match=r"^\[merge\] implicit must be true or false, not 'no'$"):
        ReportConfig.from_settings({"merge": {"implicit": "no"}})
    with pytest.raises(ValueError, match=r"decimals must be a whole number, 0 or more, not 'two'$"):
        ReportConfig.from_settings({"report": {"decimals": "two"}})
    as_of = dt.date(2025, 10, 15)
    assert drop_window("stg_complaints", Q3, as_of) == (None, as_of)
    assert drop_window("stg_hotline", Q3, as_of) == (dt.date(2025, 6, 30), as_of)
