"""The monthly 客户之声 report: the monthly period, overview's month-on-month and year-on-year
columns over literal tickets, and the 总体情况 sentence for rises, falls and 持平."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest
from kesu.reports import summary
from kesu.transforms import monthly, shares
from kesu.transforms.periods import Coverage, Period
from kesu.transforms.reporting import ReportConfig, ReportInputs, build_tables, holds_records
from test_complaint_model import COMPLAINTS, HOTLINE, TRANSFERS, frame, ticket, transfer

from kesu import reference

D = Decimal
CODES = pl.read_csv(reference.JRT0169_CODES, infer_schema=False)
BRANCHES = pl.read_csv(reference.BRANCHES, infer_schema=False)
JUNE = Period.parse("monthly", "2025-06")


def test_the_monthly_period_its_previous_month_and_the_same_month_a_year_earlier():
    assert (JUNE.label, JUNE.start, JUNE.end) == ("2025-06", dt.date(2025, 6, 1),
                                                  dt.date(2025, 6, 30))  # fmt: skip
    assert JUNE.previous() == Period.month(2025, 5)
    assert JUNE.year_earlier() == Period.month(2024, 6)
    assert Period.parse("monthly", "2025-01").previous() == Period.month(2024, 12)
    assert Period.parse("monthly", "2024-02").end == dt.date(2024, 2, 29)
    for bad in ("2025-13", "2025-6", "202506", "2025Q2"):
        with pytest.raises(ValueError, match="2025-06"):
            Period.parse("monthly", bad)


def monthly_overview(tickets: list[dict], transfers: list[dict] = (), as_of: str = "2025-07-02",
                     ) -> dict[str, dict]:  # type: ignore[assignment]  # fmt: skip
    """The monthly overview of June 2025 as the report flow builds it, by metric."""
    inputs = ReportInputs(frame(tickets, COMPLAINTS), frame(list(transfers), TRANSFERS),
                          frame([], HOTLINE), BRANCHES, CODES)  # fmt: skip
    day, config = dt.date.fromisoformat(as_of), ReportConfig()
    overview = build_tables(inputs, JUNE, day, config)["overview"]
    table = monthly.with_year_on_year(
        overview, monthly.year_earlier_values(inputs, JUNE, day, config)
    )
    assert table.columns[-2:] == ["previous_year", "change_yoy_pct"]
    return {r["metric"]: r for r in table.iter_rows(named=True)}


# June 2025: 4 complaints (one closed), 1 opinion; May 2025: 2 complaints; June 2024: 5.
LITERAL = [
    ticket("J1", "2025-06-02 10:00", closed="2025-06-10 10:00", liability="有责"),
    ticket("J2", "2025-06-11 10:00", liability="有责"),
    ticket("J3", "2025-06-30 23:59"),  # late on the last day: still June
    ticket("J4", "2025-06-15 09:00"),
    ticket("J5", "2025-06-15 09:00", ticket_type="意见"),
    ticket("M1", "2025-05-05 10:00", closed="2025-05-06 10:00"),
    ticket("M2", "2025-05-31 23:00", closed="2025-06-02 10:00"),
    *[ticket(f"Y{n}", f"2024-06-0{n} 10:00", closed=f"2024-06-1{n} 10:00") for n in range(1, 6)],
    ticket("N1", "2025-07-01 00:10"),  # July: in no compared month
]


def test_monthly_overview_month_on_month_and_year_on_year():
    rows = monthly_overview(LITERAL)
    got = {m: (rows[m]["value"], rows[m]["previous"], rows[m]["change_pct"],
               rows[m]["previous_year"], rows[m]["change_yoy_pct"])
           for m in ("complaints", "opinions", "closed", "close_rate", "responsible")}  # fmt: skip
    assert got == {
        "complaints": (D(4), D(2), D("100.00"), D(5), D("-20.00")),
        "opinions": (D(1), D(0), None, D(0), None),  # previous 0: no percentage
        # closures are as at each month's end: M2 closed on 2 June was open at the end of May
        "closed": (D(1), D(1), D("0.00"), D(5), D("-80.00")),
        "close_rate": (D("25.00"), D("50.00"), D("-50.00"), D("100.00"), D("-75.00")),
        "responsible": (D(2), D(0), None, D(0), None),
    }


def test_year_on_year_is_null_when_the_warehouse_knows_nothing_of_that_month():
    # the earliest drop is in 2025: June 2024 is unknown, not zero
    rows = monthly_overview([t for t in LITERAL if not t["complaint_id"].startswith("Y")])
    assert rows["complaints"]["previous_year"] is None
    assert rows["complaints"]["change_yoy_pct"] is None
    assert rows["complaints"]["change_pct"] == D("100.00")


def test_a_transfer_counts_in_the_month_of_its_transfer_date():
    rows = monthly_overview(LITERAL, [transfer("ZB1", "2025-06-20"), transfer("ZB0", "2025-05-20")])
    assert (rows["regulator_transferred"]["value"], rows["regulator_transferred"]["previous"]) == (
        D(1), D(1),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("value", "previous", "phrase"),
    [
        (22, 78, "下降71.79%"),  # the 吉林银行 bulletin's own figure
        (30, 24, "上升25.00%"),
        (7, 7, "持平"),
        (0, 0, "持平"),
        (3, 0, None),  # no percentage of nothing
        (3, None, None),  # unknown
    ],
)
def test_count_change_words(value, previous, phrase):
    assert summary.count_change(value, previous) == phrase


@pytest.mark.parametrize(
    ("value", "previous", "phrase"),
    [
        (D("100.00"), D("98.50"), "上升1.50个百分点"),
        (D("90.00"), D("95.25"), "下降5.25个百分点"),
        (D("100.00"), D("100.00"), "持平"),
        (D("100.00"), None, None),
    ],
)
def test_rate_change_words(value, previous, phrase):
    assert summary.rate_change(value, previous) == phrase


def overview(now: dict, month: dict, year: dict | None) -> pl.DataFrame:
    table = shares.metric_values(now)
    table = table.with_columns(previous=shares.metric_values(month)["value"])
    return monthly.with_year_on_year(table, year)


def test_the_summary_paragraph_rises_falls_and_holds():
    now = {"complaints_raw": 22, "opinions": 5, "praises": 3, "regulator_transferred": 7,
           "responsible": 4, "close_rate": D("100.00")}  # fmt: skip
    month = {"complaints_raw": 78, "opinions": 5, "praises": 0, "regulator_transferred": 6,
             "responsible": 4, "close_rate": D("98.00")}  # fmt: skip
    year = {"complaints_raw": 20, "opinions": 6, "praises": 3, "regulator_transferred": 7,
            "responsible": 5, "close_rate": D("100.00")}  # fmt: skip
    text = summary.paragraph(overview(now, month, year), "2025-04")
    assert text == (
        "2025年4月份各渠道共受理消费投诉类工单30件（投诉22件、意见5件、表扬3件），"
        "受理量较上月下降63.86%，较上年同月上升3.45%。"
        "投诉22件，较上月下降71.79%，较上年同月上升10.00%。"
        "意见5件，较上月持平，较上年同月下降16.67%。"
        "表扬3件，上月为0件，较上年同月持平。"
        "监管转办投诉7件，较上月上升16.67%，较上年同月持平。"
        "有效投诉4件，较上月持平，较上年同月下降20.00%。"
        "投诉办结率100.00%，较上月上升2.00个百分点，较上年同月持平。"
    )
    # a year earlier unknown: said, not invented
    text = summary.paragraph(overview(now, month, None), "2025-04")
    assert "上年同月无可比数据" in text and "较上年同月" not in text


def test_the_summary_of_an_incomplete_month_says_how_far_its_data_reaches():
    values = {"complaints_raw": 2, "opinions": 1, "praises": 0, "regulator_transferred": 0,
              "responsible": 1, "close_rate": D("50.00")}  # fmt: skip
    table = overview(values, values, values)
    half = Coverage(dt.date(2025, 4, 1), dt.date(2025, 4, 15), complete=False)
    text = summary.render({"overview": table}, "2025-04", half)
    assert text.startswith("# 2025年4月份客户之声（数据截至2025年4月15日）\n")
    assert "2025年4月份（截至4月15日）各渠道共受理消费投诉类工单3件" in text
    whole = Coverage(dt.date(2025, 4, 1), dt.date(2025, 4, 30), complete=True)
    assert summary.render({"overview": table}, "2025-04", whole).startswith(
        "# 2025年4月份客户之声\n"
    )


def test_the_summary_of_a_month_no_drop_covers_states_no_count():
    values = dict.fromkeys(("complaints_raw", "opinions", "praises", "regulator_transferred",
                            "responsible"), 0) | {"close_rate": None}  # fmt: skip
    table = overview(values, values, None)
    text = summary.render({"overview": table}, "2024-06", Coverage(None, None, complete=False))
    assert text == (
        "# 2024年6月份客户之声（暂无数据）\n\n## 总体情况\n\n"
        "2024年6月份暂无数据：本月没有任何数据批次，各项指标均无数据。\n"
    )


def test_the_summary_of_a_month_no_drop_covers_but_with_records_from_later_drops_says_so():
    # December: no drop dated in it, but two tickets received on the 31st came on 2 January
    values = {"complaints_raw": 2, "opinions": 0, "praises": 0, "regulator_transferred": 0,
              "responsible": 1, "close_rate": D("50.00")}  # fmt: skip
    tables = {"overview": overview(values, values, None)}
    late = Coverage(None, None, complete=False, late_records=holds_records(tables))
    assert summary.render(tables, "2024-12", late) == (
        "# 2024年12月份客户之声（本期无数据批次，仅含后续批次报送的记录）\n\n## 总体情况\n\n"
        "2024年12月份暂无数据批次覆盖本期：本月没有任何数据批次；各表仅有本期受理、"
        "随后续数据批次报送的记录，并非本期完整数据，此处不列示指标。\n"
    )
