"""What was known at the end of drop date D: the latest version of every ticket and transfer, and
the merge groups a disclosure counts ("合并重复后"). Nothing here depends on the report period.

Members of a group are 投诉 tickets and transfers not linked to a ticket (they stand for a ticket
of their own, received on 转办日期). A transfer linked to a 投诉 ticket joins that ticket's group
without being a member: it adds no count and no receipt date, only the fact of the regulator
transfer and its 转办日期, from which the group's time limit runs if it is earlier (`clock_on`).
The same customer is the same ID-number token or the same phone token. A group is received
when its earliest member was, and classified (codes, branch, liability) as its earliest ticket
is, or its earliest transfer where it holds no ticket.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl
from kesu.transforms.columns import COMPLAINT_CLOSED_STATUSES, COMPLAINT_TYPES
from kesu.transforms.periods import TZ, china_midnight, latest

COMPLAINT = COMPLAINT_TYPES[0]
ROOT_ORDER = ["received_at", "kind", "member_id"]  # earliest first; a ticket before a transfer
ATTRIBUTES = ["business_category_code", "cause_code", "channel_code", "branch_code", "liability",
              "callback_satisfaction"]  # fmt: skip


@dataclass(frozen=True)
class ComplaintModel:
    tickets: pl.DataFrame  # one row per ticket (all types); group_id, is_root on 投诉 tickets
    transfers: pl.DataFrame  # one row per transfer; linked, group_id, is_root
    groups: pl.DataFrame  # one row per complaint merge group


def _token(prefix: str, column: str) -> pl.Expr:
    # prefixes keep the two token spaces apart
    return pl.when(pl.col(column).str.len_chars() > 0).then(pl.lit(prefix) + pl.col(column))


def members(tickets: pl.DataFrame, transfers: pl.DataFrame) -> pl.DataFrame:
    """One row per 投诉 ticket or unlinked transfer: its dates, codes and closure as of D."""
    closed = pl.col("status").is_in(COMPLAINT_CLOSED_STATUSES) & pl.col("closed_at").is_not_null()
    closes_at = pl.when(closed).then(pl.col("closed_at").dt.convert_time_zone(TZ))
    own = tickets.filter(pl.col("ticket_type") == COMPLAINT).select(
        *ATTRIBUTES, member_id="T:" + pl.col("complaint_id"), kind=pl.lit(0, pl.Int8),
        received_at=pl.col("received_at").dt.convert_time_zone(TZ),
        customer_id=_token("id:", "id_number_token"),
        customer_tel=_token("tel:", "contact_phone_token"),
        closes_at=closes_at, closed_on=closes_at.dt.date(),
        extended=pl.col("extended").fill_null(False),
        excluded_days=pl.col("excluded_days").fill_null(0).cast(pl.Int32),
    )  # fmt: skip
    by_regulator = transfers.filter(~pl.col("linked")).select(
        "business_category_code", "branch_code",
        member_id="R:" + pl.col("transfer_id"), kind=pl.lit(1, pl.Int8),
        received_at=china_midnight(pl.col("transferred_on")),
        customer_tel=_token("tel:", "contact_phone_token"),  # a transfer carries only a phone
        # replied on day d: still open during d
        closes_at=china_midnight(pl.col("replied_on") + pl.duration(days=1)),
        closed_on="replied_on", extended=pl.lit(False), excluded_days=pl.lit(0, pl.Int32),
    )  # fmt: skip
    return pl.concat([own, by_regulator], how="diagonal")


def components(edges: pl.DataFrame) -> pl.DataFrame:
    """One row per node with an edge: `label`, the smallest node id of its connected component.
    Undirected, so chains reach their root and a cycle of 原投诉编号 cannot loop."""
    both = pl.concat([edges.select("a", "b"), edges.select(a="b", b="a")]).unique()
    label = both.select(node="a").unique().with_columns(label=pl.col("node")).sort("node")
    for _ in range(label.height + 1):
        hop = both.join(label, left_on="b", right_on="node").group_by("a").agg(seen=pl.min("label"))
        moved = label.join(hop, left_on="node", right_on="a", how="left", maintain_order="left")
        moved = moved.select("node", label=pl.min_horizontal("label", "seen"))
        if moved.equals(label):
            break
        label = moved
    return label


def _relabel(frame: pl.DataFrame, edges: pl.DataFrame, node: str) -> pl.DataFrame:
    """The rows of `frame` with `label`: their component's smallest node id (else their own)."""
    found = components(edges.filter(pl.col("a") != pl.col("b")))
    joined = frame.join(found, left_on=node, right_on="node", how="left", maintain_order="left")
    return joined.with_columns(label=pl.coalesce("label", node))


def _roots(labelled: pl.DataFrame) -> pl.DataFrame:
    """One row per label: its earliest member."""
    return labelled.sort("label", *ROOT_ORDER).unique("label", keep="first", maintain_order=True)


