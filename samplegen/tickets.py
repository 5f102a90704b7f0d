"""New complaint-system tickets of one day: walk-in, hotline, online, and regulator-transferred."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from . import lifecycle, people, texts, transfers
from .lifecycle import COMPLAINT, OPINION, PRAISE
from .profiles import HOTLINE_INTAKE, stream, value, volume, weighted
from .world import World, busy_clock, clock, day_start, ordinal_of

BRANCH = value("complaints", "intake_channel", "营业网点")
REGULATOR = value("complaints", "intake_channel", "监管转办")
TYPES: dict[str, float] = {COMPLAINT: 85, OPINION: 10, PRAISE: 5}
CARD_CATEGORIES = ("B03", "B12")


def customers(world: World, rng: np.random.Generator, day: dt.date, home: np.ndarray) -> dict:
    """Name, ID number and phone of customers whose accounts are at the `home` outlets."""
    b = world.branches
    gender = people.genders(rng, len(home))
    return {
        "customer_name": people.names(rng, gender),
        "id_number": people.id_numbers(
            rng, gender, [b.province[h] for h in home], [b.city[h] for h in home], day
        ),
        "contact_phone": people.phones(rng, len(home), landline_share=0.02),
    }


def owners(
    world: World,
    rng: np.random.Generator,
    category: np.ndarray,
    intake: np.ndarray,
    home: np.ndarray,
) -> np.ndarray:
    """The branch that owns each ticket: card complaints mostly go to the card centre."""
    b, u = world.branches, rng.random(len(home))
    tier1 = np.array([b.tier1_of[h] for h in home])
    owner = np.where(u < 0.9, home, tier1)
    owner = np.where((intake == HOTLINE_INTAKE) & (u > 0.97), b.service_centre, owner)
    card = np.isin(category.astype(str), CARD_CATEGORIES) & (rng.random(len(home)) < 0.85)
    return np.where(card, b.card_centre, owner)


def frame(world: World, rng: np.random.Generator, day: dt.date, cols: dict) -> pl.DataFrame:
    """Spell the codes as source systems do and write the free text; one row per ticket."""
    n = len(cols["ticket_type"])
    return world.unless_empty(f"tickets:{sorted(cols)}", n, lambda: _frame(world, rng, cols))


def _frame(world: World, rng: np.random.Generator, cols: dict) -> pl.DataFrame:
    tax = world.taxonomy
    content = cols.pop("content", None) or texts.complaint_texts(
        rng,
        list(cols["ticket_type"]),
        list(cols["_category"]),
        cols["customer_name"],
        cols["contact_phone"],
        cols["id_number"],
    )
    return pl.DataFrame(
        {
            **{
                k: pl.Series(list(v), dtype=pl.String)
                for k, v in cols.items()
                if k not in ("_received", "_close_day", "_withdrawn")
            },
            "channel": pl.Series(tax.spell(cols["_channel"], rng), dtype=pl.String),
            "business_category": pl.Series(tax.spell(cols["_category"], rng), dtype=pl.String),
            "cause": pl.Series(tax.spell(cols["_cause"], rng), dtype=pl.String),
            "content": pl.Series(content, dtype=pl.String),
            "_received": np.asarray(cols["_received"], dtype=np.int64),
            "_close_day": np.asarray(cols["_close_day"], dtype=np.int64),
            "_withdrawn": np.asarray(cols["_withdrawn"], dtype=bool),
        }
    )


def walk_ins(world: World, day: dt.date) -> pl.DataFrame:
    """Tickets customers raised themselves (every intake but 监管转办) on `day`."""
    rng = stream(world.seed, day, "tickets")
    n = int(rng.poisson(volume(world.profile, "tickets", day, world.scale)))
    kinds, p = weighted(TYPES)
    ticket_type = np.array(kinds)[rng.choice(len(kinds), n, p=p)]
    intakes, p_in = weighted(world.profile.intake)
    intake = np.array(intakes)[rng.choice(len(intakes), n, p=p_in)]
    seconds = np.where(intake == BRANCH, clock(rng, n, 9, 17), busy_clock(rng, n))
    category, cause, channel = world.taxonomy.classify(rng, ticket_type, world.profile.categories)
    b = world.branches
    home = rng.choice(b.outlets, n, p=b.outlet_weights)
    withdrawn = (ticket_type == COMPLAINT) & (rng.random(n) < 0.03)
    received = day_start(day) + seconds
    amount = np.round(rng.lognormal(7, 1.5, n), 2) * (rng.random(n) > 0.05)
    return frame(
        world,
        rng,
        day,
        {
            "ticket_type": ticket_type,
            "intake_channel": intake,
            "branch_code": owners(world, rng, category, intake, home),
            **customers(world, rng, day, home),
            "amount": [
                f"{a:.2f}" if t == COMPLAINT and x < 0.4 else None
                for a, t, x in zip(amount, ticket_type, rng.random(n), strict=True)
            ],
            "original_complaint_id": [None] * n,
            "_transfer_id": [None] * n,
            "_category": category,
            "_cause": cause,
            "_channel": channel,
            "_received": received,
            "_close_day": ordinal_of(received) + lifecycle.close_days(rng, ticket_type, withdrawn),
            "_withdrawn": withdrawn,
        },
    )


def from_transfers(world: World, day: dt.date) -> pl.DataFrame:
    """Tickets registered on `day` for regulator transfers; they close the day the bank replies."""
    rng = stream(world.seed, day, "transfer-tickets")
    forwarded = [transfers.by_link_day(world, day - dt.timedelta(days=back)) for back in range(4)]
    today = [f[day.toordinal()] for f in forwarded if day.toordinal() in f]
    t = pl.concat(today) if today else transfers.created_on(world, day).clear()
    n = t.height
    ticket_type = np.full(n, COMPLAINT)
    category = t["_category"].to_numpy().astype(object)
    cause, channel = world.taxonomy.cause_and_channel(rng, category)
    ids = t["transfer_id"].to_list()
    return frame(
        world,
        rng,
        day,
        {
            "ticket_type": ticket_type,
            "intake_channel": np.full(n, REGULATOR),
            "branch_code": t["_branch"].to_list(),
            "customer_name": t["complainant_name"].to_list(),
            "id_number": t["_id_number"].to_list(),
            "contact_phone": t["contact_phone"].to_list(),
            "amount": [None] * n,
            "original_complaint_id": [None] * n,
            "_transfer_id": ids,
            "content": [f"监管转办（{i}）：{m}" for i, m in zip(ids, t["matter"], strict=True)],
            "_category": category,
            "_cause": cause,
            "_channel": channel,
            "_received": t["_link_at"].to_numpy(),
            "_close_day": ordinal_of(t["_replied_at"].to_numpy()),
            "_withdrawn": np.zeros(n, bool),
        },
    )
