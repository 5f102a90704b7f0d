"""The complaint model over literal rows: latest versions as of a drop date, and merge groups.

The row builders at the top (staged schema, sensible defaults) are shared with the report tests,
so each test states only what matters to it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from kesu.transforms.complaint_model import build

SH = ZoneInfo("Asia/Shanghai")
DT = pl.Datetime("us", "Asia/Shanghai")
COMPLAINTS = {
    "complaint_id": pl.String, "ticket_type": pl.String, "intake_channel": pl.String,
    "received_at": DT, "channel_label": pl.String, "channel_code": pl.String,
    "business_category_label": pl.String, "business_category_code": pl.String,
    "cause_label": pl.String, "cause_code": pl.String, "branch_code": pl.String,
    "customer_name_token": pl.String, "customer_name_masked": pl.String,
    "id_number_token": pl.String, "id_number_masked": pl.String,
    "contact_phone_token": pl.String, "contact_phone_masked": pl.String,
    "content_masked": pl.String, "status": pl.String, "extended": pl.Boolean,
    "excluded_days": pl.Int32, "closed_at": DT, "liability": pl.String,
    "original_complaint_id": pl.String, "callback_satisfaction": pl.String,
    "amount": pl.Decimal(18, 2), "updated_at": DT, "source_file": pl.String,
    "source_line": pl.Int64, "drop_date": pl.Date,
}  # fmt: skip
TRANSFERS = {
    "transfer_id": pl.String, "regulator": pl.String, "source": pl.String,
    "transferred_on": pl.Date, "due_on": pl.Date, "complainant_name_token": pl.String,
    "complainant_name_masked": pl.String, "contact_phone_token": pl.String,
    "contact_phone_masked": pl.String, "branch_label": pl.String, "branch_code": pl.String,
    "business_category_label": pl.String, "business_category_code": pl.String,
    "matter_masked": pl.String, "complaint_id": pl.String, "replied_on": pl.Date,
    "status": pl.String, "updated_at": DT, "source_file": pl.String, "source_line": pl.Int64,
    "drop_date": pl.Date,
}  # fmt: skip
HOTLINE = {
    "call_id": pl.String, "call_start_at": DT, "queued_at": DT, "answered_at": DT,
    "hung_up_at": DT, "caller_token": pl.String, "caller_masked": pl.String,
    "service_mode": pl.String, "agent_id": pl.String, "call_type": pl.String,
    "inquiry_category": pl.String, "inquiry_topic": pl.String, "customer_mood": pl.String,
    "complaint_intent": pl.Boolean, "outcome": pl.String, "complaint_id": pl.String,
    "survey_satisfaction": pl.String, "branch_code": pl.String, "source_file": pl.String,
    "source_line": pl.Int64, "drop_date": pl.Date,
}  # fmt: skip


def at(text: str) -> dt.datetime:
    """China time: at("2025-07-01 10:00")."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=SH)


def ticket(cid: str, received: str = "2025-07-01 10:00", closed: str | None = None,
           **overrides: Any) -> dict[str, Any]:  # fmt: skip
    """One ticket version; closed= makes it the 已办结 version exported on the closing day."""
    row: dict[str, Any] = {
        "complaint_id": cid, "ticket_type": "投诉", "intake_channel": "客服热线",
        "received_at": at(received), "channel_code": "A0101", "business_category_code": "B03",
        "cause_code": "C01", "branch_code": "0101", "status": "已受理", "extended": False,
        "excluded_days": 0, "updated_at": at(received), "source_file": "c.csv", "source_line": 2,
    }  # fmt: skip
    if closed is not None:
        row |= {"status": "已办结", "closed_at": at(closed), "updated_at": at(closed)}
    row |= overrides
    row.setdefault("drop_date", row["updated_at"].date())
    return row


def transfer(tid: str, on: str = "2025-07-01", **overrides: Any) -> dict[str, Any]:
    """One transfer version, forwarded on `on` with a 15-day 办理期限."""
    day = dt.date.fromisoformat(on)
    row: dict[str, Any] = {
        "transfer_id": tid, "regulator": "国家金融监督管理总局北京监管局", "source": "12378热线",
        "transferred_on": day, "due_on": day + dt.timedelta(days=15), "branch_code": "0101",
        "business_category_code": "B03", "status": "处理中",
        "updated_at": at(f"{on} 09:00"), "source_file": "t.csv", "source_line": 2,
    }  # fmt: skip
    row |= overrides
    row.setdefault("drop_date", row["updated_at"].date())
    return row