def _repeats(roots: pl.DataFrame) -> pl.DataFrame:
    """One row per edge between two groups of one customer (same ID-number token, or same phone
    token: a transfer and a ticket of one person meet through the phone) and business category
    where the later one was received while the earlier one was still open (not closed as of D)."""
    pairs = []
    for customer in ("customer_id", "customer_tel"):
        if customer not in roots.columns:
            continue
        keys = [customer, "business_category_code"]
        side = roots.filter(pl.all_horizontal(pl.col(k).is_not_null() for k in keys))
        side = side.select(*keys, "label", "received_at", "member_id", "closes_at")
        found = side.join(side, on=keys, suffix="_b").filter(
            (
                (pl.col("received_at") < pl.col("received_at_b"))
                | ((pl.col("received_at") == pl.col("received_at_b"))
                   & (pl.col("member_id") < pl.col("member_id_b")))
            )
            & (pl.col("closes_at").is_null() | (pl.col("received_at_b") < pl.col("closes_at")))
        )  # fmt: skip
        pairs.append(found.select(a="label", b="label_b"))
    return pl.concat(pairs).unique(maintain_order=True)


def build(complaints: pl.LazyFrame, transfers: pl.LazyFrame, as_of: date, implicit: bool,
          ) -> ComplaintModel:  # fmt: skip
    """Latest versions as of `as_of` and their merge groups (see the module docstring)."""
    tickets = latest(complaints, "complaint_id", as_of, ("updated_at",)).collect()
    own = tickets.filter(pl.col("ticket_type") == COMPLAINT)
    ids = own["complaint_id"].implode()
    regulator = latest(transfers, "transfer_id", as_of, ("updated_at",)).collect()
    regulator = regulator.with_columns(linked=pl.col("complaint_id").is_in(ids).fill_null(False))
    people = members(tickets, regulator)
    originals = own.filter(pl.col("original_complaint_id").is_in(ids)).select(
        a="T:" + pl.col("complaint_id"), b="T:" + pl.col("original_complaint_id")
    )
    links = regulator.filter("linked").select(
        a="R:" + pl.col("transfer_id"), b="T:" + pl.col("complaint_id")
    )
    nodes = pl.concat([people.select("member_id"), links.select(member_id="a")])
    nodes = _relabel(nodes, pl.concat([originals, links]), "member_id")
    if implicit:
        people = people.join(nodes, on="member_id", how="left", maintain_order="left")
        merged = _relabel(_roots(people).select(pre="label"), _repeats(_roots(people)), "pre")
        nodes = nodes.join(merged, left_on="label", right_on="pre", maintain_order="left")
        nodes = nodes.select("member_id", label="label_right")
    people = people.drop("label", strict=False).join(nodes, on="member_id", maintain_order="left")
    roots = _roots(people).select("label", group_id="member_id")
    nodes = nodes.join(roots, on="label", maintain_order="left").drop("label")
    people = people.join(nodes, on="member_id", maintain_order="left").drop("label")
    transferred = pl.col("member_id").str.starts_with("R:").any()
    flags = nodes.group_by("group_id").agg(has_transfer=transferred)
    groups = people.filter(pl.col("member_id") == pl.col("group_id")).drop("member_id")
    groups = groups.join(flags, on="group_id").sort("received_at", "group_id")
    groups = groups.with_columns(received_on=pl.col("received_at").dt.date())
    groups = _with_clock(_classified(groups, people), regulator, nodes)
    return ComplaintModel(
        tickets=_with_group(tickets, nodes, "complaint_id", "T:"),
        transfers=_with_group(regulator, nodes, "transfer_id", "R:"),
        groups=groups,
    )


def _classified(groups: pl.DataFrame, people: pl.DataFrame) -> pl.DataFrame:
    """The groups with the codes, branch, liability and callback of their earliest ticket, or of
    their earliest transfer where they hold no ticket. A transfer has no cause, channel or
    liability: a group whose earliest member is a transfer (merged with the customer's ticket
    of the same business category) was counted under 其他, without its liability."""
    first = people.sort("group_id", "kind", "received_at", "member_id")
    first = first.unique("group_id", keep="first", maintain_order=True)
    joined = groups.drop(ATTRIBUTES).join(
        first.select("group_id", *ATTRIBUTES), on="group_id", how="left", maintain_order="left"
    )
    return joined.select(groups.columns)


def _with_clock(groups: pl.DataFrame, regulator: pl.DataFrame, nodes: pl.DataFrame,
                ) -> pl.DataFrame:  # fmt: skip
    """The groups with `clock_on`, the day their time limit counts from: the earliest of the
    root's receipt and the 转办日期 of the transfers linked to the group (the bank received the
    complaint when the regulator forwarded it, even if it registered the ticket later)."""
    linked = regulator.filter("linked").select(
        member_id="R:" + pl.col("transfer_id"), transferred_on="transferred_on"
    )
    first = (
        linked.join(nodes, on="member_id")
        .group_by("group_id")
        .agg(first_transfer=pl.col("transferred_on").min())
    )
    clock = pl.min_horizontal("received_on", "first_transfer").alias("clock_on")
    joined = groups.join(first, on="group_id", how="left", maintain_order="left")
    return joined.with_columns(clock).drop("first_transfer")


def _with_group(frame: pl.DataFrame, nodes: pl.DataFrame, key: str, prefix: str) -> pl.DataFrame:
    """The rows of `frame` with their `group_id` and `is_root` (null outside any group)."""
    own = nodes.filter(pl.col("member_id").str.starts_with(prefix)).select(
        pl.col("member_id").str.strip_prefix(prefix).alias(key), "group_id",
        is_root=pl.col("member_id") == pl.col("group_id"),
    )  # fmt: skip
    return frame.join(own, on=key, how="left", maintain_order="left")
