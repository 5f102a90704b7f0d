"""The complaint system's nightly export: new tickets plus every ticket that changed that day.

Ticket ids number a day's tickets in order of receipt; repeats (a customer complaining again
while the first ticket is open) are marked by the system and numbered after them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl
from kesu.transforms.columns import COLUMNS

from . import lifecycle, tickets
from .lifecycle import COMPLAINT
from .profiles import HOTLINE_INTAKE, checked, stream, weighted
from .world import LOOKBACK, World, busy_clock, datetimes, day_start

REPEAT_SHARE = 0.03
REPEAT_WINDOW = 14  # days back in which a repeat looks for the customer's open ticket
# what a repeat shares with the ticket it repeats: the customer, the branch, the codes
_COPIED = ("ticket_type", "branch_code", "customer_name", "id_number", "contact_phone", "amount",
           "_category", "_cause", "_channel")  # fmt: skip
REPEAT_INTAKE = checked(
    "complaints", "intake_channel", {"客服热线": 60, "营业网点": 20, "手机银行": 15, "信访": 5}
)
_KINDS: dict[str, pl.DataType] = {"datetime": pl.Datetime("us")}
SCHEMA = {c.name: _KINDS.get(c.kind, pl.String()) for c in COLUMNS["complaints"]}


@dataclass(frozen=True)
class Tickets:
    attrs: pl.DataFrame  # one row per ticket created on the day (with internal `_` columns)
    by_day: dict[int, pl.DataFrame]  # day ordinal -> the exported rows of the versions dated then


def _numbered(world: World, day: dt.date) -> pl.DataFrame:
    """One row per non-repeat ticket created on `day`, numbered in order of receipt."""
    new = pl.concat([tickets.walk_ins(world, day), tickets.from_transfers(world, day)])
    new = new.sort("_received", maintain_order=True)
    return new.with_columns(complaint_id=_ids(day, 1, new.height))


def _ids(day: dt.date, first: int, n: int) -> pl.Series:
    stamp = day.strftime("%Y%m%d")
    return pl.Series([f"TS{stamp}{i:05d}" for i in range(first, first + n)], dtype=pl.String)


def _repeatable(world: World, day: dt.date) -> pl.DataFrame:
    """Tickets created on `day` that a later repeat may point to: customers' own complaints."""
    own_complaint = (pl.col("ticket_type") == COMPLAINT) & pl.col("_transfer_id").is_null()
    return (
        world.once("numbered", day, _numbered)
        .filter(own_complaint & ~pl.col("_withdrawn"))
        .select(*_COPIED, "complaint_id", "_close_day")
    )


def _repeats(world: World, day: dt.date, numbered: int) -> pl.DataFrame:
    """Tickets that repeat a still-open complaint of the same customer (same category)."""
    rng = stream(world.seed, day, "repeats")
    open_ = pl.concat(
        world.once("repeatable", day - dt.timedelta(days=k), _repeatable)
        for k in range(1, REPEAT_WINDOW + 1)
    ).filter(pl.col("_close_day") > day.toordinal())
    n = min(int(rng.poisson(REPEAT_SHARE * numbered)), open_.height)
    original = open_[np.sort(rng.choice(open_.height, n, replace=False))] if n else open_.clear()
    intakes, p = weighted(REPEAT_INTAKE)
    received = day_start(day) + np.sort(busy_clock(rng, n))
    cols = {
        **{k: original[k].to_list() for k in _COPIED},
        "intake_channel": np.array(intakes)[rng.choice(len(intakes), n, p=p)],
        "original_complaint_id": original["complaint_id"].to_list(),
        "_transfer_id": [None] * n,
        "content": [
            f"客户再次反映此前投诉（{i}）尚未处理完毕，要求加快处理。"
            for i in original["complaint_id"]
        ],
        "_received": received,
        # the repeat is merged into the first ticket and closed with it
        "_close_day": np.maximum(original["_close_day"].to_numpy(), day.toordinal() + 1),
        "_withdrawn": np.zeros(n, bool),
    }
    new = tickets.frame(world, rng, day, cols)
    return new.with_columns(complaint_id=_ids(day, numbered + 1, n))


def created_on(world: World, day: dt.date) -> Tickets:
    """Every ticket created on `day` and the rows it will contribute to this and later drops."""
    return world.once("tickets", day, _create)


def _create(world: World, day: dt.date) -> Tickets:
    numbered = world.once("numbered", day, _numbered)
    attrs = pl.concat([numbered, _repeats(world, day, numbered.height)], how="diagonal_relaxed")
    if not attrs.height:
        return Tickets(attrs=attrs, by_day={})
    rng = stream(world.seed, day, "lifecycle")
    versions = lifecycle.versions(
        rng,
        attrs["ticket_type"].to_numpy(),
        attrs["_received"].to_numpy(),
        attrs["_close_day"].to_numpy(),
        attrs["_withdrawn"].to_numpy(),
    )
    fixed = attrs.select(
        [n for n in SCHEMA if n not in versions.columns and n != "received_at"]
    ).with_columns(received_at=datetimes(attrs["_received"].to_numpy()))
    rows = fixed[versions["_row"]].hstack(versions.drop("_row"))
    parts = rows.select([*SCHEMA, "_day"]).partition_by("_day", as_dict=True, include_key=False)
    return Tickets(attrs=attrs, by_day={key[0]: part for key, part in parts.items()})


def drop(world: World, day: dt.date) -> pl.DataFrame:
    """One row per ticket that is new or changed on `day`, as it stands at export time."""
    parts = [
        created_on(world, day - dt.timedelta(days=back)).by_day.get(day.toordinal())
        for back in range(LOOKBACK)
    ]
    rows = [p for p in parts if p is not None]
    if not rows:
        return pl.DataFrame(schema=SCHEMA)
    return pl.concat(rows).sort("updated_at", "complaint_id")


def transfer_links(world: World, day: dt.date) -> pl.DataFrame:
    """`_transfer_id` -> `complaint_id` for transfers registered as tickets up to `day`."""

    def registered(w: World, d: dt.date) -> pl.DataFrame:
        attrs = created_on(w, d).attrs
        return attrs.filter(pl.col("_transfer_id").is_not_null()).select(
            "_transfer_id", "complaint_id"
        )

    return pl.concat(
        world.once("links", day - dt.timedelta(days=back), registered) for back in range(LOOKBACK)
    )


def hotline_tickets(world: World, day: dt.date) -> pl.DataFrame:
    """Tickets an agent raised from a call, received on `day` (the calls that led to them)."""
    return created_on(world, day).attrs.filter(pl.col("intake_channel") == HOTLINE_INTAKE)
