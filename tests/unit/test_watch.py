"""The watch list's rules over literal tickets: due_on and days_left at every edge of the time
limits (kesu.transforms.watch), and the volume-alert rule on a constructed weekly series."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from kesu.transforms import report_complaints as rc
from kesu.transforms import report_transfers as rt
from kesu.transforms.periods import Period, period_groups
from kesu.transforms.reporting import ReportConfig
from kesu.transforms.watch import (
    DUE_SOON,
    VOLUME_ALERTS,
    due_soon,
    never_loaded,
    volume_alerts,
)
from test_complaint_model import model, ticket, transfer

from kesu import reference

BRANCHES = rt.reference_branches(pl.read_csv(reference.BRANCHES, infer_schema=False))
CODES = pl.read_csv(reference.JRT0169_CODES, infer_schema=False)
CATEGORIES = rc.reference_codes(CODES).filter(pl.col("axis") == "B")
LIMITS = ReportConfig()


def watch(tickets: list[dict], transfers: list[dict] = (), as_of: str = "2025-06-30",
          within: int = 30) -> pl.DataFrame:  # type: ignore[assignment]  # fmt: skip
    m = model(tickets, list(transfers), as_of=as_of)
    day = dt.date.fromisoformat(as_of)
    return due_soon(m, BRANCHES, CATEGORIES, day, within, LIMITS)


def row(table: pl.DataFrame, id_: str) -> dict:
    found = table.filter(pl.col("id") == id_)
    assert found.height == 1, f"{id_} listed {found.height} times"
    return found.row(0, named=True)


@pytest.mark.parametrize(
    ("given", "due_on", "days_left"),
    [
        # received on the 20th and still open: the 20th does not count, due 5 July, 5 days left
        (ticket("A", "2025-06-20 10:00"), "2025-07-05", 5),
        # late in the day is still the 20th (China time)
        (ticket("A", "2025-06-20 23:59"), "2025-07-05", 5),
        # half past midnight is the 21st
        (ticket("A", "2025-06-21 00:30"), "2025-07-06", 6),
        # extended: 30 days
        (ticket("A", "2025-06-01 10:00", extended=True), "2025-07-01", 1),
        # 扣除天数 added to the limit
        (ticket("A", "2025-06-20 10:00", excluded_days=3), "2025-07-08", 8),
        # extended and 扣除天数
        (ticket("A", "2025-05-20 10:00", extended=True, excluded_days=2), "2025-06-21", -9),
        # due today: 0 days left, not yet overdue
        (ticket("A", "2025-06-15 10:00"), "2025-06-30", 0),
        # due yesterday: overdue by one day
        (ticket("A", "2025-06-14 10:00"), "2025-06-29", -1),
    ],
)
def test_due_on_and_days_left_of_an_open_ticket(given, due_on, days_left):
    found = row(watch([given]), "A")
    assert (found["kind"], found["due_on"], found["days_left"]) == (
        "complaint", dt.date.fromisoformat(due_on), days_left,
    )  # fmt: skip
    assert found["received_on"] == given["received_at"].date()


def test_a_ticket_closed_the_day_it_was_due_is_not_listed_and_was_listed_until_then():
    closed = ticket("A", "2025-06-15 10:00", closed="2025-06-30 17:00")
    assert watch([closed], as_of="2025-06-30").height == 0
    # the day before, the same ticket (its open version) was due tomorrow
    open_version = ticket("A", "2025-06-15 10:00")
    assert row(watch([open_version, closed], as_of="2025-06-29"), "A")["days_left"] == 1


def test_a_transfer_due_earlier_than_15_days_sets_the_due_date():
    # unlinked: listed as a transfer, due on its 办理期限 (8 days after 转办日期, not 15)
    alone = transfer("ZB1", "2025-06-20", due_on=dt.date(2025, 6, 28))
    found = row(watch([], [alone]), "ZB1")
    assert (found["kind"], found["received_on"], found["due_on"], found["days_left"]) == (
        "transfer", dt.date(2025, 6, 20), dt.date(2025, 6, 28), -2,
    )  # fmt: skip
    # linked to an open ticket: the ticket's group is due on the transfer's earlier 办理期限,
    # and the transfer is not listed a second time
    linked = transfer("ZB2", "2025-06-20", due_on=dt.date(2025, 6, 25), complaint_id="T2")
    table = watch([ticket("T2", "2025-06-20 10:00")], [linked])
    assert table["id"].to_list() == ["T2"]
    assert (row(table, "T2")["due_on"], row(table, "T2")["days_left"]) == (dt.date(2025, 6, 25), -5)


def test_a_transfer_with_a_later_limit_keeps_the_15_days_and_an_answered_one_is_gone():
    late_limit = transfer("ZB1", "2025-06-20", due_on=dt.date(2025, 7, 20))
    answered = transfer("ZB2", "2025-06-10", replied_on=dt.date(2025, 6, 24), status="已反馈")
    table = watch([], [late_limit, answered])
    assert table["id"].to_list() == ["ZB1"]
    assert row(table, "ZB1")["due_on"] == dt.date(2025, 7, 5)


def test_a_linked_transfer_starts_the_clock_as_the_report_does():
    # forwarded 06-01 (办理期限 07-30), registered as ticket T1 on 06-10 and still open: the
    # bank received it on 06-01, so the 15 days ran out on 06-16, 4 days ago (reports.md,
    # "Time limit of a regulator transfer"); not 06-25 counted from the ticket
    linked = transfer("R1", "2025-06-01", due_on=dt.date(2025, 7, 30), complaint_id="T1")
    given = ([ticket("T1", "2025-06-10 10:00")], [linked])
    found = row(watch(*given, as_of="2025-06-20"), "T1")
    assert (found["received_on"], found["due_on"], found["days_left"]) == (
        dt.date(2025, 6, 1), dt.date(2025, 6, 16), -4,
    )  # fmt: skip
    # the same clock as the report's open_overdue_at_end at that day
    m = model(*given, as_of="2025-06-20")
    judged = period_groups(m.groups, Period.quarter(2025, 2), dt.date(2025, 6, 20), LIMITS)
    assert judged["overdue"].to_list() == [True]
    # extended: 30 days from 06-01
    extended = ticket("T1", "2025-06-10 10:00", extended=True)
    found = row(watch([extended], [linked], as_of="2025-06-20"), "T1")
    assert found["due_on"] == dt.date(2025, 7, 1)


def test_an_answered_transfer_no_longer_sets_the_due_date():
    # forwarded 06-20, 办理期限 06-25, replied 06-24; ticket T1 (06-20) still open: the regulator
    # has its reply, so the group is due on the bank's own 15 days, 07-05, 7 days left
    asked = transfer("R1", "2025-06-20", due_on=dt.date(2025, 6, 25), complaint_id="T1")
    replied = asked | {"replied_on": dt.date(2025, 6, 24), "status": "已反馈",
                       "updated_at": asked["updated_at"] + dt.timedelta(days=4),
                       "drop_date": dt.date(2025, 6, 24)}  # fmt: skip
    open_ticket = ticket("T1", "2025-06-20 10:00")
    found = row(watch([open_ticket], [asked, replied], as_of="2025-06-28"), "T1")
    assert (found["due_on"], found["days_left"]) == (dt.date(2025, 7, 5), 7)
    # before the reply the 办理期限 bound the group
    found = row(watch([open_ticket], [asked], as_of="2025-06-23"), "T1")
    assert (found["due_on"], found["days_left"]) == (dt.date(2025, 6, 25), 2)
    # a second transfer of the group, not yet answered, still binds when earlier than 07-05
    again = transfer("R2", "2025-06-22", due_on=dt.date(2025, 6, 30), complaint_id="T1")
    table = watch([open_ticket], [asked, replied, again], as_of="2025-06-28")
    assert table["id"].to_list() == ["T1"]
    assert (row(table, "T1")["due_on"], row(table, "T1")["days_left"]) == (dt.date(2025, 6, 30), 2)


def test_within_sorting_columns_and_masked_customer():
    tickets = [
        ticket("FAR", "2025-06-29 10:00"),  # due 14 July: 14 days, outside 5
        ticket("SOON", "2025-06-18 10:00", customer_name_masked="王*"),  # 3 days
        ticket("LATE", "2025-06-01 10:00", contact_phone_masked="138****1234"),  # -14
        ticket("DONE", "2025-06-01 10:00", closed="2025-06-10 10:00"),  # closed: not listed
    ]
    table = watch(tickets, within=5)
    assert table.columns == DUE_SOON
    assert table["id"].to_list() == ["LATE", "SOON"]  # by days_left
    assert table["days_left"].to_list() == [-14, 3]
    assert table["customer_masked"].to_list() == ["138****1234", "王*"]  # phone when no name
    assert table["branch_name"].null_count() == 0 and table["business_category"].null_count() == 0


def groups(counts: dict[tuple[str, str], list[int]], as_of: dt.date) -> pl.DataFrame:
    """Merge groups: for each (branch, category), counts[w] complaints in week w (0 = the 7
    days ending as_of, 1..8 the weeks before), received on the first day of each week."""
    rows = [
        {"branch_code": b, "business_category_code": c,
         "received_on": as_of - dt.timedelta(days=7 * w)}
        for (b, c), weekly in counts.items() for w, n in enumerate(weekly) for _ in range(n)
    ]  # fmt: skip
    return pl.DataFrame(rows, schema={"branch_code": pl.String,
                                      "business_category_code": pl.String,
                                      "received_on": pl.Date})  # fmt: skip


AS_OF = dt.date(2025, 6, 30)
SERIES = {
    # last week 8 against 2,3,2,3,...: mean 2.5, sd 0.53 floored to 1 -> score 5.5: alert
    ("0101", "B03"): [8, 2, 3, 2, 3, 2, 3, 2, 3],
    # last week 7 against a steady 5: score 2 (sd 0 floored to 1): below 3, no alert
    ("0102", "B03"): [7, 5, 5, 5, 5, 5, 5, 5, 5],
    # 2 where there were none: score 2, and fewer than 3 complaints: no alert
    ("0103", "B01"): [2, 0, 0, 0, 0, 0, 0, 0, 0],
    # 6 against 0,0,...,8 (one busy week long ago): mean 1, sd 2.83 -> score 1.77: no alert
    ("0104", "B02"): [6, 0, 0, 0, 0, 0, 0, 0, 8],
    # 4 against nothing: score 4 with 4 complaints: alert
    ("0105", "B05"): [4, 0, 0, 0, 0, 0, 0, 0, 0],
}


def test_volume_alerts_on_a_constructed_series():
    table = volume_alerts(groups(SERIES, AS_OF), BRANCHES, CATEGORIES, AS_OF,
                          first_drop=dt.date(2025, 1, 1), min_score=3.0, min_count=3)  # fmt: skip
    assert table.columns == VOLUME_ALERTS
    rows = table.select("branch_code", "last_7_days", "baseline_mean", "baseline_sd", "score")
    assert rows.rows() == [("0101", 8, 2.5, 0.53, 5.5), ("0105", 4, 0.0, 0.0, 4.0)]


def test_volume_alerts_need_four_whole_weeks_of_history():
    # data from 3 weeks and a day before as_of: only 2 whole baseline weeks, nothing is judged
    first = AS_OF - dt.timedelta(days=7 * 3 + 1)
    table = volume_alerts(groups(SERIES, AS_OF), BRANCHES, CATEGORIES, AS_OF, first, 3.0, 3)
    assert table.height == 0
    # from 5 weeks back: weeks 1..4 are whole. 0101 still stands out (8 vs 2,3,2,3), and 0104's
    # busy week 8 is no longer in the baseline: 6 against 0,0,0,0 scores 6, first by score
    first = AS_OF - dt.timedelta(days=7 * 5 - 1)
    table = volume_alerts(groups(SERIES, AS_OF), BRANCHES, CATEGORIES, AS_OF, first, 3.0, 3)
    assert table.select("branch_code", "score").rows() == [
        ("0104", 6.0), ("0101", 5.5), ("0105", 4.0),
    ]  # fmt: skip


def held_rows(*rows: tuple[str, str, str, str, str]) -> pl.DataFrame:
    """Quarantined complaint rows as `quarantine/complaints` holds them: source text."""
    return pl.DataFrame(
        [
            {"source_file": "c.csv", "source_line": 2, "field": field, "rule": rule,
             "reason": reason, "complaint_id": cid, "updated_at": updated,
             "drop_date": dt.date.fromisoformat(drop)}
            for cid, updated, drop, rule, (field, reason) in (
                (r[0], r[1], r[2], r[3], r[4].split("|")) for r in rows
            )
        ]
    )  # fmt: skip


HELD = ["held_update", "held_rule", "held_reason"]  # the mark: the held version, null when none
UNPARSEABLE = "更新时间|更新时间 (updated_at): not a date-time in YYYY-MM-DD HH:MM:SS: N/A"
MISSING = "机构代码|机构代码 (branch_code) is missing"


def test_a_complaint_whose_closing_version_is_held_is_listed_with_a_mark_not_silently():
    tickets = [
        ticket("HELD", "2025-06-01 10:00"),  # loaded open (drop 06-01); its closure is held
        ticket("PLAIN", "2025-06-02 10:00"),  # open, nothing held: a real overdue complaint
        ticket("OLDER", "2025-06-03 10:00", status="处理中", updated_at=dt.datetime(
            2025, 6, 5, 9, tzinfo=dt.UTC), drop_date=dt.date(2025, 6, 5)),  # loaded 06-05
        ticket("ROOT", "2025-06-04 10:00"),  # a merge group: its repeat's new version is held
        ticket("REPEAT", "2025-06-06 10:00", original_complaint_id="ROOT"),
    ]  # fmt: skip
    held = held_rows(
        # the 已办结 version of 06-20, held only because its 更新时间 reads N/A
        ("HELD", "N/A", "2025-06-20", "unparseable", UNPARSEABLE),
        ("OLDER", "2025-06-04 09:00:00", "2025-06-04", "required", MISSING),  # older: no mark
        ("REPEAT", "2025-06-21 09:00:00", "2025-06-21", "required", MISSING),  # marks ROOT
        # never loaded: no version to list (the report's held_updates names it)
        ("NEVER", "2025-06-22 09:00:00", "2025-06-22", "required", MISSING),
    )
    m = model(tickets, as_of="2025-06-30")
    table = due_soon(m, BRANCHES, CATEGORIES, dt.date(2025, 6, 30), 5, LIMITS, held)
    assert table.columns == DUE_SOON
    # every group is still listed, overdue as the loaded version says (days_left unchanged)
    assert table.select("id", "days_left").rows() == [
        ("HELD", -14), ("PLAIN", -13), ("OLDER", -12), ("ROOT", -11),
    ]  # fmt: skip
    marks = {r["id"]: (r["held_update"], r["held_rule"]) for r in table.iter_rows(named=True)}
    assert marks == {
        "HELD": (dt.date(2025, 6, 20), "unparseable"),
        "PLAIN": (None, None),
        "OLDER": (None, None),
        "ROOT": (dt.date(2025, 6, 21), "required"),
    }
    assert row(table, "HELD")["held_reason"].startswith("更新时间 (updated_at): not a date-time")
    # NEVER, held whole, cannot be listed: counted, so that the list says so
    assert never_loaded(m, held, dt.date(2025, 6, 30)) == 1
    assert (
        never_loaded(m, held.filter(pl.col("complaint_id") != "NEVER"), dt.date(2025, 6, 30)) == 0
    )
    # without the quarantine rows the same list, unmarked
    bare = due_soon(m, BRANCHES, CATEGORIES, dt.date(2025, 6, 30), 5, LIMITS)
    assert bare.drop(HELD).equals(table.drop(HELD))
    assert bare["held_update"].null_count() == bare.height