def call(cid: str, start: str = "2025-07-01 10:00:00", wait: int | None = 10,
         answered: bool = True, **overrides: Any) -> dict[str, Any]:  # fmt: skip
    """One call; wait=None is IVR only, else queued 30 s after start, picked up `wait` s later."""
    begin = at(start)
    queued = None if wait is None else begin + dt.timedelta(seconds=30)
    picked = queued + dt.timedelta(seconds=wait) if queued and answered else None
    row: dict[str, Any] = {
        "call_id": cid, "call_start_at": begin, "queued_at": queued, "answered_at": picked,
        "hung_up_at": begin + dt.timedelta(minutes=5), "service_mode": "人工",
        "call_type": "咨询", "inquiry_category": "个人业务", "customer_mood": "正常",
        "complaint_intent": False, "outcome": "已解答", "survey_satisfaction": "未评价",
        "source_file": "h.csv", "source_line": 2, "drop_date": begin.date(),
    }  # fmt: skip
    return row | overrides


def frame(rows: list[dict[str, Any]], schema: dict[str, Any]) -> pl.LazyFrame:
    full = [{name: row.get(name) for name in schema} for row in rows]
    return pl.DataFrame(full, schema=schema, orient="row").lazy()


def model(tickets: list[dict], transfers: list[dict] = (), as_of: str = "2025-12-31",
          implicit: bool = True):  # type: ignore[assignment]  # fmt: skip
    return build(frame(tickets, COMPLAINTS), frame(list(transfers), TRANSFERS),
                 dt.date.fromisoformat(as_of), implicit)  # fmt: skip


def group_of(m, cid: str) -> str:
    return m.tickets.filter(pl.col("complaint_id") == cid)["group_id"].item()


def test_latest_version_by_updated_at_then_drop_date_then_line():
    def version(status: str, updated: str, drop: int, line: int = 2) -> dict[str, Any]:
        closed = at(updated) if status in ("已办结", "已撤诉") else None
        return ticket("A", status=status, updated_at=at(updated), closed_at=closed,
                      drop_date=dt.date(2025, 7, drop), source_line=line)  # fmt: skip

    m = model([
        version("处理中", "2025-07-02 09:00", 2),
        version("已受理", "2025-07-01 11:00", 9),  # exported late, but older: loses
        version("已撤诉", "2025-07-02 09:00", 3),  # same updated_at, later drop: beats 处理中
        version("已办结", "2025-07-02 09:00", 3, line=9),  # same drop, later line: wins
    ])  # fmt: skip
    assert m.tickets["status"].to_list() == ["已办结"]


def test_a_later_drop_is_invisible_at_an_earlier_as_of():
    rows = [ticket("A"), ticket("A", closed="2025-07-05 16:00")]  # closure exported 07-05
    assert model(rows, as_of="2025-07-04").groups["closed_on"].to_list() == [None]
    assert model(rows, as_of="2025-07-05").groups["closed_on"].to_list() == [dt.date(2025, 7, 5)]


def test_repeat_chain_joins_the_root_and_takes_its_attributes():
    m = model([
        ticket("A", "2025-07-01 10:00", business_category_code="B04", branch_code="0102"),
        ticket("B", "2025-07-03 10:00", original_complaint_id="A"),
        ticket("C", "2025-07-04 10:00", original_complaint_id="B"),  # follows B to A
    ])  # fmt: skip
    assert m.groups.height == 1
    g = m.groups.row(0, named=True)
    assert (g["group_id"], g["business_category_code"], g["branch_code"]) == ("T:A", "B04", "0102")
    assert {group_of(m, c) for c in "ABC"} == {"T:A"}
    assert m.tickets.sort("complaint_id")["is_root"].to_list() == [True, False, False]


def test_missing_original_is_its_own_root_and_a_cycle_ends():
    m = model([
        ticket("B", "2025-07-02 10:00", original_complaint_id="GONE"),
        ticket("C", "2025-07-03 10:00", original_complaint_id="D"),
        ticket("D", "2025-07-04 10:00", original_complaint_id="C"),  # C <-> D: one group, root C
    ])  # fmt: skip
    assert m.groups["group_id"].to_list() == ["T:B", "T:C"]
    assert group_of(m, "D") == "T:C"


def test_only_complaint_tickets_form_groups():
    m = model([ticket("A"), ticket("O", ticket_type="意见"), ticket("P", ticket_type="表扬")])
    assert m.groups["group_id"].to_list() == ["T:A"]
    assert m.tickets.height == 3


