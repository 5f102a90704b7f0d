"""Regulator transfers (监管转办): forwarded by an NFRA office, registered as a bank ticket,
answered, closed; every change re-exported as a new version of the row.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from kesu.transforms.columns import COLUMNS, column

from . import people, texts
from .profiles import checked, stream, volume, weighted
from .world import DAY, LOOKBACK, World, clock, dates, day_start, next_workday, ordinal_of, pick

PENDING, IN_PROGRESS, REPLIED, CLOSED = column("regulator_transfers", "status").values
SOURCES = checked(
    "regulator_transfers", "source", {"12378热线": 80, "网络": 10, "信函": 7, "来访": 3}
)
DUE_DAYS = {15: 0.92, 30: 0.05, 10: 0.03}
# Days until the bank registers the transfer as a ticket; None = never linked.
LINK_LAG = {0: 0.15, 1: 0.55, 2: 0.25, None: 0.05}


def created_on(world: World, day: dt.date) -> pl.DataFrame:
    """One row per transfer forwarded on `day`, its whole future planned in `_` columns."""
    return world.once("transfers", day, _create)


def _create(world: World, day: dt.date) -> pl.DataFrame:
    rng = stream(world.seed, day, "transfers")
    n = int(rng.poisson(volume(world.profile, "transfers", day, world.scale)))
    return world.unless_empty("transfers", n, lambda: _forwarded(world, day, rng, n))


def _forwarded(world: World, day: dt.date, rng: np.random.Generator, n: int) -> pl.DataFrame:
    b, t0 = world.branches, day_start(day)
    received = t0 + np.sort(clock(rng, n, 9, 17.5))
    sources, p_source = weighted(SOURCES)
    categories, p_cat = weighted(world.profile.categories)
    category = np.array(categories)[rng.choice(len(categories), n, p=p_cat)]
    home = rng.choice(b.outlets, n, p=b.outlet_weights)
    # the office of the complainant's province forwards it, to the card centre for card matters
    branch = np.where((category == "B03") & (rng.random(n) < 0.5), b.card_centre, home)
    due = np.array(list(DUE_DAYS))[rng.choice(len(DUE_DAYS), n, p=list(DUE_DAYS.values()))]
    lag_choice = rng.choice(len(LINK_LAG), n, p=list(LINK_LAG.values()))
    linked = lag_choice < 3
    lag = np.where(linked, lag_choice, rng.integers(1, 3, n))
    same_day = received + rng.integers(1800, 4 * 3600, n)
    link_at = np.where(
        lag == 0, np.minimum(same_day, t0 + 23 * 3600), t0 + lag * DAY + clock(rng, n, 9, 18)
    )
    progress_at = np.minimum(link_at + rng.integers(300, 3600, n), t0 + (lag + 1) * DAY - 1)
    late = rng.random(n) < 0.05
    reply = np.where(late, due + rng.integers(1, 6, n), rng.integers(4, 15, n) * due // 15)
    reply = np.maximum(reply, lag + 2)
    replied_at = t0 + reply * DAY + clock(rng, n, 9, 18)
    closed_at = day_start(next_workday(day.toordinal() + reply + rng.integers(3, 16, n)))
    closed_at = closed_at + clock(rng, n, 9, 18)  # the regulator's office closes on workdays
    gender = people.genders(rng, n)
    name = people.names(rng, gender)
    phone = people.phones(rng, n, landline_share=0.03)
    ids = people.id_numbers(
        rng, gender, [b.province[c] for c in home], [b.city[c] for c in home], day
    )
    written = [b.name[c] if x < 0.15 else c for c, x in zip(branch, rng.random(n), strict=True)]
    matter = texts.transfer_texts(rng, category.tolist(), name, phone)
    stamp = day.strftime("%Y%m%d")
    return pl.DataFrame(
        {
            "transfer_id": pl.Series([f"ZB{stamp}{i + 1:04d}" for i in range(n)], dtype=pl.String),
            "regulator": pl.Series([b.regulator[c] for c in home], dtype=pl.String),
            "source": pick(sources, rng.choice(len(sources), n, p=p_source)),
            "transferred_on": dates(np.full(n, day.toordinal())),
            "due_on": dates(day.toordinal() + due),
            "complainant_name": pl.Series(name, dtype=pl.String),
            "contact_phone": pl.Series(phone, dtype=pl.String),
            "branch_code": pl.Series(written, dtype=pl.String),
            "business_category": pl.Series(world.taxonomy.spell(category, rng), dtype=pl.String),
            "matter": pl.Series(matter, dtype=pl.String),
            "_received_at": received.astype(np.int64),
            "_branch": pl.Series(branch.tolist(), dtype=pl.String),
            "_category": pl.Series(category.tolist(), dtype=pl.String),
            "_id_number": pl.Series(ids, dtype=pl.String),
            "_linked": linked,
            "_link_at": link_at,
            "_progress_at": progress_at,
            "_replied_at": replied_at,
            "_closed_at": closed_at,
        }
    )


def by_link_day(world: World, day: dt.date) -> dict[int, pl.DataFrame]:
    """Day ordinal -> the transfers forwarded on `day` that the bank registers as a ticket then."""

    def build(w: World, d: dt.date) -> dict[int, pl.DataFrame]:
        linked = created_on(w, d).filter(pl.col("_linked"))
        linked = linked.with_columns(_link_day=ordinal_of(linked["_link_at"].to_numpy()))
        parts = linked.partition_by("_link_day", as_dict=True)
        return {key[0]: part for key, part in parts.items()}

    return world.once("transfers_by_link_day", day, build)


def versions_by_day(world: World, day: dt.date) -> dict[int, pl.DataFrame]:
    """Day ordinal -> the versions (joined with the transfer) of transfers forwarded on `day`."""

    def build(w: World, d: dt.date) -> dict[int, pl.DataFrame]:
        created = created_on(w, d)
        rows = _versions(created).join(created, on="transfer_id", how="left")
        rows = rows.with_columns(_day=pl.col("_at") // DAY)
        return {key[0]: part for key, part in rows.partition_by("_day", as_dict=True).items()}

    return world.once("transfer_versions", day, build)


def _versions(t: pl.DataFrame) -> pl.DataFrame:
    # a transfer registered on the day it arrives is first exported already 处理中
    same_day = pl.col("_progress_at") // DAY == pl.col("_received_at") // DAY
    linked = pl.col("_linked")
    plan = [
        (PENDING, "_received_at", ~same_day, None, pl.lit(False)),
        (IN_PROGRESS, "_progress_at", pl.lit(True), None, linked),
        (REPLIED, "_replied_at", pl.lit(True), "_replied_at", linked),
        (CLOSED, "_closed_at", pl.lit(True), "_replied_at", linked),
    ]
    return pl.concat(
        t.lazy()
        .filter(keep)
        .select(
            "transfer_id",
            pl.lit(status).alias("status"),
            pl.col(at).alias("_at"),
            carries_link.alias("_carries_link"),
            (pl.col(replied) if replied else pl.lit(None)).cast(pl.Int64).alias("_replied"),
        )
        for status, at, keep, replied, carries_link in plan
    ).collect()


def drop(world: World, day: dt.date, ticket_ids: pl.DataFrame) -> pl.DataFrame:
    """One row per transfer changed on `day`, as it stands at export time.

    `ticket_ids` maps `_transfer_id` -> `complaint_id` for the tickets registered from transfers.
    """
    today = day_start(day) // DAY
    frames = [
        part
        for back in range(LOOKBACK)
        if (part := versions_by_day(world, day - dt.timedelta(days=back)).get(today)) is not None
    ]
    if not frames:
        return pl.DataFrame(schema=SCHEMA)
    links = ticket_ids.rename({"_transfer_id": "transfer_id"})
    return (
        pl.concat(frames)
        .join(links, on="transfer_id", how="left")
        .sort("_at", "transfer_id")
        .with_columns(
            complaint_id=pl.when(pl.col("_carries_link")).then(pl.col("complaint_id")),
            replied_on=pl.from_epoch(pl.col("_replied") // DAY, "d"),
            updated_at=pl.from_epoch(pl.col("_at"), "s"),
        )
        .select(list(SCHEMA))
    )


_KINDS: dict[str, pl.DataType] = {"date": pl.Date(), "datetime": pl.Datetime("us")}
SCHEMA = {c.name: _KINDS.get(c.kind, pl.String()) for c in COLUMNS["regulator_transfers"]}
