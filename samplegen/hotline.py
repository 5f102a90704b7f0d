"""The call centre's nightly export: ordinary calls plus the calls behind hotline tickets."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from kesu.transforms.columns import HOTLINE

from . import calls, complaints
from .calls import CALM, COMPLAINT_CALL, HUMAN, INQUIRIES, TO_TICKET, UPSET, YES
from .profiles import stream, volume
from .world import DAY, World, busy_clock, datetimes, day_start, pick

LATE_SHARE, LATE_SEQ = 0.0005, 9_000_000
# 业务大类 of a call behind a ticket, from the ticket's 业务类别 (else by channel)
TICKET_CATEGORY = {"B03": "信用卡", "B12": "信用卡", "B04": "贷款", "B02": "银行卡"}


def ticket_calls(world: World, created: dt.date) -> pl.DataFrame:
    """The calls behind the hotline tickets created on `created` (some on the evening before)."""
    return world.once("ticket_calls", created, _ticket_calls)


def _ticket_calls(world: World, created: dt.date) -> pl.DataFrame:
    rng = stream(world.seed, created, "ticket-calls")
    t = complaints.hotline_tickets(world, created)
    n = t.height
    hung_up = t["_received"].to_numpy() - rng.integers(30, 900, n)
    picked_up = hung_up - np.clip(rng.lognormal(np.log(360), 0.6, n), 60, 3600).astype(np.int64)
    queued = picked_up - np.clip(rng.lognormal(np.log(7), 0.9, n), 1, 900).astype(np.int64)
    start = queued - np.clip(rng.lognormal(np.log(40), 0.5, n), 8, 300).astype(np.int64)
    codes = t["_category"].to_list()
    channels = t["_channel"].fill_null("").to_list()
    category = np.array(
        [
            INQUIRIES.index(
                TICKET_CATEGORY.get(c or "", "电子银行" if ch.startswith("A0103") else "个人业务")
            )
            for c, ch in zip(codes, channels, strict=True)
        ],
        dtype=np.int64,
    )
    upset = rng.random(n) < 0.7
    everyone = np.ones(n, bool)
    return pl.DataFrame(
        {
            "call_start_at": datetimes(start),
            "queued_at": datetimes(queued),
            "answered_at": datetimes(picked_up),
            "hung_up_at": datetimes(hung_up),
            "caller_number": t["contact_phone"],
            "service_mode": pl.Series([HUMAN] * n, dtype=pl.String),
            "agent_id": calls.agents(world, rng, everyone),
            "call_type": pl.Series([COMPLAINT_CALL] * n, dtype=pl.String),
            "inquiry_category": pick(INQUIRIES, category),
            "inquiry_topic": calls.topics(rng, category),
            "customer_mood": calls.flag(upset, UPSET, CALM),
            "complaint_intent": pl.Series([YES] * n, dtype=pl.String),
            "outcome": pl.Series([TO_TICKET] * n, dtype=pl.String),
            "complaint_id": t["complaint_id"],
            "survey_satisfaction": calls.survey(rng, rng.random(n) < 0.8, upset),
            "branch_code": t["branch_code"],
            "_start": start,
        }
    )


def drop(world: World, day: dt.date) -> pl.DataFrame:
    """One row per call exported on `day`: the day's calls, plus a few late ones from the
    evening before (numbered in a separate range of that day, so ids stay unique)."""
    rng = stream(world.seed, day, "hotline")
    first = day_start(day)
    n = int(rng.poisson(volume(world.profile, "calls", day, world.scale)))
    late = int(rng.poisson(LATE_SHARE * n))
    start = np.concatenate([first + busy_clock(rng, n), first - rng.integers(1, 1800, late)])
    ordinary = calls.ordinary(world, rng, day, start).with_columns(_start=start)
    linked = pl.concat(ticket_calls(world, day + dt.timedelta(days=k)) for k in (0, 1)).filter(
        pl.col("_start").is_between(first, first + DAY, closed="left")
    )
    exported = pl.concat([ordinary, linked]).sort("_start", maintain_order=True)
    on_time = pl.col("_start") >= first
    before = day - dt.timedelta(days=1)
    seq = pl.when(on_time).then(on_time.cum_sum()).otherwise(LATE_SEQ + (~on_time).cum_sum())
    prefix = pl.when(on_time).then(pl.lit(f"C{day:%Y%m%d}")).otherwise(pl.lit(f"C{before:%Y%m%d}"))
    call_id = prefix + seq.cast(pl.String).str.zfill(7)
    return exported.with_columns(call_id=call_id).select([c.name for c in HOTLINE])