def test_linked_transfer_is_the_same_complaint_but_marks_it_transferred():
    m = model([ticket("A", "2025-07-02 10:00")], [transfer("Z1", "2025-07-01", complaint_id="A")])
    g = m.groups.row(0, named=True)
    # one complaint, received when the bank registered the ticket (its earliest ticket)
    assert (m.groups.height, g["group_id"], g["has_transfer"]) == (1, "T:A", True)
    assert g["received_on"] == dt.date(2025, 7, 2)


def test_unlinked_transfer_counts_on_its_own_transfer_date_with_its_category():
    z1 = transfer("Z1", "2025-07-03", business_category_code="B04", complaint_id="NOT-YET-SEEN",
                  replied_on=dt.date(2025, 7, 9))  # fmt: skip
    m = model([ticket("A")], [z1])
    z = m.groups.filter(pl.col("group_id") == "R:Z1").row(0, named=True)
    assert (z["received_on"], z["business_category_code"], z["cause_code"]) == (
        dt.date(2025, 7, 3), "B04", None)  # fmt: skip
    assert (z["has_transfer"], z["closed_on"]) == (True, dt.date(2025, 7, 9))


def test_a_group_led_by_a_transfer_is_classified_as_its_ticket():
    # The customer complained to the regulator first, then to the bank: one complaint, received
    # on the 转办日期, but a transfer has no cause, channel or liability. Taken from it, the
    # complaint was counted under 其他 (C99, A0199) without its liability.
    z1 = transfer("Z1", "2025-07-01", contact_phone_token="t1", branch_code="3201")
    a = ticket("A", "2025-07-03 10:00", contact_phone_token="t1", cause_code="C07",
               channel_code="A010303", liability="有责", callback_satisfaction="满意")  # fmt: skip
    g = model([a], [z1]).groups.row(0, named=True)
    assert (g["group_id"], g["received_on"]) == ("R:Z1", dt.date(2025, 7, 1))
    attributes = ("cause_code", "channel_code", "liability", "callback_satisfaction", "branch_code")
    assert tuple(g[k] for k in attributes) == ("C07", "A010303", "有责", "满意", "0101")
    # a group of transfers alone keeps its earliest transfer's
    alone = model([], [z1, transfer("Z2", "2025-07-02", contact_phone_token="t1")])
    assert alone.groups.select("group_id", "branch_code").rows() == [("R:Z1", "3201")]


def test_implicit_repeat_same_person_and_category_while_open():
    rows = [
        ticket("A", "2025-07-01 10:00", id_number_token="p1"),
        ticket("A", "2025-07-01 10:00", closed="2025-07-06 10:00", id_number_token="p1"),
        ticket("B", "2025-07-05 10:00", id_number_token="p1"),  # A still open: repeat
        ticket("B", "2025-07-05 10:00", closed="2025-07-06 10:00", id_number_token="p1"),
        ticket("C", "2025-07-07 10:00", id_number_token="p1"),  # A and B closed on 07-06: new
        ticket("D", "2025-07-05 11:00", id_number_token="p1", business_category_code="B04"),
        ticket("E", "2025-07-05 12:00", contact_phone_token="p1"),  # another token space
        ticket("F", "2025-07-05 13:00", contact_phone_token="t9"),
        ticket("G", "2025-07-08 13:00", contact_phone_token="t9"),  # F open: by phone
    ]
    on = model(rows)
    assert group_of(on, "B") == "T:A" and group_of(on, "G") == "T:F"
    assert {group_of(on, c) for c in "CDE"} == {"T:C", "T:D", "T:E"}
    assert on.groups.height == 5
    # a repeat of a repeat that is still open joins the same group
    chained = model(rows[:2] + [ticket("B", "2025-07-05 10:00", id_number_token="p1")] + rows[4:])
    assert group_of(chained, "C") == "T:A"
    off = model(rows, implicit=False)
    assert off.groups.height == 7


def test_group_received_date_is_the_china_date():
    # 2025-06-30 16:30 UTC is 2025-07-01 00:30 in China
    utc = dt.datetime(2025, 6, 30, 16, 30, tzinfo=dt.UTC)
    m = model([ticket("A", received_at=utc, updated_at=utc, drop_date=dt.date(2025, 7, 1))])
    assert m.groups["received_on"].to_list() == [dt.date(2025, 7, 1)]
